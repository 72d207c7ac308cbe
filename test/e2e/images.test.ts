// Issue 3, images: a snapshot (`openstack server image create`) is an active Glance image of container format docker
// that boots a second server; a second boot of an image already loaded downloads nothing (Berth logs every download
// and every `docker load`); a rebuild to another image brings the server back ACTIVE on the new image.
import assert from 'node:assert/strict';

import { LABEL } from '../../driver/docker/container-config';
import { CONSOLE_LINES, buildBusyboxImage } from '../support/images';
import {
  BerthHost,
  type BerthLogLine,
  type Flavor,
  type Image,
  openstack,
  openstackJson,
  printMeasure,
  requireControlPlane,
  requireDocker,
  showImage,
  showServer,
  waitFor,
  waitForServerStatus,
} from './support';

const REBUILT_LINE = 'berth rebuilt onto image B';
const IMAGE_B_COMMAND = ['/bin/sh', '-c', `trap "exit 0" TERM; echo "${REBUILT_LINE}"; while :; do sleep 3600 & wait $!; done`];

/** Berth's log lines for a Glance download of `imageId` and for its `docker load`. */
function fetchesOf(lines: readonly BerthLogLine[], imageId: string): { downloads: number; loads: number } {
  const about = lines.filter((l) => l['image_id'] === imageId);
  return {
    downloads: about.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('image downloaded')).length,
    loads: about.filter((l) => l.msg === 'image loaded into the Docker cache').length,
  };
}

describe('images: snapshot, cache and rebuild on the Docker driver (e2e, issue 3)', function () {
  this.timeout(300_000);
  let host: BerthHost;
  let flavor: Flavor;
  let imageA: Image;
  let imageB: Image;
  let first = '';
  let firstBootMs = 0;

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    host = new BerthHost({ suite: 'images' });
    const [tarA, tarB] = [await buildBusyboxImage('berth-e2e-images-a:latest'), await buildBusyboxImage('berth-e2e-images-b:latest', IMAGE_B_COMMAND)];
    [, imageA, imageB, flavor] = await Promise.all([
      host.start(),
      host.uploadImage({ file: tarA.tarPath }),
      host.uploadImage({ file: tarB.tarPath }),
      host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1 }),
    ]);
    const boot = await host.bootServer({ flavor: flavor.id, image: imageA.id });
    first = boot.server.id;
    firstBootMs = boot.ms;
    assert.deepEqual(fetchesOf(host.berth.logs, imageA.id), { downloads: 1, loads: 1 }, 'the first boot downloads and loads the image');
  });

  after(async function () {
    await host?.cleanup();
  });

  it('snapshots a server into an active docker image that boots a second server', async function () {
    const started = Date.now();
    const created = await openstackJson<{ id: string }>(['server', 'image', 'create', '--name', host.name('snapshot'), '--wait', first]);
    host.trackImage(created.id);
    printMeasure('snapshot (server image create --wait)', (Date.now() - started) / 1000, 's');
    const snapshot = await showImage(created.id);
    assert.equal(snapshot.status, 'active');
    assert.equal(snapshot.container_format, 'docker');
    assert.equal(snapshot.disk_format, 'raw');
    assert.ok((snapshot.size ?? 0) > 0, 'the snapshot has data');
    assert.equal(snapshot.properties['instance_uuid'], first);
    assert.equal((await showServer(first))['OS-EXT-STS:task_state'], null);

    const { server } = await host.bootServer({ flavor: flavor.id, image: snapshot.id });
    const c = await host.docker.requireInstanceContainer(server.id);
    assert.equal(c.State.Status, 'running');
    assert.equal(c.Config.Labels?.[LABEL.imageId], snapshot.id);
    // The committed image keeps the command of the original one.
    const log = await openstack(['console', 'log', 'show', server.id]);
    assert.deepEqual(log.split('\n').filter(Boolean), CONSOLE_LINES);
    assert.deepEqual(fetchesOf(host.berth.logs, snapshot.id), { downloads: 1, loads: 1 });
  });

  it('boots the same image again without downloading it', async function () {
    const { server, ms } = await host.bootServer({ flavor: flavor.id, image: imageA.id });
    printMeasure('boot to ACTIVE, image not cached yet (first boot)', firstBootMs / 1000, 's');
    printMeasure('boot to ACTIVE, image cached', ms / 1000, 's');
    assert.equal((await host.docker.requireInstanceContainer(server.id)).State.Status, 'running');
    assert.deepEqual(fetchesOf(host.berth.logs, imageA.id), { downloads: 1, loads: 1 }, 'no second download or load');
  });

  it('rebuilds a server onto another image: ACTIVE, running the new image', async function () {
    const before = await host.docker.requireInstanceContainer(first);
    await openstack(['server', 'rebuild', '--image', imageB.id, first]);
    const server = await waitForServerStatus(first, 'ACTIVE', { intervalMs: 500 });
    assert.equal(server.fault, undefined);
    assert.match(JSON.stringify(server['image']), new RegExp(imageB.id));
    const c = await host.docker.requireInstanceContainer(first);
    assert.notEqual(c.Id, before.Id, 'a new container');
    assert.equal(c.State.Status, 'running');
    assert.equal(c.Config.Labels?.[LABEL.imageId], imageB.id);
    await waitFor(
      "the new image's output in the console log",
      async () => {
        const log = await openstack(['console', 'log', 'show', first]);
        return log.includes(REBUILT_LINE) ? { done: true, value: log } : { done: false, seen: log };
      },
      { timeoutMs: 20_000 },
    );
    const rebuild = (await openstackJson<{ Action: string }[]>(['server', 'event', 'list', first])).filter((a) => a.Action === 'rebuild');
    assert.equal(rebuild.length, 1);
  });
});
