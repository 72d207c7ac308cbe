// Issue 3, restart recovery (init_host): Berth SIGKILLed in the middle of a boot comes back and the instance ends
// ACTIVE, or ERROR with a fault, never stuck in a task state; a container labelled as Nova's whose instance does not
// exist is removed at start-up, and only such a container of this host.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { LABEL } from '../../driver/docker/container-config';
import { buildBusyboxImage, type TestImage } from '../support/images';
import {
  BerthHost,
  type Flavor,
  type Image,
  consumerAllocations,
  printMeasure,
  requireControlPlane,
  requireDocker,
  showServer,
  waitFor,
} from './support';

describe('restart recovery on the Docker driver (e2e, issue 3)', function () {
  this.timeout(300_000);
  let host: BerthHost;
  const strays: string[] = [];
  let tar: TestImage;
  let flavor: Flavor;
  let image: Image;

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    // debug: the manager's 'Start spawning the instance on the hypervisor.' is a debug line, as in Nova.
    host = new BerthHost({ suite: 'recovery', config: { DEFAULT: { debug: true } } });
    tar = await buildBusyboxImage('berth-e2e-recovery:latest');
    [, image, flavor] = await Promise.all([host.start(), host.uploadImage({ file: tar.tarPath }), host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1 })]);
  });

  after(async function () {
    for (const name of strays) await host?.docker.cli(['rm', '-f', name]).catch(() => undefined);
    if (tar) await host?.docker.cli(['rmi', tar.tag]).catch(() => undefined);
    await host?.cleanup();
  });

  it('ends an interrupted boot ACTIVE or ERROR with a fault after SIGKILL and restart, never in a task state', async function () {
    const created = await host.createServer({ flavor: flavor.id, image: image.id });
    await host.berth.waitForLog((l) => l['instance_uuid'] === created.id && l.msg === 'Start spawning the instance on the hypervisor.', {
      description: 'the spawn to start',
    });
    assert.deepEqual(await host.berth.kill('SIGKILL'), { code: null, signal: 'SIGKILL' });
    const killed = await showServer(created.id);
    console.log(`      observed: after SIGKILL: status ${killed.status}, task_state ${String(killed['OS-EXT-STS:task_state'])}`);

    const restartedAt = Date.now();
    await host.start();
    const server = await waitFor(
      'the interrupted boot to settle',
      async () => {
        const s = await showServer(created.id);
        const settled = s['OS-EXT-STS:task_state'] === null && (s.status === 'ACTIVE' || s.status === 'ERROR');
        return settled ? { done: true, value: s } : { done: false, seen: { status: s.status, task_state: s['OS-EXT-STS:task_state'] } };
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    printMeasure('restart to the instance settled', (Date.now() - restartedAt) / 1000, 's');
    console.log(`      observed: after restart: ${server.status}${server.fault ? ` with fault "${server.fault.message}"` : ''}`);
    const container = await host.docker.instanceContainer(created.id);
    if (server.status === 'ACTIVE') {
      assert.equal(container?.State.Status, 'running');
    } else {
      assert.ok(server.fault?.message, 'an ERROR instance carries a fault that says why');
      assert.equal(container, null, 'the half-built container is gone');
    }
    assert.deepEqual(await readdir(join(host.statePath, 'images')).catch(() => []), [], 'no download left behind');
    await host.deleteServer(created.id);
    assert.deepEqual(await consumerAllocations(created.id), []);
  });

  it("removes, at start-up, a container of this host labelled as an instance that does not exist, and nothing else", async function () {
    assert.deepEqual(await host.stop(), { code: 0, signal: null });
    await host.docker.cli(['load', '-q', '-i', tar.tarPath]);
    const run = async (name: string, labels: Readonly<Record<string, string>>): Promise<string> => {
      strays.push(name);
      const args = ['run', '-d', '--network', 'none', '--name', name];
      for (const [key, value] of Object.entries(labels)) args.push('--label', `${key}=${value}`);
      return (await host.docker.cli([...args, tar.tag])).trim();
    };
    const orphan = randomUUID();
    await run(`nova-${orphan}`, { [LABEL.instanceUuid]: orphan, [LABEL.computeHost]: host.host });
    // Another compute host's container on the same engine, and one labelled as ours but not named as the driver names
    // containers (a container of an image committed from an instance carries the labels too): neither is ours.
    const elsewhere = randomUUID();
    const otherHost = await run(`nova-${elsewhere}`, { [LABEL.instanceUuid]: elsewhere, [LABEL.computeHost]: `${host.host}-other` });
    const stranger = randomUUID();
    const unnamed = await run(`${host.host}-not-an-instance`, { [LABEL.instanceUuid]: stranger, [LABEL.computeHost]: host.host });

    await host.start();
    await waitFor(
      'the orphan container to be removed',
      async () => {
        const c = await host.docker.instanceContainer(orphan);
        return c === null ? { done: true, value: undefined } : { done: false, seen: c.State.Status };
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.ok(
      host.berth.logs.some((l) => l['instance_uuid'] === orphan && /^Destroying instance with name label/.test(String(l.msg))),
      'Berth reported the orphan it removed',
    );
    for (const id of [otherHost, unnamed]) {
      assert.equal((await host.docker.client.getContainer(id).inspect()).State.Status, 'running', 'left alone');
    }
    assert.ok(host.running);
  });
});
