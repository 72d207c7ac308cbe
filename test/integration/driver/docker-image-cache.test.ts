// DockerDriver's image cache manager against the real dockerd: pre-caching (cacheImage), and which cached images a
// pass removes (unused for the minimum age) and which it keeps (an instance's, a stopped container's, too young,
// removal disabled), that it never touches an image that is not berth-glance:*, and that its clock survives a
// restart of the driver.
//
// The engine is shared with other suites, which cache images of their own. Each pass here is told that every
// berth-glance image this suite did not make is in use, so it never removes another suite's image, whatever clock
// this suite gives the pass.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DockerDriver } from '../../../driver/docker/docker-driver';
import { CACHE_REPOSITORY } from '../../../driver/docker/image-cache';
import { InvalidImage, type ImageCacheOptions, type ImageCacheReport, type ImageSource, type InstanceRef } from '../../../driver/driver';
import { dockerClient, removeCachedImages } from '../../support/docker';
import { buildBusyboxImage, glanceImage, writeFakeImage, type CountingImageSource } from '../../support/images';

const HOUR_S = 3600;

describe('DockerDriver image cache on dockerd', function () {
  this.timeout(120_000);

  const docker = dockerClient();
  let stateDir: string;
  const drivers: DockerDriver[] = [];
  const ours: string[] = [];
  const extraTags: string[] = [];
  const spawned: Array<{ driver: DockerDriver; ref: InstanceRef }> = [];

  const newDriver = async (): Promise<DockerDriver> => {
    const driver = new DockerDriver({ stateDir, eventsReconnectDelayMs: 100 });
    drivers.push(driver);
    await driver.init();
    return driver;
  };
  /** A Glance image with content of its own (its own Docker image id), never run. */
  const distinctImage = async (): Promise<CountingImageSource> => {
    const made = await writeFakeImage(['/bin/true', randomUUID()]);
    const source = glanceImage(made.tarPath);
    ours.push(source.id);
    return source;
  };
  const cached = async (id: string): Promise<boolean> => {
    const images = await docker.listImages({ filters: { reference: [`${CACHE_REPOSITORY}:${id}`] } });
    return images.some((image) => image.RepoTags?.includes(`${CACHE_REPOSITORY}:${id}`));
  };
  /** Every berth-glance image of other suites, plus `inUse`: the pass must leave those alone. */
  const inUseWith = async (...inUse: string[]): Promise<Set<string>> => {
    const all = await docker.listImages({ filters: { reference: [CACHE_REPOSITORY] } });
    const foreign = all.flatMap((image) => image.RepoTags ?? []).map((tag) => tag.slice(CACHE_REPOSITORY.length + 1)).filter((id) => !ours.includes(id));
    return new Set([...foreign, ...inUse]);
  };
  const pass = async (driver: DockerDriver, options: ImageCacheOptions, ...inUse: string[]): Promise<ImageCacheReport> =>
    driver.manageImageCache(await inUseWith(...inUse), options);
  const reasonOf = (report: ImageCacheReport, id: string): string | undefined =>
    report.removed.includes(id) ? 'removed' : report.kept.find((k) => k.imageId === id)?.reason;

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'berth-docker-imagecache-'));
  });

  afterEach(async () => {
    for (const { driver, ref } of spawned.splice(0)) await driver.destroy(ref).catch(() => undefined);
  });

  after(async () => {
    for (const driver of drivers) await driver.close();
    await removeCachedImages(ours);
    for (const tag of extraTags) await docker.getImage(tag).remove().catch(() => undefined);
    await rm(stateDir, { recursive: true, force: true });
  });

  it("cacheImage: 'cached' (downloaded now), then 'existing' without a download", async () => {
    const driver = await newDriver();
    const image = await distinctImage();
    assert.equal(await driver.cacheImage(image), 'cached');
    assert.equal(image.fetchCount, 1);
    assert.ok(await cached(image.id));
    assert.equal(await driver.cacheImage(image), 'existing');
    assert.equal(image.fetchCount, 1, 'the second call downloads nothing');
  });

  it('cacheImage refuses what a spawn refuses, before any download', async () => {
    const driver = await newDriver();
    const image = glanceImage((await writeFakeImage()).tarPath, { containerFormat: 'bare' });
    await assert.rejects(driver.cacheImage(image), InvalidImage);
    assert.equal(image.fetchCount, 0);
  });

  it('removes an image unused for the minimum age, keeps a young one, and its clock survives a restart', async () => {
    const t0 = Date.now();
    const options = (now: number, removeUnused = true): ImageCacheOptions => ({ removeUnused, minimumAgeSec: HOUR_S, now: new Date(now) });
    const first = await newDriver();
    const old = await distinctImage();
    await first.cacheImage(old);
    // An unrelated tag on the same Docker image: not ours, so it must survive the removal of berth-glance:<old>.
    const otherTag = `berth-imagecache-test/other:${randomUUID().slice(0, 8)}`;
    extraTags.push(otherTag);
    const [repo, tag] = otherTag.split(':') as [string, string];
    await docker.getImage(`${CACHE_REPOSITORY}:${old.id}`).tag({ repo, tag });

    const report1 = await pass(first, options(t0));
    assert.equal(reasonOf(report1, old.id), 'too-young');
    const clockFile = JSON.parse(await readFile(join(stateDir, 'image-cache.json'), 'utf8')) as { unused_since: Record<string, string> };
    assert.equal(clockFile.unused_since[old.id], new Date(t0).toISOString());

    // Berth restarts: a new driver on the same state dir.
    await first.close();
    const second = await newDriver();
    const young = await distinctImage();
    await second.cacheImage(young);

    const later = t0 + (HOUR_S + 1) * 1000;
    const dryRun = await pass(second, options(later, false));
    assert.equal(reasonOf(dryRun, old.id), 'removal-disabled');
    assert.ok(await cached(old.id));

    const report2 = await pass(second, options(later));
    assert.equal(reasonOf(report2, old.id), 'removed', 'unused since t0 across the restart, so an hour and a second old');
    assert.equal(reasonOf(report2, young.id), 'too-young');
    assert.equal(await cached(old.id), false);
    assert.ok(await cached(young.id));
    await docker.getImage(otherTag).inspect(); // Still there: only the berth-glance tag went.
    assert.deepEqual(report2.removed.filter((id) => !ours.includes(id)), [], 'no other suite\'s image removed');
  });

  it("keeps an instance's image and a stopped container's image however old", async () => {
    const driver = await newDriver();
    const forInstance = await distinctImage();
    await driver.cacheImage(forInstance);
    const busybox = await buildBusyboxImage('berth-test/imagecache:1');
    const running = glanceImage(busybox.tarPath);
    ours.push(running.id);
    const uuid = randomUUID();
    const ref = { uuid, name: `instance-${uuid.slice(0, 8)}` };
    spawned.push({ driver, ref });
    await driver.spawn(
      {
        ...ref, hostname: 'imagecache', displayName: 'image cache test', projectId: 'p', userId: 'u', metadata: {}, hasNetwork: false,
        flavor: { name: 'm1.tiny', flavorId: '1', vcpus: 1, memoryMb: 64, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
      },
      running,
    );
    await driver.powerOff(ref, 0);

    const now = Date.now();
    const options = (at: number): ImageCacheOptions => ({ removeUnused: true, minimumAgeSec: 60, now: new Date(at) });
    // `running` is not reported in use by Nova here: only its (stopped) container keeps it.
    await pass(driver, options(now), forInstance.id);
    const report = await pass(driver, options(now + 10 * HOUR_S * 1000), forInstance.id);
    assert.equal(reasonOf(report, forInstance.id), 'instance');
    assert.equal(reasonOf(report, running.id), 'container');
    assert.ok(await cached(forInstance.id));
    assert.ok(await cached(running.id));
  });

  it('never lists or touches an image that is not berth-glance:*', async () => {
    const driver = await newDriver();
    const source = await distinctImage();
    await driver.cacheImage(source);
    // The same Docker image under names like the cache's but outside it.
    const lookalikes = [`${CACHE_REPOSITORY}-lookalike:${randomUUID().slice(0, 8)}`, `someone/${CACHE_REPOSITORY}:${randomUUID().slice(0, 8)}`];
    for (const full of lookalikes) {
      extraTags.push(full);
      const at = full.lastIndexOf(':');
      await docker.getImage(`${CACHE_REPOSITORY}:${source.id}`).tag({ repo: full.slice(0, at), tag: full.slice(at + 1) });
    }
    // Our tag goes on the second pass; the lookalikes must not even be looked at. (Not minimum age 0: an image
    // another suite caches between our listing and the pass would go at once.)
    const now = Date.now();
    await pass(driver, { removeUnused: true, minimumAgeSec: 1, now: new Date(now) });
    const report = await pass(driver, { removeUnused: true, minimumAgeSec: 1, now: new Date(now + 2000) });
    assert.equal(reasonOf(report, source.id), 'removed');
    assert.equal(await cached(source.id), false);
    const seen = [...report.removed, ...report.kept.map((k) => k.imageId)];
    for (const full of lookalikes) {
      await docker.getImage(full).inspect(); // Still there.
      assert.ok(!seen.includes(full.slice(full.lastIndexOf(':') + 1)), `${full} was considered`);
    }
  });

  it('survives a malformed clock file: unused images start counting again, nothing is removed early', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-docker-imagecache-bad-'));
    try {
      await writeFile(join(dir, 'image-cache.json'), '{"format": 1, "unused_since": ["not", "a", "map"]}');
      const driver = new DockerDriver({ stateDir: dir, eventsReconnectDelayMs: 100 });
      drivers.push(driver);
      await driver.init();
      const image: ImageSource = await distinctImage();
      await driver.cacheImage(image);
      const report = await driver.manageImageCache(await inUseWith(), { removeUnused: true, minimumAgeSec: HOUR_S });
      assert.equal(reasonOf(report, image.id), 'too-young');
      const rewritten = JSON.parse(await readFile(join(dir, 'image-cache.json'), 'utf8')) as { format: number; unused_since: Record<string, string> };
      assert.equal(rewritten.format, 1);
      assert.equal(typeof rewritten.unused_since[image.id], 'string');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
