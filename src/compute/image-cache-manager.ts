// Nova's image cache manager on the compute side: the periodic _run_image_cache_manager_pass (which images the
// instances on this host use, then the driver's manage_image_cache) and the cache_images RPC the conductor calls for
// `openstack aggregate cache image` (ComputeManager.cache_images). The driver does the work; this file gathers what
// it needs from Nova and answers in Nova's words.
//
// The conductor sends the aggregate.cache_images.* notifications and reads precache_concurrency as its fan-out over
// hosts; nova-compute sends no notification for this and caches one image after the other. Berth caches up to
// precache_concurrency images of one request at once (1 by default, which is Nova's behaviour).
import type { CacheImageResult, ComputeDriver, ImageCacheReport } from '../../driver/driver';
import { NotSupported } from '../../driver/driver';
import type { ConductorClient } from '../conductor';
import type { Logger } from '../log';
import { adminContext } from '../messaging';
import type { RequestContext } from '../messaging/types';
import type { ImagePort } from './ports';

/** [image_cache] as the compute uses it. */
export interface ImageCacheManagerOptions {
  /** remove_unused_base_images */
  readonly removeUnusedBaseImages: boolean;
  /** remove_unused_original_minimum_age_seconds */
  readonly removeUnusedOriginalMinimumAgeSec: number;
  /** precache_concurrency: images of one cache_images request cached at once. */
  readonly precacheConcurrency: number;
}

/** Nova's defaults (nova/conf/imagecache.py). */
export const IMAGE_CACHE_DEFAULTS: ImageCacheManagerOptions = {
  removeUnusedBaseImages: true,
  removeUnusedOriginalMinimumAgeSec: 86_400,
  precacheConcurrency: 1,
};

/** One answer per image id, as ComputeManager.cache_images gives them. */
export type CacheImagesResult = CacheImageResult | 'unsupported' | 'error';

export interface ImageCacheManagerDeps {
  readonly host: string;
  readonly options: ImageCacheManagerOptions;
  readonly conductor: Pick<ConductorClient, 'instanceListGetByHost'>;
  readonly driver: ComputeDriver;
  readonly images: Pick<ImagePort, 'show' | 'source'>;
  readonly logger: Logger;
  /** The pass's clock (tests). */
  readonly now?: () => Date;
}

export class ImageCacheManager {
  private readonly log: Logger;

  constructor(private readonly deps: ImageCacheManagerDeps) {
    this.log = deps.logger.child({ component: 'image-cache-manager' });
  }

  /**
   * _run_image_cache_manager_pass: the Glance images of every instance Nova places on this host (soft-deleted ones
   * too: they may be restored), then one driver pass. Null when the driver has no image cache.
   */
  async runPass(): Promise<ImageCacheReport | null> {
    const { driver, options } = this.deps;
    if (!driver.capabilities.hasImageCache) return null;
    const instances = await this.deps.conductor.instanceListGetByHost(adminContext(), this.deps.host, []);
    const inUse = new Set<string>();
    for (const instance of instances) {
      // A volume-backed instance has no image_ref.
      const ref = instance.get('image_ref');
      if (typeof ref === 'string' && ref !== '') inUse.add(ref);
    }
    this.log.debug({ instances: instances.length, images_in_use: inUse.size }, 'running the image cache manager pass');
    return driver.manageImageCache(inUse, {
      removeUnused: options.removeUnusedBaseImages,
      minimumAgeSec: options.removeUnusedOriginalMinimumAgeSec,
      now: (this.deps.now ?? (() => new Date()))(),
    });
  }

  /**
   * ComputeManager.cache_images: each image is downloaded from Glance (the boot path's verified download) into the
   * driver's cache. 'cached' when it was downloaded now, 'existing' when it was there, 'unsupported' when the driver
   * has no image cache, 'error' when anything failed — logged, and the other images go on.
   */
  async cacheImages(context: RequestContext, imageIds: unknown): Promise<Record<string, CacheImagesResult>> {
    const ids = Array.isArray(imageIds) ? imageIds.map((id) => String(id)) : [];
    if (!Array.isArray(imageIds)) this.log.warn({ request_id: context.request_id }, 'cache_images: image_ids is not a list; nothing to cache');
    const log = this.log.child({ request_id: context.request_id });
    log.info('Caching %d image(s) by request', ids.length);
    const results = new Map<string, CacheImagesResult>();
    const unique = [...new Set(ids)];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < unique.length) {
        const imageId = unique[next++] as string;
        results.set(imageId, await this.cacheOne(context, imageId, log));
      }
    };
    const workers = Math.max(1, Math.min(this.deps.options.precacheConcurrency, unique.length));
    await Promise.all(Array.from({ length: workers }, () => worker()));
    return Object.fromEntries(unique.map((id) => [id, results.get(id) ?? 'error']));
  }

  private async cacheOne(context: RequestContext, imageId: string, log: Logger): Promise<CacheImagesResult> {
    const { driver, images } = this.deps;
    if (!driver.capabilities.hasImageCache) {
      log.warn({ image_id: imageId }, 'Virt driver does not support image pre-caching; ignoring request');
      return 'unsupported';
    }
    try {
      const meta = await images.show(context, imageId);
      return await driver.cacheImage(images.source(context, meta));
    } catch (err) {
      if (err instanceof NotSupported) {
        log.warn({ image_id: imageId }, 'Virt driver does not support image pre-caching; ignoring request');
        return 'unsupported';
      }
      log.error({ err, image_id: imageId }, 'Failed to cache image %s: %s', imageId, err instanceof Error ? err.message : String(err));
      return 'error';
    }
  }
}
