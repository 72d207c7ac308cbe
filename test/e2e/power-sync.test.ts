// Issue 3, power-state sync: containers changed behind Nova's back. A killed container shows SHUTOFF within 15 s
// through a `stop` instance action (what Nova's _sync_instance_power_state does with compute_api.force_stop); a
// container started again behind Nova's back while the instance is SHUTOFF is stopped again, as Nova stops a
// running guest whose vm_state is stopped.
import assert from 'node:assert/strict';

import { buildBusyboxImage } from '../support/images';
import {
  BerthHost,
  type Flavor,
  type Image,
  type InstanceAction,
  instanceActionsWithEvents,
  printMeasure,
  requireControlPlane,
  requireDocker,
  showServer,
  waitFor,
  waitForServerStatus,
} from './support';

/** The server's `stop` actions whose compute_stop_instance event finished with Success. */
async function successfulStops(id: string): Promise<InstanceAction[]> {
  return (await instanceActionsWithEvents(id)).filter(
    (a) => a.action === 'stop' && a.events.some((e) => e.event === 'compute_stop_instance' && e.result === 'Success'),
  );
}

describe('power-state sync with Docker (e2e, issue 3)', function () {
  this.timeout(180_000);
  let host: BerthHost;
  let flavor: Flavor;
  let image: Image;
  let id = '';

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    host = new BerthHost({ suite: 'powersync' });
    const tar = await buildBusyboxImage('berth-e2e-powersync:latest');
    [, image, flavor] = await Promise.all([host.start(), host.uploadImage({ file: tar.tarPath }), host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1 })]);
    id = (await host.bootServer({ flavor: flavor.id, image: image.id })).server.id;
  });

  after(async function () {
    await host?.cleanup();
  });

  it('shows SHUTOFF within 15 s of `docker kill`, through a stop action', async function () {
    const killed = Date.now();
    await host.docker.cli(['kill', `nova-${id}`]);
    const server = await waitForServerStatus(id, 'SHUTOFF', { timeoutMs: 15_000, intervalMs: 250 });
    printMeasure('docker kill to SHUTOFF in the API', (Date.now() - killed) / 1000, 's');
    assert.equal(server['OS-EXT-STS:power_state'], 4, 'power_state Shutdown');
    assert.equal(server.fault, undefined);
    const stops = await successfulStops(id);
    assert.equal(stops.length, 1, 'one stop action, recorded by the power sync');
    const c = await host.docker.requireInstanceContainer(id);
    assert.equal(c.State.Running, false);
  });

  it('stops a SHUTOFF instance again when its container is started behind Nova\'s back', async function () {
    const started = Date.now();
    await host.docker.cli(['start', `nova-${id}`]);
    // Nova's answer to "vm_state stopped, guest running" is another stop: the container goes down again and the
    // server never leaves SHUTOFF (the API only shows a powering-off task meanwhile).
    await waitFor(
      'the container to be stopped again with a second stop action',
      async () => {
        const c = await host.docker.requireInstanceContainer(id);
        const stops = c.State.Running ? [] : await successfulStops(id);
        return stops.length === 2 ? { done: true, value: undefined } : { done: false, seen: { running: c.State.Running, stops: stops.length } };
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    printMeasure('docker start to stopped again', (Date.now() - started) / 1000, 's');
    const server = await waitForServerStatus(id, 'SHUTOFF');
    assert.equal(server['OS-EXT-STS:power_state'], 4);
    assert.equal(server['OS-EXT-STS:vm_state'], 'stopped');
    assert.equal(server.fault, undefined);
    assert.ok(
      host.berth.logs.some((l) => l['instance_uuid'] === id && l.msg === 'Instance is not stopped. Calling the stop API.'),
      'Berth logged why it stopped the instance, in Nova\'s words',
    );
    assert.equal((await showServer(id))['OS-EXT-STS:task_state'], null);
  });
});
