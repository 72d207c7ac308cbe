// Issue 3, bad input: builds that cannot work end in ERROR with a fault that says why, their Placement allocation
// gone and no container left (an image that is no docker archive, stored bytes that no longer match Glance's hash,
// container format bare, a flavor extra spec the host forbids, a flavor bigger than the host); and the Docker Engine
// going away in the middle of an operation gives a fault and no stuck task state, after which Berth carries on.
// Berth drives a private dockerd here, so stopping the engine touches nobody else's containers.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { parseIni } from '../../src/config';
import { buildBusyboxImage, type TestImage } from '../support/images';
import {
  AIO,
  BerthHost,
  type Flavor,
  type Image,
  PrivateDockerd,
  consumerAllocations,
  instanceActionsWithEvents,
  openstack,
  printMeasure,
  requireControlPlane,
  requireDocker,
  showServer,
  waitFor,
  waitForServerStatus,
} from './support';

/** Where Glance's filesystem store keeps image data (glance-api.conf [glance_store] filesystem_store_datadir). */
async function glanceStoreDir(): Promise<string> {
  const file = join(AIO.etc, 'glance-api.conf');
  const values = parseIni(await readFile(file, 'utf8'), file).sections.get('glance_store')?.get('filesystem_store_datadir');
  const dir = values?.[values.length - 1]?.value;
  assert.ok(dir, `${file} names its filesystem store`);
  return dir;
}

describe('failures: bad images and flavors, Docker down (e2e, issue 3)', function () {
  this.timeout(300_000);
  let engine: PrivateDockerd | undefined;
  let host: BerthHost;
  let tar: TestImage;
  let flavor: Flavor;

  /** The failing boots, started together in `before` (each CLI call costs a second of Python start-up). */
  const bad: Record<'notAnArchive' | 'corrupted' | 'bare' | 'capAdd' | 'tooBig', string> = {
    notAnArchive: '',
    corrupted: '',
    bare: '',
    capAdd: '',
    tooBig: '',
  };
  let good: Image;

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    engine = await PrivateDockerd.start('failures');
    host = new BerthHost({ suite: 'failures', docker: engine });
    const started = host.start();
    started.catch(() => undefined); // awaited by the boots below; not an unhandled rejection meanwhile
    tar = await buildBusyboxImage('berth-e2e-failures:latest');
    await mkdir(host.statePath, { recursive: true });
    const junk = join(host.statePath, 'random.tar');
    await writeFile(junk, randomBytes(64 * 1024));
    const memTotalMb = (await engine.client.info()).MemTotal / 1024 / 1024;

    const boot = async (name: keyof typeof bad, image: Promise<Image>, flavor: Promise<Flavor>): Promise<void> => {
      const [, i, f] = await Promise.all([started, image, flavor]);
      bad[name] = (await host.createServer({ image: i.id, flavor: f.id })).id;
    };
    const corrupted = async (): Promise<Image> => {
      const image = await host.uploadImage({ file: tar.tarPath });
      // Corrupt the stored copy in place (same size), behind Glance's back.
      const file = await open(join(await glanceStoreDir(), image.id), 'r+');
      try {
        await file.write(Buffer.from('corrupted by the berth e2e suite'), 0, undefined, Math.floor(tar.size / 2));
      } finally {
        await file.close();
      }
      return image;
    };
    const goodImage = host.uploadImage({ file: tar.tarPath });
    const small = host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1 });
    await Promise.all([
      boot('notAnArchive', host.uploadImage({ file: junk }), small),
      boot('corrupted', corrupted(), small),
      boot('bare', host.uploadImage({ file: tar.tarPath, containerFormat: 'bare' }), small),
      boot('capAdd', goodImage, host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1, properties: { 'docker:cap_add': 'SYS_ADMIN' } })),
      boot('tooBig', goodImage, host.createFlavor({ vcpus: 1, ramMb: Math.ceil(memTotalMb * 4), diskGb: 1 })),
    ]);
    good = await goodImage;
    flavor = await small;
  });

  after(async function () {
    try {
      // Whatever a test did to the engine, it runs again before the servers are deleted.
      await engine?.startDaemon();
      await host?.cleanup();
    } finally {
      await engine?.destroy();
    }
  });

  /** The boot ends in ERROR: a fault matching `reason`, no task, no allocation, no container. */
  async function expectBuildFailure(id: string, reason: RegExp): Promise<void> {
    const server = await waitForServerStatus(id, 'ERROR', { intervalMs: 500 });
    console.log(`      fault: ${server.fault?.message ?? '(none)'}`);
    assert.ok(server.fault, 'a fault');
    assert.match(server.fault.message, reason);
    assert.equal(server['OS-EXT-STS:task_state'], null);
    assert.deepEqual(await consumerAllocations(id), [], 'the allocation is removed');
    assert.equal(await engine?.instanceContainer(id), null, 'no container');
  }

  it('fails a docker image that is not a docker save archive, naming the reason', async function () {
    await expectBuildFailure(bad.notAnArchive, /not a docker save archive/);
  });

  it('fails an image whose stored bytes no longer match its hash', async function () {
    await expectBuildFailure(bad.corrupted, /Corrupt image download .* hash/);
  });

  it('fails an image of container format bare', async function () {
    await expectBuildFailure(bad.bare, /container_format is bare/);
  });

  it('fails a flavor whose extra spec asks for a capability the host does not allow', async function () {
    await expectBuildFailure(bad.capAdd, /docker:cap_add=SYS_ADMIN is not allowed/);
  });

  it('fails a flavor bigger than the host (the scheduler finds no host)', async function () {
    await expectBuildFailure(bad.tooBig, /No valid host/);
  });

  it('survives the Docker Engine going away during an operation: a fault, no stuck task, and the next operation works', async function () {
    const { server } = await host.bootServer({ flavor: flavor.id, image: good.id });
    const id = server.id;
    const d = engine as PrivateDockerd;
    let op: 'stop' | 'start';
    try {
      await d.stopDaemon();
      // The engine stops its containers on the way down; Berth may see that in time and stop the server itself.
      const settled = await waitFor(
        'no task running once the engine is gone',
        async () => {
          const s = await showServer(id);
          return s['OS-EXT-STS:task_state'] === null ? { done: true, value: s } : { done: false, seen: s['OS-EXT-STS:task_state'] };
        },
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      op = settled.status === 'SHUTOFF' ? 'start' : 'stop';
      await openstack(['server', op, id]);
      // The API set the task state before it answered; Berth clears it once the operation has failed.
      await waitFor(
        `the ${op} to end`,
        async () => {
          const s = await showServer(id);
          return s['OS-EXT-STS:task_state'] === null ? { done: true, value: s } : { done: false, seen: s['OS-EXT-STS:task_state'] };
        },
        { timeoutMs: 90_000, intervalMs: 1_000 },
      );
      // nova-api shows `fault` for ERROR servers only; the failed operation's instance action event carries it.
      const action = (await instanceActionsWithEvents(id)).filter((a) => a.action === op).pop();
      const event = action?.events.find((e) => e.event === `compute_${op}_instance`);
      assert.ok(event, `compute_${op}_instance was recorded`);
      const failed = await showServer(id);
      const reason = String(event.traceback ?? '').trim().split('\n').pop() ?? '';
      console.log(`      observed: server ${op} with Docker down: ${failed.status}, event ${String(event.result)}: ${reason}`);
      assert.equal(event.result, 'Error', `compute_${op}_instance failed`);
      assert.match(reason, /HypervisorUnavailable.*docker\.sock/);
      assert.equal(failed.status, settled.status, `the ${op} did not pretend to succeed`);
      assert.ok(host.running, 'Berth is still running');
    } finally {
      await d.startDaemon();
    }
    // Docker is back: the server is started again (stopped first if Nova still had it ACTIVE; the engine stopped it).
    const recovered = Date.now();
    if (op === 'stop') {
      await openstack(['server', 'stop', id]);
      await waitForServerStatus(id, 'SHUTOFF', { intervalMs: 500 });
    }
    await openstack(['server', 'start', id]);
    const active = await waitForServerStatus(id, 'ACTIVE', { intervalMs: 500 });
    printMeasure('engine back to the server ACTIVE again', (Date.now() - recovered) / 1000, 's');
    assert.equal(active['OS-EXT-STS:power_state'], 1);
    assert.equal((await d.requireInstanceContainer(id)).State.Status, 'running');
    // And a new boot works too.
    const next = await host.bootServer({ flavor: flavor.id, image: good.id });
    assert.equal((await d.requireInstanceContainer(next.server.id)).State.Status, 'running');
  });
});
