// Image pre-caching through the real control plane: `openstack aggregate cache image` (API 2.81) makes the conductor
// CALL cache_images on every host of the aggregate; Berth downloads the image into Docker (berth-glance:<id>), and a
// later boot of it downloads nothing.
import assert from 'node:assert/strict';

import { CACHE_REPOSITORY } from '../../driver/docker/image-cache';
import { buildBusyboxImage } from '../support/images';
import { BerthHost, type BerthLogLine, type Flavor, type Image, openstack, requireControlPlane, requireDocker, waitFor } from './support';

function fetchesOf(lines: readonly BerthLogLine[], imageId: string): { downloads: number; loads: number } {
  const about = lines.filter((l) => l['image_id'] === imageId);
  return {
    downloads: about.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('image downloaded')).length,
    loads: about.filter((l) => l.msg === 'image loaded into the Docker cache').length,
  };
}

describe('image cache: aggregate cache image (e2e)', function () {
  this.timeout(300_000);
  let host: BerthHost;
  let image: Image;
  let flavor: Flavor;
  let aggregate = '';

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    // No periodic pass here: the engine is shared with other suites.
    host = new BerthHost({ suite: 'imagecache', config: { image_cache: { manager_interval: -1 } } });
    const tar = await buildBusyboxImage('berth-e2e-imagecache:latest');
    [, image, flavor] = await Promise.all([host.start(), host.uploadImage({ file: tar.tarPath }), host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1 })]);
    aggregate = host.name('aggregate');
    await openstack(['aggregate', 'create', aggregate]);
    await openstack(['aggregate', 'add', 'host', aggregate, host.host]);
  });

  after(async function () {
    if (aggregate) {
      await openstack(['aggregate', 'remove', 'host', aggregate, host.host]).catch(() => undefined);
      await openstack(['aggregate', 'delete', aggregate]).catch(() => undefined);
    }
    await host?.cleanup();
  });

  it('caches the image on the host, and a boot of it then downloads nothing', async function () {
    await openstack(['--os-compute-api-version', '2.81', 'aggregate', 'cache', 'image', aggregate, image.id]);
    await waitFor(
      `${CACHE_REPOSITORY}:${image.id} in docker images`,
      async () => {
        const out = await host.docker.cli(['images', '--format', '{{.Repository}}:{{.Tag}}', `${CACHE_REPOSITORY}:${image.id}`]);
        return out.includes(`${CACHE_REPOSITORY}:${image.id}`) ? { done: true, value: out } : { done: false, seen: out };
      },
      { timeoutMs: 60_000 },
    );
    assert.ok(host.berth.logs.some((l) => l.msg === 'image pre-cached' && l['image_id'] === image.id), 'Berth logged the pre-caching');
    assert.deepEqual(fetchesOf(host.berth.logs, image.id), { downloads: 1, loads: 1 });

    const { server } = await host.bootServer({ flavor: flavor.id, image: image.id });
    assert.equal((await host.docker.requireInstanceContainer(server.id)).State.Status, 'running');
    assert.deepEqual(fetchesOf(host.berth.logs, image.id), { downloads: 1, loads: 1 }, 'the boot used the cached image');
  });
});
