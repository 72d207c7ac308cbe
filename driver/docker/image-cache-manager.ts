// One pass of the image cache manager on Docker (Nova's manage_image_cache; libvirt's imagecache.py for the age
// rules). It looks only at `berth-glance:<glance id>` tags. An image stays while
//   - an instance Nova places on this host was booted from it (`inUse`, from the compute manager),
//   - a container of the engine, running or stopped, was created from it (ours or anybody's: the engine would refuse
//     to remove it anyway),
//   - the ImageCache is loading it or a spawn holds it (a boot in flight);
// every other cached image goes once it has been unused for the minimum age, measured by a clock that survives a
// restart (image-cache-clock.ts). Removal is by tag and never forced, so the engine itself refuses (409) an image a
// container took meanwhile; a refused or failed removal is logged and the image stays for the next pass.

import type Docker from 'dockerode';
import type { Logger } from 'pino';

import type { ImageCacheKeepReason, ImageCacheOptions, ImageCacheReport } from '../driver';
import { dockerStatus, toDriverError } from './docker-errors';
import type { UnusedClock } from './image-cache-clock';
import { CACHE_REPOSITORY, glanceIdOfTag, type ImageCache } from './image-cache';

export interface ImageCachePassDeps {
  readonly docker: Docker;
  readonly images: ImageCache;
  readonly clock: UnusedClock;
  readonly logger: Logger;
  /** The driver's Engine request under its deadline (DockerDriver.request). */
  readonly request: <T>(operation: string, call: (signal: AbortSignal) => Promise<T>) => Promise<T>;
}

export async function runImageCachePass(deps: ImageCachePassDeps, inUse: ReadonlySet<string>, options: ImageCacheOptions): Promise<ImageCacheReport> {
  const { docker, images, clock, request } = deps;
  const log = deps.logger.child({ task: 'image_cache' });
  const now = (options.now ?? new Date()).getTime();
  const minimumAgeMs = Math.max(0, options.minimumAgeSec) * 1000;

  let listed: Docker.ImageInfo[];
  let containers: Docker.ContainerInfo[];
  try {
    // The reference filter with the bare repository matches every tag of it.
    listed = await request('image list of the cache', (signal) => docker.listImages({ filters: { reference: [CACHE_REPOSITORY] }, abortSignal: signal }));
    containers = await request('list containers', (signal) => docker.listContainers({ all: true, abortSignal: signal }));
  } catch (error) {
    throw toDriverError(error, 'image cache pass');
  }

  // Glance image id → the Docker image id its tag points at. Other tags on the same image are never touched.
  const cached = new Map<string, string>();
  for (const image of listed) {
    for (const tag of image.RepoTags ?? []) {
      const glanceId = glanceIdOfTag(tag);
      if (glanceId !== null) cached.set(glanceId, image.Id);
    }
  }
  const usedByContainers = new Set(containers.map((c) => c.ImageID));

  const removed: string[] = [];
  const kept: Array<{ imageId: string; reason: ImageCacheKeepReason }> = [];
  const keep = (imageId: string, reason: ImageCacheKeepReason, detail: Record<string, unknown> = {}): void => {
    kept.push({ imageId, reason });
    const level = reason === 'removal-failed' ? 'warn' : reason === 'removal-disabled' ? 'info' : 'debug';
    log[level]({ image_id: imageId, reason, ...detail }, 'cached image kept: %s', KEEP_TEXT[reason]);
  };

  try {
    clock.retain(new Set(cached.keys()));
    for (const [glanceId, dockerImageId] of [...cached].sort(([a], [b]) => a.localeCompare(b))) {
      if (inUse.has(glanceId)) {
        clock.stop(glanceId);
        keep(glanceId, 'instance');
        continue;
      }
      if (usedByContainers.has(dockerImageId)) {
        clock.stop(glanceId);
        keep(glanceId, 'container', { docker_image: dockerImageId });
        continue;
      }
      if (images.inFlight(glanceId)) {
        clock.stop(glanceId);
        keep(glanceId, 'in-flight');
        continue;
      }
      const since = clock.start(glanceId, now);
      const unusedSec = Math.floor((now - since) / 1000);
      if (now - since < minimumAgeMs) {
        keep(glanceId, 'too-young', { unused_since: new Date(since).toISOString(), unused_s: unusedSec, minimum_age_s: options.minimumAgeSec });
        continue;
      }
      if (!options.removeUnused) {
        keep(glanceId, 'removal-disabled', { unused_since: new Date(since).toISOString(), unused_s: unusedSec });
        continue;
      }
      const ref = `${CACHE_REPOSITORY}:${glanceId}`;
      const removal = images.removeUnlessInFlight(glanceId, () =>
        request(`image remove of ${ref}`, (signal) => docker.getImage(ref).remove({ abortSignal: signal })),
      );
      if (removal === 'in-flight') {
        clock.stop(glanceId);
        keep(glanceId, 'in-flight');
        continue;
      }
      try {
        await removal;
      } catch (error) {
        // 404: gone already (removed by hand); that is what we wanted.
        if (dockerStatus(error) !== 404) {
          const why = dockerStatus(error) === 409 ? 'the engine says it is in use' : 'the engine refused or failed';
          keep(glanceId, 'removal-failed', { err: error, why });
          continue;
        }
      }
      clock.stop(glanceId);
      removed.push(glanceId);
      log.info({ image_id: glanceId, docker_image: dockerImageId, unused_since: new Date(since).toISOString(), unused_s: unusedSec }, 'removed unused cached image %s', ref);
    }
  } finally {
    await clock.save().catch((error: unknown) => log.error({ err: error }, 'could not save the image cache clock; unused images may be kept longer'));
  }
  log.info({ cached: cached.size, removed: removed.length, kept: kept.length, in_use: inUse.size }, 'image cache pass done');
  return { removed, kept };
}

const KEEP_TEXT: Readonly<Record<ImageCacheKeepReason, string>> = {
  instance: 'an instance on this host uses it',
  container: 'a container uses it',
  'in-flight': 'a spawn or load uses it now',
  'too-young': 'unused, but not for the minimum age yet',
  'removal-disabled': 'unused long enough, but remove_unused_base_images is false',
  'removal-failed': 'removal failed; retried on the next pass',
};
