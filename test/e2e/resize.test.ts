// Resize on a Berth host through the real `openstack` CLI against the real control plane (allow_resize_to_same_host
// on, as control-plane.sh configures it): `server resize --flavor`, `server resize confirm`, `server resize revert`,
// with Docker's HostConfig.Memory / NanoCpus, the migration record and Placement's allocations checked after each
// step; a STOPPED server stays off; a flavor the runtime refuses rolls back to what was. The flavors require a trait
// only this host's provider carries, so the scheduler cannot pick another compute (other suites' hosts or a
// Python peer) for the resize: the resize is forced onto this host as the boot is.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import type Docker from 'dockerode';

import { buildBusyboxImage } from '../support/images';
import {
  type Allocation,
  BerthHost,
  consumerAllocations,
  findResourceProvider,
  type Flavor,
  type Image,
  type InstanceAction,
  instanceActionsWithEvents,
  type MigrationRow,
  openstack,
  printMeasure,
  providerTraits,
  requireControlPlane,
  requireDocker,
  serverMigrations,
  showServer,
  waitForServerStatus,
} from './support';

const MIB = 1024 * 1024;
const NANO = 1e9;

describe('resize on the Docker driver (e2e)', function () {
  this.timeout(300_000);
  let host: BerthHost;
  let image: Image;
  let f1: Flavor;
  let f2: Flavor;
  let readOnly: Flavor;
  let provider = '';
  const trait = `CUSTOM_BERTH_E2E_RESIZE_${randomBytes(3).toString('hex').toUpperCase()}`;

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    host = new BerthHost({ suite: 'resize' });
    await host.start();
    const rp = await findResourceProvider(host.host);
    assert.ok(rp, 'the host has a resource provider');
    provider = rp.uuid;
    // Only this provider offers the trait the flavors require (Berth keeps traits it does not manage).
    await openstack(['--os-placement-api-version', '1.6', 'trait', 'create', trait]);
    await openstack(['--os-placement-api-version', '1.6', 'resource', 'provider', 'trait', 'set', ...[...(await providerTraits(provider)), trait].flatMap((t) => ['--trait', t]), provider]);
    const required = { [`trait:${trait}`]: 'required' };
    image = await host.uploadImage({ file: (await buildBusyboxImage('berth-e2e-resize:latest')).tarPath });
    f1 = await host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1, properties: required });
    f2 = await host.createFlavor({ vcpus: 2, ramMb: 128, diskGb: 1, properties: required });
    // Docker fixes the root filesystem's mode at creation: this flavor cannot be applied to a running container.
    readOnly = await host.createFlavor({ vcpus: 1, ramMb: 96, diskGb: 1, properties: { ...required, 'docker:read_only_root': 'true' } });
  });

  after(async function () {
    await host?.cleanup();
    await openstack(['--os-placement-api-version', '1.6', 'trait', 'delete', trait]).catch(() => undefined);
  });

  const container = (id: string): Promise<Docker.ContainerInspectInfo> => host.docker.requireInstanceContainer(id);

  async function limits(id: string): Promise<{ memory: number; nanoCpus: number; running: boolean }> {
    const c = await container(id);
    return { memory: Number(c.HostConfig.Memory), nanoCpus: Number(c.HostConfig.NanoCpus), running: c.State.Running };
  }

  const expected = (flavor: Flavor, running: boolean) => ({ memory: flavor.ram * MIB, nanoCpus: flavor.vcpus * NANO, running });

  /** The consumer's resources on this host's provider (Placement, through osc-placement). */
  async function held(consumer: string): Promise<Record<string, number> | null> {
    const rows: Allocation[] = await consumerAllocations(consumer);
    const mine = rows.find((a) => a.resource_provider === provider);
    assert.equal(rows.length, mine ? 1 : 0, `${consumer} holds nothing on another provider`);
    return mine ? { ...mine.resources } : null;
  }

  const resources = (flavor: Flavor) => ({ VCPU: flavor.vcpus, MEMORY_MB: flavor.ram, DISK_GB: flavor.disk });

  async function migrations(id: string): Promise<MigrationRow[]> {
    const rows = await serverMigrations(id);
    return rows.sort((a, b) => a.Id - b.Id);
  }

  async function lastAction(id: string, action: string): Promise<InstanceAction> {
    const found = (await instanceActionsWithEvents(id)).filter((a) => a.action === action).at(-1);
    assert.ok(found, `a ${action} action`);
    return found;
  }

  // The compute's events (the conductor adds its own: cold_migrate, conductor_migrate_server).
  const events = (action: InstanceAction): string[] => action.events.filter((e) => e.event.startsWith('compute_')).map((e) => `${e.event} ${e.result}`).sort();

  /** When Berth logged `msg` (a prefix) for the server, at or after `since` (ms); resolves once it has. */
  async function loggedAt(id: string, msg: string, since: number): Promise<number> {
    const line = await host.berth.waitForLog(
      (l) => l['instance_uuid'] === id && typeof l.msg === 'string' && l.msg.startsWith(msg) && Date.parse(String(l.time)) >= since,
      { timeoutMs: 30_000, description: `"${msg}" for ${id}` },
    );
    return Date.parse(String(line.time));
  }

  /** `server resize --flavor`, waiting for `status`; resolves with the seconds it took. */
  async function resize(id: string, flavor: Flavor, status = 'VERIFY_RESIZE'): Promise<number> {
    const started = Date.now();
    await openstack(['server', 'resize', '--flavor', flavor.id, id]);
    // The API answers before the resize starts: wait for it to begin, then for where it ends.
    await waitForServerStatus(id, status, { intervalMs: 250 });
    return (Date.now() - started) / 1000;
  }

  describe('an ACTIVE server', () => {
    let id = '';

    before(async function () {
      id = (await host.bootServer({ flavor: f1.id, image: image.id })).server.id;
    });

    it('resizes to VERIFY_RESIZE: the container carries the new limits, both flavors are held in Placement', async function () {
      assert.deepEqual(await limits(id), expected(f1, true));
      assert.deepEqual(await held(id), resources(f1));

      const started = Date.now();
      printMeasure('resize --flavor to VERIFY_RESIZE (CLI, API polled every 0.25 s)', await resize(id, f2), 's');
      const migrating = await loggedAt(id, 'Migrating', started);
      printMeasure("Berth's resize_instance + finish_resize ('Migrating' to 'Resized to flavor' in its log)", ((await loggedAt(id, 'Resized to flavor', started)) - migrating) / 1000, 's');
      const server = await showServer(id);
      assert.equal(server['OS-EXT-STS:vm_state'], 'resized');
      assert.equal(server['OS-EXT-SRV-ATTR:host'], host.host);
      assert.equal(server.fault, undefined);
      assert.deepEqual(await limits(id), expected(f2, true));

      const [migration] = await migrations(id);
      assert.ok(migration);
      assert.deepEqual([migration.Status, migration.Type, migration['Source Compute'], migration['Dest Compute']], ['finished', 'resize', host.host, host.host]);
      assert.deepEqual(await held(migration.UUID), resources(f1), 'the migration holds the old flavor');
      assert.deepEqual(await held(id), resources(f2), 'the instance holds the new flavor');

      assert.deepEqual(events(await lastAction(id, 'resize')), [
        'compute_finish_resize Success',
        'compute_prep_resize Success',
        'compute_resize_instance Success',
      ]);
    });

    it('confirm: ACTIVE with the new flavor; the migration is confirmed and its allocation gone', async function () {
      const started = Date.now();
      await openstack(['server', 'resize', 'confirm', id]);
      const server = await waitForServerStatus(id, 'ACTIVE', { intervalMs: 250 });
      printMeasure('resize confirm to ACTIVE (CLI, API polled every 0.25 s)', (Date.now() - started) / 1000, 's');
      printMeasure("resize confirm CLI start to Berth's 'Resize confirmed'", ((await loggedAt(id, 'Resize confirmed', started)) - started) / 1000, 's');
      assert.equal(server.fault, undefined);
      const flavor = server['flavor'] as { original_name?: string } | string;
      assert.ok(JSON.stringify(flavor).includes(f2.name), `the server's flavor is ${f2.name}: ${JSON.stringify(flavor)}`);
      assert.deepEqual(await limits(id), expected(f2, true));
      const [migration] = await migrations(id);
      assert.equal(migration?.Status, 'confirmed');
      assert.equal(await held(String(migration?.UUID)), null);
      assert.deepEqual(await held(id), resources(f2));
      assert.deepEqual(events(await lastAction(id, 'confirmResize')), ['compute_confirm_resize Success']);
    });

    it('revert: the old limits and the old allocation come back, ACTIVE; the migration is reverted', async function () {
      await resize(id, f1);
      assert.deepEqual(await limits(id), expected(f1, true));
      const started = Date.now();
      await openstack(['server', 'resize', 'revert', id]);
      const server = await waitForServerStatus(id, 'ACTIVE', { intervalMs: 250 });
      printMeasure('resize revert to ACTIVE (CLI, API polled every 0.25 s)', (Date.now() - started) / 1000, 's');
      printMeasure("resize revert CLI start to Berth's 'Resize reverted'", ((await loggedAt(id, 'Resize reverted', started)) - started) / 1000, 's');
      assert.equal(server.fault, undefined);
      assert.deepEqual(await limits(id), expected(f2, true));
      const migration = (await migrations(id)).at(-1);
      assert.equal(migration?.Status, 'reverted');
      assert.equal(await held(String(migration?.UUID)), null);
      assert.deepEqual(await held(id), resources(f2));
      assert.deepEqual(events(await lastAction(id, 'revertResize')), ['compute_finish_revert_resize Success', 'compute_revert_resize Success']);
    });

    it('a flavor the runtime refuses (read-only root on a running container) rolls back: ACTIVE, old limits, old allocation', async function () {
      await resize(id, readOnly, 'ACTIVE');
      const server = await showServer(id);
      assert.equal(server['OS-EXT-STS:vm_state'], 'active');
      assert.deepEqual(await limits(id), expected(f2, true));
      const migration = (await migrations(id)).at(-1);
      assert.equal(migration?.Status, 'error');
      assert.equal(await held(String(migration?.UUID)), null);
      assert.deepEqual(await held(id), resources(f2));
      const action = await lastAction(id, 'resize');
      assert.deepEqual(events(action), ['compute_prep_resize Success', 'compute_resize_instance Error']);
      const failed = action.events.find((e) => e.event === 'compute_resize_instance');
      assert.match(String(failed?.traceback), /needs a rebuild/);
    });
  });

  describe('a server deleted in VERIFY_RESIZE', () => {
    it('is confirmed first (nova-api calls confirm_resize), then deleted: no allocation of it or its migration left', async function () {
      const { server } = await host.bootServer({ flavor: f1.id, image: image.id });
      await resize(server.id, f2);
      const [migration] = await migrations(server.id);
      assert.ok(migration);
      await host.deleteServer(server.id);
      assert.equal(await held(server.id), null);
      assert.equal(await held(migration.UUID), null);
      assert.equal(await host.docker.instanceContainer(server.id), null, 'no container left');
    });
  });

  describe('a STOPPED server', () => {
    let id = '';

    before(async function () {
      id = (await host.bootServer({ flavor: f1.id, image: image.id })).server.id;
      await openstack(['server', 'stop', id]);
      await waitForServerStatus(id, 'SHUTOFF', { intervalMs: 250 });
    });

    it('stays off through resize and confirm, and ends SHUTOFF with the new limits', async function () {
      await resize(id, f2);
      assert.deepEqual(await limits(id), expected(f2, false));
      await openstack(['server', 'resize', 'confirm', id]);
      const server = await waitForServerStatus(id, 'SHUTOFF', { intervalMs: 250 });
      assert.equal(server['OS-EXT-STS:vm_state'], 'stopped');
      assert.deepEqual(await limits(id), expected(f2, false));
      assert.deepEqual(await held(id), resources(f2));
    });
  });
});
