// Evacuation, both halves (src/compute/evacuate.ts): rebuild_instance(recreate=True) on this host after another host
// died (Nova's _do_rebuild_instance_with_claim / _do_rebuild_instance / finish_evacuation), and init_host's
// _destroy_evacuated_instances when this host is the one that comes back. Fake driver, fake conductor, fake Placement.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DriverError, PowerState } from '../../../driver/driver';
import { RemoteFailure } from '../../../src/messaging/failure';
import type { ConductorRequest } from './fake-conductor';
import { flavorResources, Harness } from './harness';
import { berthSaves, CAPTURE_HOST } from './lifecycle-capture';

const DEAD_HOST = 'dead-host';
const DEAD_PROVIDER = randomUUID();

describe('compute: evacuate (rebuild_instance recreate=True)', () => {
  let h: Harness;
  let uuid: string;
  let provider: string;
  let migrationId: number;

  const ref = (u: string): { uuid: string; name: string } => ({ uuid: u, name: '' });
  /** Migration.save statuses in the order the compute wrote them. */
  const migrationStatuses = (): string[] =>
    h.conductor.requests
      .filter((r) => r.objName === 'Migration' && r.objMethod === 'save')
      .map((r) => String(((r.args['objinst'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>)['status']));

  beforeEach(async () => {
    h = await Harness.create();
    await h.tracker.updateAvailableResource(undefined, true);
    provider = h.tracker.nodeUuid as string;
    // An instance that ran on DEAD_HOST: its row says so, its container is not here, Placement holds it on the dead
    // host's provider and (the scheduler's evacuation claim) on ours.
    uuid = await h.activeInstance();
    await h.driver.destroy(ref(uuid));
    await h.tracker.dropInstance({} as never, uuid);
    const row = h.row(uuid);
    row['host'] = DEAD_HOST;
    row['node'] = DEAD_HOST;
    row['launched_on'] = DEAD_HOST;
    const flavor = (row['flavor'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
    const owner = { project_id: String(row['project_id']), user_id: String(row['user_id']) };
    h.placement.allocate(uuid, DEAD_PROVIDER, flavorResources(flavor), owner);
    const consumer = h.placement.consumers.get(uuid);
    if (consumer) consumer.allocations[provider] = { resources: flavorResources(flavor) };
  });
  afterEach(async () => {
    await h.close();
  });

  /** compute_api.evacuate + the conductor: task_state rebuilding, the `evacuate` action, an 'accepted' migration. */
  function evacuate(overrides: Record<string, unknown> = {}): { requestId: string; done: Promise<unknown> } {
    const { context, instance } = h.api(uuid, { taskState: 'rebuilding', action: 'evacuate' });
    const row = h.row(uuid);
    const migration = h.conductor.addMigration({
      uuid: randomUUID(),
      source_compute: DEAD_HOST,
      source_node: DEAD_HOST,
      dest_compute: CAPTURE_HOST,
      dest_node: null,
      dest_host: null,
      instance_uuid: uuid,
      status: 'accepted',
      migration_type: 'evacuation',
      user_id: row['user_id'],
      project_id: row['project_id'],
    });
    migrationId = Number(migration['id']);
    const args = {
      instance, orig_image_ref: null, image_ref: null, injected_files: [], new_pass: 'secret', orig_sys_metadata: null,
      bdms: null, recreate: true, on_shared_storage: null, preserve_ephemeral: false,
      migration: h.conductor.migrationPrimitive(migrationId), scheduled_node: CAPTURE_HOST, limits: {}, request_spec: null,
      accel_uuids: [], ...overrides,
    };
    return { requestId: context.request_id, done: h.rpc('rebuild_instance', args, context) };
  }

  it('spawns the image here: rebuilding → rebuild_block_device_mapping → rebuild_spawning → ACTIVE, host and node ours, migration pre-migrating → done', async () => {
    const { requestId, done } = evacuate();
    await done;
    const row = h.row(uuid);
    assert.equal(row['vm_state'], 'active');
    assert.equal(row['task_state'], null);
    assert.equal(row['host'], CAPTURE_HOST);
    assert.equal(row['node'], CAPTURE_HOST);
    assert.equal(row['power_state'], PowerState.RUNNING);
    assert.equal(row['migration_context'], null);
    assert.equal((await h.driver.getInfo(ref(uuid))).powerState, PowerState.RUNNING);
    assert.ok(h.images.fetched.includes(String(row['image_ref'])), 'the image came from Glance');
    assert.deepEqual(migrationStatuses(), ['pre-migrating', 'done']);
    const migration = h.conductor.migration(migrationId);
    assert.equal(migration['status'], 'done');
    assert.equal(migration['dest_compute'], CAPTURE_HOST);
    assert.equal(migration['dest_node'], CAPTURE_HOST);
    const saves = berthSaves(h.conductor.requests, requestId);
    // The claim's migration-context save, the rebuild states with Nova's expected states, finish_evacuation's save.
    assert.deepEqual(
      saves.map((s) => [s.task_state, s.expected_task_state]),
      [
        [undefined, '<absent>'],
        ['rebuilding', ['rebuilding']],
        ['rebuild_block_device_mapping', ['rebuilding']],
        ['rebuild_spawning', ['rebuild_block_device_mapping']],
        [null, ['rebuild_spawning']],
        [undefined, '<absent>'],
      ],
    );
    const claimSave = h.conductor.requestsFor('Instance', 'save', requestId)[0];
    assert.ok(((claimSave?.args['objinst'] as Record<string, unknown>)['nova_object.changes'] as string[]).includes('migration_context'), 'the rebuild claim');
    assert.deepEqual(saves.at(-1)?.fields, ['host', 'node']);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.start', 'rebuild.end']);
    assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [['compute_rebuild_instance', 'Success']]);
    // Nova's destination leaves the source's allocation alone: the source removes it when it comes back.
    assert.deepEqual(Object.keys(h.placement.consumers.get(uuid)?.allocations ?? {}).sort(), [DEAD_PROVIDER, provider].sort());
    assert.deepEqual(h.placement.treeRemovals, []);
  });

  it('a STOPPED instance ends STOPPED (stop_instance, forced, with its own event)', async () => {
    h.row(uuid)['vm_state'] = 'stopped';
    h.row(uuid)['power_state'] = PowerState.SHUTDOWN;
    const { requestId, done } = evacuate();
    await done;
    assert.equal(h.row(uuid)['vm_state'], 'stopped');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.equal(h.row(uuid)['host'], CAPTURE_HOST);
    assert.equal((await h.driver.getInfo(ref(uuid))).powerState, PowerState.SHUTDOWN);
    assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [
      ['compute_rebuild_instance', 'Success'],
      ['compute_stop_instance', 'Success'],
    ]);
    assert.deepEqual(migrationStatuses(), ['pre-migrating', 'done']);
  });

  it('a spawn failure: ERROR with a fault, migration failed, our allocation removed, the source host kept', async () => {
    h.driver.failNext('spawn', new DriverError('image would not start'));
    const { requestId, done } = evacuate();
    await assert.rejects(done, (err: unknown) => err instanceof RemoteFailure && err.message === 'image would not start');
    const row = h.row(uuid);
    assert.equal(row['vm_state'], 'error');
    assert.equal(row['task_state'], null);
    assert.equal(row['host'], DEAD_HOST, 'finish_evacuation never ran');
    assert.equal(row['migration_context'], null, 'the claim was aborted');
    assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['image would not start']);
    assert.deepEqual(migrationStatuses(), ['pre-migrating', 'failed']);
    assert.deepEqual(h.placement.treeRemovals, [[uuid, provider]]);
    assert.deepEqual(Object.keys(h.placement.consumers.get(uuid)?.allocations ?? {}), [DEAD_PROVIDER]);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.start', 'rebuild.error']);
    assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Error');
    assert.deepEqual(await h.driver.listInstances(), []);
  });

  it('on_shared_storage=True: InvalidSharedStorage, ERROR with its fault, migration failed, nothing spawned', async () => {
    const { requestId, done } = evacuate({ on_shared_storage: true });
    await assert.rejects(done, (err: unknown) => err instanceof RemoteFailure && err.className === 'InvalidSharedStorage');
    const row = h.row(uuid);
    assert.equal(row['vm_state'], 'error');
    assert.equal(row['task_state'], null);
    assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['Invalid state of instance files on shared storage']);
    assert.deepEqual(migrationStatuses(), ['pre-migrating', 'failed']);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.error'], 'refused before rebuild.start, as Nova');
    assert.deepEqual(await h.driver.listInstances(), []);
    assert.deepEqual(h.placement.treeRemovals, [[uuid, provider]]);
  });

  it('on_shared_storage=False is what a container host has: the evacuation goes ahead', async () => {
    const { done } = evacuate({ on_shared_storage: false });
    await done;
    assert.equal(h.row(uuid)['vm_state'], 'active');
  });

  it('the container already exists here: InstanceExists, ERROR', async () => {
    // Put a container for the instance on this runtime (a second evacuate racing the first, say).
    const { done: first } = evacuate();
    await first;
    h.row(uuid)['host'] = DEAD_HOST;
    const { done } = evacuate();
    await assert.rejects(done, (err: unknown) => err instanceof RemoteFailure && err.className === 'InstanceExists');
    assert.equal(h.row(uuid)['vm_state'], 'error');
    assert.equal(h.conductor.migration(migrationId)['status'], 'failed');
  });

  it('the flavor does not fit this host: BuildAbortException, vm_state kept, migration failed, our allocation removed', async () => {
    const row = h.row(uuid);
    const flavor = (row['flavor'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
    flavor['memory_mb'] = 1024 * 1024 * 1024;
    const { requestId, done } = evacuate();
    await assert.rejects(done, (err: unknown) => err instanceof RemoteFailure && err.className === 'BuildAbortException');
    assert.equal(h.row(uuid)['vm_state'], 'active');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.deepEqual(migrationStatuses(), ['pre-migrating', 'failed']);
    assert.deepEqual(h.placement.treeRemovals, [[uuid, provider]]);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.error']);
    assert.equal(h.faultsOf(uuid)[0]?.message.startsWith(`Build of instance ${uuid} aborted: Insufficient compute resources`), true);
  });

  it('deleted meanwhile: migration failed, rebuild.error, no fault, nothing raised', async () => {
    const { requestId, done } = evacuate();
    h.conductor.beforeAnswer.push((request: ConductorRequest) => {
      const data = (request.args['objinst'] as Record<string, unknown> | undefined)?.['nova_object.data'] as Record<string, unknown> | undefined;
      if (request.objMethod === 'save' && data?.['task_state'] === 'rebuild_block_device_mapping') h.row(uuid)['task_state'] = 'deleting';
    });
    await done;
    assert.equal(h.row(uuid)['task_state'], 'deleting');
    assert.deepEqual(h.faultsOf(uuid), []);
    assert.equal(h.conductor.migration(migrationId)['status'], 'failed');
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.start', 'rebuild.error']);
  });
});

describe('compute: init_host destroys evacuated instances (_destroy_evacuated_instances)', () => {
  let h: Harness;
  let provider: string;

  beforeEach(async () => {
    h = await Harness.create();
    await h.tracker.updateAvailableResource(undefined, true);
    provider = h.tracker.nodeUuid as string;
  });
  afterEach(async () => {
    await h.close();
  });

  const containers = async (): Promise<string[]> => (await h.driver.listInstances()).map((i) => i.uuid).sort();

  /** An instance of ours, evacuated to `other` while we were down: its container still here, an evacuation migration. */
  async function evacuatedAway(status: string, other = 'other-host'): Promise<{ uuid: string; migrationId: number }> {
    const uuid = await h.activeInstance();
    const row = h.row(uuid);
    const flavor = (row['flavor'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
    const consumer = h.placement.consumers.get(uuid) ?? { allocations: {}, project_id: 'p', user_id: 'u', generation: 1 };
    consumer.allocations[provider] = { resources: flavorResources(flavor) };
    consumer.allocations['other-provider'] = { resources: flavorResources(flavor) };
    h.placement.consumers.set(uuid, consumer);
    if (status === 'done') {
      row['host'] = other;
      row['node'] = other;
    }
    const migration = h.conductor.addMigration({
      uuid: randomUUID(), source_compute: CAPTURE_HOST, source_node: CAPTURE_HOST, dest_compute: other, dest_node: other,
      instance_uuid: uuid, status, migration_type: 'evacuation',
    });
    return { uuid, migrationId: Number(migration['id']) };
  }

  for (const status of ['accepted', 'pre-migrating', 'done']) {
    it(`a '${status}' evacuation: the container destroyed, our share of the allocation removed, the migration completed`, async () => {
      const { uuid, migrationId } = await evacuatedAway(status);
      await h.manager.initHost();
      assert.deepEqual(await containers(), []);
      assert.equal(h.conductor.migration(migrationId)['status'], 'completed');
      assert.deepEqual(h.placement.treeRemovals, [[uuid, provider]]);
      assert.deepEqual(Object.keys(h.placement.consumers.get(uuid)?.allocations ?? {}), ['other-provider']);
      // Not reconciled as one of ours afterwards: no state change, no fault.
      assert.equal(h.row(uuid)['vm_state'], 'active');
      assert.deepEqual(h.faultsOf(uuid), []);
    });
  }

  it('the query: source_compute this host, migration_type evacuation, statuses accepted / pre-migrating / done, read_deleted yes', async () => {
    await h.manager.initHost();
    const query = h.conductor.requests.find((r) => r.objName === 'MigrationList' && r.objMethod === 'get_by_filters');
    assert.ok(query);
    assert.deepEqual((query.args['args'] as unknown[])[0], { source_compute: CAPTURE_HOST, status: ['accepted', 'pre-migrating', 'done'], migration_type: 'evacuation' });
    assert.equal(query.context.read_deleted, 'yes');
  });

  it('failed, completed and non-evacuation migrations are left alone; so is a container placed elsewhere without one', async () => {
    const failed = await evacuatedAway('failed');
    const completed = await evacuatedAway('completed');
    const elsewhere = await h.activeInstance();
    h.row(elsewhere)['host'] = 'renamed-host';
    const resize = await h.activeInstance();
    h.conductor.addMigration({ uuid: randomUUID(), source_compute: CAPTURE_HOST, source_node: CAPTURE_HOST, instance_uuid: resize, status: 'done', migration_type: 'resize' });
    await h.manager.initHost();
    assert.deepEqual(await containers(), [failed.uuid, completed.uuid, elsewhere, resize].sort());
    assert.equal(h.conductor.migration(failed.migrationId)['status'], 'failed');
    assert.equal(h.conductor.migration(completed.migrationId)['status'], 'completed');
    assert.deepEqual(h.placement.treeRemovals, []);
  });

  it('an instance deleted meanwhile: its container goes (reaped), nothing is removed from placement, the migration stays', async () => {
    const { uuid, migrationId } = await evacuatedAway('done');
    h.row(uuid)['deleted'] = true;
    await h.manager.initHost();
    assert.deepEqual(await containers(), []);
    assert.deepEqual(h.placement.treeRemovals, []);
    assert.equal(h.conductor.migration(migrationId)['status'], 'done');
  });

  it('evacuated instance whose container is already gone: allocation removed and migration completed all the same', async () => {
    const { uuid, migrationId } = await evacuatedAway('done');
    await h.driver.destroy({ uuid, name: '' });
    await h.manager.initHost();
    assert.equal(h.conductor.migration(migrationId)['status'], 'completed');
    assert.deepEqual(h.placement.treeRemovals, [[uuid, provider]]);
  });

  it('a destroy that fails: logged, the migration kept for the next start-up, the other instances still handled', async () => {
    const stuck = await evacuatedAway('done');
    const fine = await evacuatedAway('done');
    const destroy = h.driver.destroy.bind(h.driver);
    h.driver.destroy = async (r) => {
      if (r.uuid === stuck.uuid) throw new DriverError('runtime said no');
      return destroy(r);
    };
    await h.manager.initHost();
    assert.equal(h.conductor.migration(stuck.migrationId)['status'], 'done');
    assert.equal(h.conductor.migration(fine.migrationId)['status'], 'completed');
    assert.deepEqual(h.placement.treeRemovals, [[fine.uuid, provider]]);
  });

  it('an evacuation still under way (host still ours): not reconciled by _init_instance, even in a rebuild task state', async () => {
    const { uuid } = await evacuatedAway('pre-migrating');
    h.row(uuid)['task_state'] = 'rebuilding';
    await h.manager.initHost();
    assert.equal(h.row(uuid)['vm_state'], 'active', 'not set to ERROR as an interrupted rebuild of ours');
    assert.equal(h.row(uuid)['task_state'], 'rebuilding');
    assert.deepEqual(h.faultsOf(uuid), []);
  });
});
