// Cold migration between two Berth hosts through the real control plane and the real `openstack` CLI (non-shared
// storage, through Glance): host A drives the machine's shared dockerd, host B a private one (two hosts on one engine
// would collide on the container name nova-<uuid>). A server boots on A, something is written into its container,
// `openstack server migrate --host B` (compute API 2.56) takes it to VERIFY_RESIZE on B with a running container that
// has the file, carried in a temporary private image of the service project (berth-migration-<migration uuid>) that
// the user never sees; `server resize confirm` makes it ACTIVE, removes A's container and A's allocation and deletes
// the image. A stopped server moves without being started, and a delete in VERIFY_RESIZE confirms first. A last
// server is migrated and reverted: back on A, running, with its file; nothing left on B. And a resize that the
// scheduler places on B (its flavor requires a trait only B's provider has) moves with the new flavor's limits.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import {
  AIO,
  BerthHost,
  consumerAllocations,
  type Flavor,
  type Image,
  instanceActionsWithEvents,
  type MigrationRow,
  onlyMigration,
  openstack,
  OpenStackCliError,
  openstackJson,
  printMeasure,
  PrivateDockerd,
  providerTraits,
  requireControlPlane,
  requireDocker,
  serverMigrations,
  showImage,
  showServer,
  startTwoHosts,
  waitFor,
  waitForServerStatus,
} from './support';

describe('cold migration between two Berth hosts (e2e)', function () {
  this.timeout(600_000);
  let engine: PrivateDockerd | undefined;
  let a: BerthHost;
  let b: BerthHost;
  let image: Image;
  let flavor: Flavor;
  let providerA = '';
  let providerB = '';
  /** Only B's provider carries it: a flavor requiring it makes the scheduler place a resize on B. */
  const trait = `CUSTOM_BERTH_E2E_COLDMIG_${randomBytes(3).toString('hex').toUpperCase()}`;
  let traitCreated = false;
  /** The servers the tests leave on B (B's only containers afterwards). */
  const leftOnB = new Set<string>();
  /** Temporary images a failed run may leave behind (deleted in `after`, a missing one is fine). */
  const transferImages = new Set<string>();

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    ({ engine, a, b, image, flavor, providerA, providerB } = await startTwoHosts('coldmig'));
  });

  after(async function () {
    try {
      for (const id of transferImages) await openstack(['image', 'delete', id]).catch(() => undefined);
      // A first: it deletes the servers (wherever they are, B must still run), the image and the flavor.
      await a?.cleanup();
      await b?.cleanup();
      // B's provider went with B's service record: nothing carries the trait any more.
      if (traitCreated) await openstack(['--os-placement-api-version', '1.6', 'trait', 'delete', trait]).catch(() => undefined);
    } finally {
      await engine?.destroy();
    }
  });

  const providersOf = async (consumer: string): Promise<string[]> => (await consumerAllocations(consumer)).map((r) => r.resource_provider).sort();

  const migrationOf = (id: string): Promise<MigrationRow> => onlyMigration(id, 'migration');

  /** `image show` as admin, or null when Glance has no such image. */
  async function glanceImage(id: string): Promise<Image | null> {
    try {
      return await showImage(id);
    } catch (err) {
      if (err instanceof OpenStackCliError && /No Image found|could not be found|No image with a name or ID|404/i.test(err.stderr)) return null;
      throw err;
    }
  }

  /** Boots on A and writes a marker into the container's writable layer. */
  async function bootWithMarker(text: string): Promise<string> {
    const { server } = await a.bootServer({ flavor: flavor.id, image: image.id });
    assert.equal(server['OS-EXT-SRV-ATTR:host'], a.host);
    await a.docker.execInInstance(server.id, ['sh', '-c', `echo ${text} > /migrate-marker`]);
    return server.id;
  }

  /** `openstack server migrate --host B` and the wait for VERIFY_RESIZE on B; the migration and its image. */
  async function migrateToB(id: string, running = true): Promise<{ migration: MigrationRow; transfer: Image }> {
    const started = Date.now();
    await openstack(['--os-compute-api-version', '2.56', 'server', 'migrate', '--host', b.host, id]);
    const server = await waitForServerStatus(id, 'VERIFY_RESIZE', { intervalMs: 500, timeoutMs: 240_000 });
    printMeasure('migrate → VERIFY_RESIZE on B', (Date.now() - started) / 1000, 's');
    assert.equal(server['OS-EXT-SRV-ATTR:host'], b.host);
    assert.equal(server['OS-EXT-SRV-ATTR:hypervisor_hostname'], b.host);
    const migration = await migrationOf(id);
    transferImages.add(migration.UUID);
    assert.equal(migration.Status, 'finished');
    assert.equal(migration['Source Compute'], a.host);
    assert.equal(migration['Dest Compute'], b.host);

    // The copy runs on B with the file; A keeps its container, stopped, for a revert.
    const onB = await b.docker.requireInstanceContainer(id);
    assert.equal(onB.State.Running, running, running ? 'a running container on B' : 'a container on B, not started');
    assert.equal(onB.Config.Labels?.['openstack.compute_host'], b.host);
    const onA = await a.docker.requireInstanceContainer(id);
    assert.equal(onA.State.Running, false, "A's container is stopped");
    // While the move waits for confirm or revert, the migration holds A and the server B.
    assert.deepEqual(await providersOf(migration.UUID), [providerA]);
    assert.deepEqual(await providersOf(id), [providerB]);

    // The transfer image: private, of the service project, named for the migration; not in the user's image list.
    const transfer = await glanceImage(migration.UUID);
    assert.ok(transfer, `the temporary image ${migration.UUID} exists until confirm or revert`);
    assert.equal(transfer.name, `berth-migration-${migration.UUID}`);
    assert.equal(transfer.visibility, 'private');
    assert.equal(transfer.container_format, 'docker');
    assert.equal(transfer.properties['berth_migration'], migration.UUID);
    assert.equal(transfer.properties['instance_uuid'], id);
    const service = await openstackJson<{ id: string }>(['project', 'show', 'service']);
    assert.equal(transfer['owner'], service.id, 'owned by the service project');
    const demoImages = await openstackJson<Array<{ ID: string }>>(['image', 'list'], { openrc: AIO.demoOpenrc });
    assert.ok(!demoImages.some((i) => i.ID === migration.UUID), "not in a user's image list");
    return { migration, transfer };
  }

  it('migrate --host B → VERIFY_RESIZE on B with the file; confirm → ACTIVE, A emptied, the image deleted', async () => {
    const id = await bootWithMarker('carried-over');
    leftOnB.add(id);
    const { migration } = await migrateToB(id);
    assert.equal((await b.docker.execInInstance(id, ['cat', '/migrate-marker'])).trim(), 'carried-over');

    await openstack(['server', 'resize', 'confirm', id]);
    await waitFor(
      `the migration of ${id} confirmed`,
      async () => {
        const m = await migrationOf(id);
        return m.Status === 'confirmed' ? { done: true, value: m } : { done: false, seen: m.Status };
      },
      { intervalMs: 500, timeoutMs: 120_000 },
    );
    const server = await waitForServerStatus(id, 'ACTIVE', { intervalMs: 500, timeoutMs: 60_000 });
    assert.equal(server['OS-EXT-SRV-ATTR:host'], b.host);
    assert.equal((await b.docker.requireInstanceContainer(id)).State.Running, true);
    assert.equal((await b.docker.execInInstance(id, ['cat', '/migrate-marker'])).trim(), 'carried-over');
    assert.equal(await a.docker.instanceContainer(id), null, "A's container is gone");
    assert.deepEqual(await providersOf(migration.UUID), [], "the migration's allocation on A is gone");
    assert.deepEqual(await providersOf(id), [providerB]);
    assert.equal(await glanceImage(migration.UUID), null, 'the temporary image is deleted');

    const actions = await instanceActionsWithEvents(id);
    const migrate = actions.find((x) => x.action === 'migrate');
    assert.ok(migrate, 'a migrate action');
    assert.deepEqual(
      migrate.events.filter((e) => e.event.startsWith('compute_')).map((e) => `${e.event} ${e.result}`).sort(),
      ['compute_finish_resize Success', 'compute_prep_resize Success', 'compute_resize_instance Success'],
    );
    const confirm = actions.find((x) => x.action === 'confirmResize');
    assert.deepEqual(confirm?.events.map((e) => `${e.event} ${e.result}`), ['compute_confirm_resize Success']);
    // The server is B's now: it can be stopped and started there.
    await openstack(['server', 'stop', id]);
    await waitForServerStatus(id, 'SHUTOFF', { intervalMs: 500 });
    await openstack(['server', 'start', id]);
    await waitForServerStatus(id, 'ACTIVE', { intervalMs: 500 });
    assert.equal((await b.docker.execInInstance(id, ['cat', '/migrate-marker'])).trim(), 'carried-over');
  });

  it('a STOPPED server moves without being started; deleted in VERIFY_RESIZE, it is confirmed first: nothing left anywhere', async () => {
    const id = await bootWithMarker('stopped');
    await openstack(['server', 'stop', id]);
    await waitForServerStatus(id, 'SHUTOFF', { intervalMs: 500 });
    const { migration } = await migrateToB(id, false);
    const server = await showServer(id);
    assert.equal(server['OS-EXT-STS:vm_state'], 'resized');

    await a.deleteServer(id);
    assert.equal(await a.docker.instanceContainer(id), null, "A's container is gone");
    assert.equal(await b.docker.instanceContainer(id), null, "B's container is gone");
    assert.deepEqual(await providersOf(id), []);
    assert.deepEqual(await providersOf(migration.UUID), []);
    assert.equal(await glanceImage(migration.UUID), null, 'the temporary image is deleted');
  });

  it('migrate, then revert → ACTIVE on A, running with its file; nothing left on B, the image deleted', async () => {
    const id = await bootWithMarker('stays-home');
    const { migration } = await migrateToB(id);

    await openstack(['server', 'resize', 'revert', id]);
    const server = await waitForServerStatus(id, 'ACTIVE', { host: a.host, intervalMs: 500, timeoutMs: 180_000 });
    assert.equal(server['OS-EXT-SRV-ATTR:hypervisor_hostname'], a.host);
    assert.equal((await migrationOf(id)).Status, 'reverted');
    const onA = await a.docker.requireInstanceContainer(id);
    assert.equal(onA.State.Running, true, "A's container runs again");
    assert.equal((await a.docker.execInInstance(id, ['cat', '/migrate-marker'])).trim(), 'stays-home');
    assert.equal(await b.docker.instanceContainer(id), null, 'no container on B');
    const onB = await b.docker.client.listContainers({ all: true });
    assert.deepEqual(onB.map((c) => c.Names).flat().sort(), [...leftOnB].map((u) => `/nova-${u}`).sort(), 'B holds nothing of this server');
    assert.deepEqual(await providersOf(id), [providerA]);
    assert.deepEqual(await providersOf(migration.UUID), []);
    await waitFor(
      `the temporary image ${migration.UUID} deleted`,
      async () => ((await glanceImage(migration.UUID)) === null ? { done: true, value: null } : { done: false, seen: 'still there' }),
      { intervalMs: 500, timeoutMs: 60_000 },
    );
    const revert = (await instanceActionsWithEvents(id)).find((x) => x.action === 'revertResize');
    assert.deepEqual(
      revert?.events.map((e) => `${e.event} ${e.result}`).sort(),
      ['compute_finish_revert_resize Success', 'compute_revert_resize Success'],
    );
  });
  it('a resize the scheduler places on B (a flavor only B offers): the copy has the new limits, A kept the old ones; confirm', async () => {
    await openstack(['--os-placement-api-version', '1.6', 'trait', 'create', trait]);
    traitCreated = true;
    await openstack(['--os-placement-api-version', '1.6', 'resource', 'provider', 'trait', 'set', ...[...(await providerTraits(providerB)), trait].flatMap((t) => ['--trait', t]), providerB]);
    const bigger = await a.createFlavor({ vcpus: 2, ramMb: 128, diskGb: 1, properties: { [`trait:${trait}`]: 'required' } });
    const id = await bootWithMarker('resized-away');
    leftOnB.add(id);

    await openstack(['server', 'resize', '--flavor', bigger.id, id]);
    const server = await waitForServerStatus(id, 'VERIFY_RESIZE', { intervalMs: 500, timeoutMs: 240_000 });
    assert.equal(server['OS-EXT-SRV-ATTR:host'], b.host);
    const rows = await serverMigrations(id);
    const migration = rows.find((r) => r.Type === 'resize');
    assert.ok(migration, 'a resize migration');
    transferImages.add(migration.UUID);
    assert.deepEqual([migration.Status, migration['Source Compute'], migration['Dest Compute']], ['finished', a.host, b.host]);
    const onB = await b.docker.requireInstanceContainer(id);
    assert.deepEqual([onB.State.Running, Number(onB.HostConfig.Memory), Number(onB.HostConfig.NanoCpus)], [true, 128 * 1024 * 1024, 2e9]);
    const onA = await a.docker.requireInstanceContainer(id);
    assert.deepEqual([onA.State.Running, Number(onA.HostConfig.Memory)], [false, flavor.ram * 1024 * 1024]);
    assert.equal((await b.docker.execInInstance(id, ['cat', '/migrate-marker'])).trim(), 'resized-away');
    const heldByMigration = await consumerAllocations(migration.UUID);
    assert.deepEqual(heldByMigration.map((r) => [r.resource_provider, r.resources['MEMORY_MB']]), [[providerA, flavor.ram]]);
    const heldByServer = await consumerAllocations(id);
    assert.deepEqual(heldByServer.map((r) => [r.resource_provider, r.resources['MEMORY_MB']]), [[providerB, 128]]);

    await openstack(['server', 'resize', 'confirm', id]);
    await waitFor(
      `the resize of ${id} confirmed`,
      async () => {
        const m = (await serverMigrations(id)).find((r) => r.Type === 'resize');
        return m?.Status === 'confirmed' ? { done: true, value: m } : { done: false, seen: m?.Status };
      },
      { intervalMs: 500, timeoutMs: 120_000 },
    );
    await waitForServerStatus(id, 'ACTIVE', { intervalMs: 500, timeoutMs: 60_000 });
    assert.equal(await a.docker.instanceContainer(id), null, "A's container is gone");
    assert.deepEqual(await providersOf(migration.UUID), []);
    assert.equal(await glanceImage(migration.UUID), null, 'the temporary image is deleted');
  });
});
