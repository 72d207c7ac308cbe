// The image cache manager on the compute side (src/compute/image-cache-manager.ts) with the fake driver: the
// cache_images RPC answers per image exactly as ComputeManager.cache_images does, and the periodic pass computes the
// images in use from the instances Nova places on this host before it calls the driver.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ImageCacheOptions, ImageSource } from '../../../driver/driver';
import { DriverError } from '../../../driver/driver';
import { CAPTURE_HOST } from './lifecycle-capture';
import { Harness, userContext } from './harness';

const FOREVER = { removeUnusedBaseImages: true, removeUnusedOriginalMinimumAgeSec: 0, precacheConcurrency: 1 };

describe('compute: image cache (cache_images, _run_image_cache_manager_pass)', () => {
  let h: Harness;

  afterEach(async () => {
    await h.close();
  });

  describe('cache_images', () => {
    it("answers 'cached' for a download, 'existing' for an image it has, 'error' for one that fails — and goes on", async () => {
      h = await Harness.create();
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      assert.deepEqual(await h.rpc('cache_images', { image_ids: [a, b] }, userContext(), true), { [a]: 'cached', [b]: 'cached' });
      assert.deepEqual(h.images.fetched, [a, b]);
      assert.deepEqual(h.driver.cachedImageIds(), [a, b].sort());

      h.driver.failNext('cacheImage', new DriverError('disk full'));
      assert.deepEqual(await h.rpc('cache_images', { image_ids: [c, a, b] }, userContext(), true), { [c]: 'error', [a]: 'existing', [b]: 'existing' });
      assert.deepEqual(h.images.fetched, [a, b], 'nothing downloaded again');
      assert.deepEqual(await h.rpc('cache_images', { image_ids: [c] }, userContext(), true), { [c]: 'cached' });
    });

    it("an image Glance does not have, or that the driver cannot run, is 'error'", async () => {
      h = await Harness.create();
      const [missing, bare, good] = [randomUUID(), randomUUID(), randomUUID()];
      const show = h.images.show.bind(h.images);
      h.images.show = async (context, imageId) => {
        if (imageId === missing) throw new Error(`Image ${missing} could not be found.`);
        const meta = await show(context, imageId);
        return imageId === bare ? { ...meta, container_format: 'bare' } : meta;
      };
      assert.deepEqual(await h.rpc('cache_images', { image_ids: [missing, bare, good] }, userContext(), true), {
        [missing]: 'error',
        [bare]: 'error',
        [good]: 'cached',
      });
      assert.deepEqual(h.driver.cachedImageIds(), [good]);
    });

    it("a driver without an image cache answers 'unsupported' for every image and downloads nothing", async () => {
      h = await Harness.create({ driver: { capabilities: { hasImageCache: false } } });
      const [a, b] = [randomUUID(), randomUUID()];
      assert.deepEqual(await h.rpc('cache_images', { image_ids: [a, b] }, userContext(), true), { [a]: 'unsupported', [b]: 'unsupported' });
      assert.deepEqual(h.images.fetched, []);
    });

    it('bad input is an empty answer, not a crash', async () => {
      h = await Harness.create();
      assert.deepEqual(await h.rpc('cache_images', { image_ids: 'not-a-list' }, userContext(), true), {});
      assert.deepEqual(await h.rpc('cache_images', { image_ids: [] }, userContext(), true), {});
    });

    for (const concurrency of [1, 3]) {
      it(`caches at most precache_concurrency (${concurrency}) images at once`, async () => {
        h = await Harness.create({ manager: { imageCache: { ...FOREVER, precacheConcurrency: concurrency } } });
        let inFlight = 0;
        let most = 0;
        const cacheImage = h.driver.cacheImage.bind(h.driver);
        h.driver.cacheImage = async (image: ImageSource) => {
          inFlight++;
          most = Math.max(most, inFlight);
          try {
            // Yield a few turns so the other workers get the chance to start.
            for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
            return await cacheImage(image);
          } finally {
            inFlight--;
          }
        };
        const ids = Array.from({ length: 6 }, () => randomUUID());
        const result = await h.rpc('cache_images', { image_ids: ids }, userContext(), true);
        assert.deepEqual(Object.values(result as Record<string, string>), ids.map(() => 'cached'));
        assert.equal(most, concurrency);
      });
    }
  });

  describe('the periodic pass', () => {
    it("hands the driver the image_ref of every instance on this host and Nova's [image_cache] options", async () => {
      h = await Harness.create({ manager: { imageCache: { ...FOREVER, removeUnusedBaseImages: false, removeUnusedOriginalMinimumAgeSec: 1234 } } });
      const uuid = await h.activeInstance();
      const other = await h.activeInstance();
      h.row(other)['image_ref'] = 'f0000000-0000-4000-8000-000000000001';
      // Not on this host, deleted, or volume-backed: not in use.
      const elsewhere = await h.activeInstance();
      h.row(elsewhere)['host'] = 'another-host';
      const volumeBacked = await h.activeInstance();
      h.row(volumeBacked)['image_ref'] = '';
      const calls: Array<{ inUse: string[]; options: ImageCacheOptions }> = [];
      const manage = h.driver.manageImageCache.bind(h.driver);
      h.driver.manageImageCache = async (inUse, options) => {
        calls.push({ inUse: [...inUse].sort(), options });
        return manage(inUse, options);
      };
      await h.manager.imageCache.runPass();
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0]?.inUse, [String(h.row(uuid)['image_ref']), 'f0000000-0000-4000-8000-000000000001'].sort());
      assert.equal(calls[0]?.options.removeUnused, false);
      assert.equal(calls[0]?.options.minimumAgeSec, 1234);
      assert.ok(calls[0]?.options.now instanceof Date);
      assert.equal(h.row(uuid)['host'], CAPTURE_HOST);
    });

    it("keeps an instance's image even when its container is gone, removes an unused one", async () => {
      h = await Harness.create({ manager: { imageCache: FOREVER } });
      const uuid = await h.activeInstance();
      const bootImage = String(h.row(uuid)['image_ref']);
      const spare = randomUUID();
      await h.rpc('cache_images', { image_ids: [spare] }, userContext(), true);
      // The container went behind Nova's back; Nova still places the instance here, so its image stays.
      await h.driver.destroy({ uuid, name: 'whatever' });
      const report = await h.manager.imageCache.runPass();
      assert.deepEqual(report?.removed, [spare]);
      assert.deepEqual(report?.kept, [{ imageId: bootImage, reason: 'instance' }]);
      assert.deepEqual(h.driver.cachedImageIds(), [bootImage]);
    });

    it('does nothing without an image cache in the driver', async () => {
      h = await Harness.create({ driver: { capabilities: { hasImageCache: false } } });
      let called = false;
      h.driver.manageImageCache = async () => {
        called = true;
        return { removed: [], kept: [] };
      };
      assert.equal(await h.manager.imageCache.runPass(), null);
      assert.equal(called, false);
    });
  });
});
