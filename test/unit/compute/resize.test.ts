// Resize on one host, driven as nova-api and the conductor drive it: prep_resize → resize_instance → finish_resize
// (the casts go through the loopback compute.<host> queue), then confirm_resize, or revert_resize →
// finish_revert_resize. Checked at every step against Nova's manager: task states and expected_task_state, the
// Migration statuses, flavor / old_flavor / new_flavor / migration_context, Placement's allocations, the resource
// tracker's usage, action events, faults and notifications; and the failures: the runtime refusing the new
// flavor, a same-flavor migration to this host, a prep_resize for an instance of another host, a reschedule.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { FlavorNotAllowed, PowerState } from '../../../driver/driver';
import { RemoteFailure } from '../../../src/messaging/failure';
import { flavorResources, Harness, type ScheduledResize } from './harness';
import { CAPTURE_HOST } from './lifecycle-capture';
import { berthSaves } from './lifecycle-capture';

/** The flavor the captured instance was built with (m1.tiny, id 1). */
const F1_ID = 1;
const F2 = {
  id: 2,
  name: 'm1.small',
  memory_mb: 1024,
  vcpus: 2,
  root_gb: 1,
  ephemeral_gb: 0,
  flavorid: 'b0c1f2e3-0000-4000-8000-000000000002',
  swap: 0,
  rxtx_factor: 1,
  vcpu_weight: 0,
  disabled: false,
  is_public: true,
  extra_specs: {},
  description: null,
  created_at: '2026-11-30T01:08:12Z',
  updated_at: null,
  deleted_at: null,
  deleted: false,
};

type Row = Record<string, unknown>;
const data = (o: unknown): Row => ((o as Row | null)?.['nova_object.data'] ?? null) as Row;

describe('compute: resize on this host', () => {
  let h: Harness;
  let provider: string;
  let f1: Row;

  beforeEach(async () => {
    h = await Harness.create();
    await h.tracker.updateAvailableResource(undefined, true);
    provider = h.tracker.nodeUuid as string;
  });
  afterEach(async () => {
    await h.close();
  });

  /** An ACTIVE instance holding its flavor in placement, as the scheduler left it. */
  async function instance(state: 'active' | 'stopped' = 'active'): Promise<string> {
    const uuid = await h.activeInstance();
    f1 = data(h.row(uuid)['flavor']);
    h.placement.allocate(uuid, provider, flavorResources(f1), { project_id: String(h.row(uuid)['project_id']), user_id: String(h.row(uuid)['user_id']) });
    if (state === 'stopped') {
      const { context, instance: primitive } = h.api(uuid, { taskState: 'powering-off', action: 'stop' });
      await h.rpc('stop_instance', { instance: primitive, clean_shutdown: true }, context);
    }
    assert.equal(h.row(uuid)['vm_state'], state);
    return uuid;
  }

  async function prep(uuid: string, flavor: Row = F2, options: { retry?: boolean } = {}): Promise<ScheduledResize & { error: unknown }> {
    const scheduled = h.scheduleResize(uuid, flavor, options);
    let error: unknown = null;
    await h.rpc('prep_resize', scheduled.args, scheduled.context).catch((err: unknown) => {
      error = err;
    });
    await h.computeBus.drain();
    return { ...scheduled, error };
  }

  /** nova-api's confirm_resize: migration confirming, a confirmResize action, the cast to the source. */
  async function confirm(uuid: string, migrationId: number): Promise<string> {
    h.conductor.migration(migrationId)['status'] = 'confirming';
    const { context, instance: primitive } = h.api(uuid, { taskState: null, action: 'confirmResize' });
    await h.rpc('confirm_resize', { instance: primitive, migration: h.conductor.migrationPrimitive(migrationId) }, context);
    await h.computeBus.drain();
    return context.request_id;
  }

  /** nova-api's revert_resize: task resize_reverting, migration reverting, a revertResize action, the cast to the dest. */
  async function revert(uuid: string, scheduled: ScheduledResize): Promise<string> {
    const { context, instance: primitive } = h.api(uuid, { taskState: 'resize_reverting', action: 'revertResize' });
    h.conductor.migration(scheduled.migrationId)['status'] = 'reverting';
    await h.rpc('revert_resize', { instance: primitive, migration: h.conductor.migrationPrimitive(scheduled.migrationId), request_spec: scheduled.args['request_spec'] }, context);
    await h.computeBus.drain();
    return context.request_id;
  }

  async function runtime(uuid: string): Promise<{ power: number; memoryMb: number; vcpus: number }> {
    const ref = { uuid, name: '' };
    const diag = await h.driver.getDiagnostics(ref);
    return { power: (await h.driver.getInfo(ref)).powerState, memoryMb: diag.memoryMaxMb, vcpus: diag.numCpus };
  }

  function allocations(): Record<string, Record<string, number>> {
    return Object.fromEntries([...h.placement.consumers].map(([id, c]) => [id, c.allocations[provider]?.resources ?? {}]));
  }

  /** memory_mb_used of the compute node once the tracker has saved (reserved 512 + the instances' flavors). */
  async function memoryUsed(periodic = false): Promise<number> {
    if (periodic) await h.tracker.updateAvailableResource();
    else await h.tracker.flush();
    return Number(h.conductor.computeNodes[0]?.['memory_mb_used']);
  }

  function events(uuid: string, requestId: string): Array<[string, string | null]> {
    return (h.conductor.actionFor(uuid, requestId)?.events ?? []).map((e) => [e.event, e.result]);
  }

  function migrationStatuses(requestId: string): unknown[] {
    return h.conductor.requestsFor('Migration', 'save', requestId).map((r) => data((r.args['objinst'] as Row))['status']);
  }

  describe('to VERIFY_RESIZE (prep_resize → resize_instance → finish_resize)', () => {
    it('moves through Nova\'s task states, migration statuses and casts; the container carries the new flavor', async () => {
      const uuid = await instance();
      const r = await prep(uuid);
      assert.equal(r.error, null);
      const requestId = r.context.request_id;

      assert.deepEqual(berthSaves(h.conductor.requests, requestId), [
        { fields: [], expected_task_state: '<absent>' }, // new_flavor + system_metadata.old_vm_state
        { fields: [], expected_task_state: '<absent>' }, // the claim's migration_context
        { fields: ['task_state'], task_state: 'resize_migrating', expected_task_state: 'resize_prep' },
        { fields: ['host', 'node', 'task_state'], task_state: 'resize_migrated', expected_task_state: 'resize_migrating' },
        { fields: ['task_state'], task_state: 'resize_finish', expected_task_state: 'resize_migrated' },
        { fields: ['task_state', 'vm_state'], vm_state: 'resized', task_state: null, expected_task_state: 'resize_finish' },
      ]);
      assert.deepEqual(migrationStatuses(requestId), ['pre-migrating', 'migrating', 'post-migrating', 'finished']);
      assert.deepEqual(events(uuid, requestId), [
        ['compute_prep_resize', 'Success'],
        ['compute_resize_instance', 'Success'],
        ['compute_finish_resize', 'Success'],
      ]);
      assert.deepEqual(h.notifier.statesFor(requestId), [
        'resize_prep.start active/resize_prep',
        'resize_prep.end active/resize_prep',
        'resize.start active/resize_migrating',
        'resize.end active/resize_migrated',
        'resize_finish.start active/resize_finish',
        'resize_finish.end resized/',
      ]);
      assert.equal(h.notifier.notifications.find((n) => n.event === 'resize_prep.end')?.extras.newFlavor?.get('id'), 2);

      // The casts: to compute.<this host>, version 6.0, with the arguments of Nova's rpcapi.
      assert.deepEqual(
        h.computeBus.casts.map((c) => [c.method, c.target.topic, c.target.server, c.target.version, Object.keys(c.args).sort()]),
        [
          ['resize_instance', 'compute', CAPTURE_HOST, '6.0', ['clean_shutdown', 'flavor', 'image', 'instance', 'migration', 'request_spec']],
          ['finish_resize', 'compute', CAPTURE_HOST, '6.0', ['disk_info', 'image', 'instance', 'migration', 'request_spec']],
        ],
      );
      assert.ok(h.computeBus.casts.every((c) => c.context.request_id === requestId), 'the casts carry the request context');
      assert.equal(h.computeBus.casts[1]?.args['disk_info'], '[]');
      // What each cast carries is the state its sender saved: the migration's status, the instance's flavors.
      const [toResize, toFinish] = h.computeBus.casts.map((c) => ({ instance: data(c.args['instance']), migration: data(c.args['migration']) }));
      assert.deepEqual([toResize?.migration['status'], toResize?.instance['task_state'], data(toResize?.instance['new_flavor'])['id']], ['pre-migrating', 'resize_prep', 2]);
      assert.deepEqual([toFinish?.migration['status'], toFinish?.instance['task_state'], data(toFinish?.instance['old_flavor'])['id']], ['post-migrating', 'resize_migrated', F1_ID]);
      assert.equal(data(h.computeBus.casts[0]?.args['flavor'])['id'], 2);
      assert.deepEqual(h.computeBus.failures, []);

      const row = h.row(uuid);
      assert.equal(row['vm_state'], 'resized');
      assert.equal(row['task_state'], null);
      assert.equal(row['host'], CAPTURE_HOST);
      assert.equal(row['instance_type_id'], 2);
      assert.equal(row['memory_mb'], 1024);
      assert.equal(row['vcpus'], 2);
      assert.equal(data(row['flavor'])['id'], 2);
      assert.equal(data(row['old_flavor'])['id'], F1_ID);
      assert.equal(data(row['new_flavor'])['id'], 2);
      assert.equal(data(row['migration_context'])['migration_id'], r.migrationId);
      assert.equal((row['system_metadata'] as Row)['old_vm_state'], 'active');
      const migration = h.conductor.migration(r.migrationId);
      assert.deepEqual([migration['status'], migration['dest_compute'], migration['dest_node'], migration['dest_host']], ['finished', CAPTURE_HOST, CAPTURE_HOST, '127.0.0.1']);

      assert.deepEqual(await runtime(uuid), { power: PowerState.RUNNING, memoryMb: 1024, vcpus: 2 });
      // The migration holds the old flavor on this provider, the instance the new one (the conductor's swap).
      assert.deepEqual(allocations(), { [r.migrationUuid]: flavorResources(f1), [uuid]: flavorResources(F2) });
      assert.deepEqual(h.placement.moves, []);
      // Both flavors are held here until the resize is confirmed or reverted, also across a periodic audit.
      assert.equal(await memoryUsed(), 512 + 512 + 1024);
      assert.equal(await memoryUsed(true), 512 + 512 + 1024);
      assert.deepEqual(h.faultsOf(uuid), []);
    });

    it('powers the container off for the change (graceful, shutdown_timeout) and on again', async () => {
      const uuid = await instance();
      const calls: string[] = [];
      const driver = h.driver;
      for (const op of ['powerOff', 'changeFlavor', 'powerOn'] as const) {
        const original = driver[op].bind(driver) as (...a: unknown[]) => Promise<void>;
        (driver as unknown as Record<string, unknown>)[op] = (...a: unknown[]) => {
          calls.push(op === 'powerOff' ? `powerOff(${String(a[1])})` : op);
          return original(...a);
        };
      }
      await prep(uuid);
      assert.deepEqual(calls, ['powerOff(60)', 'changeFlavor', 'powerOn']);
    });
  });

  describe('confirm_resize', () => {
    it('drops the old flavor: migration confirmed, its allocation deleted, flavors and context cleared, ACTIVE', async () => {
      const uuid = await instance();
      const r = await prep(uuid);
      const requestId = await confirm(uuid, r.migrationId);

      assert.deepEqual(events(uuid, requestId), [['compute_confirm_resize', 'Success']]);
      assert.deepEqual(h.notifier.eventsFor(requestId), ['resize_confirm.start', 'resize_confirm.end']);
      assert.deepEqual(berthSaves(h.conductor.requests, requestId), [
        { fields: ['task_state', 'vm_state'], vm_state: 'active', task_state: null, expected_task_state: [null, 'deleting', 'soft-deleting'] },
        { fields: [], expected_task_state: '<absent>' }, // old_flavor / new_flavor / old_vm_state gone
      ]);
      assert.deepEqual(migrationStatuses(requestId), ['confirmed']);
      assert.equal(h.conductor.requestsFor('Instance', 'drop_migration_context', requestId).length, 1);

      const row = h.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['old_flavor'], row['new_flavor'], row['migration_context']], ['active', null, null, null, null]);
      assert.equal(data(row['flavor'])['id'], 2);
      assert.equal('old_vm_state' in (row['system_metadata'] as Row), false);
      assert.deepEqual(allocations(), { [uuid]: flavorResources(F2) });
      assert.ok(h.placement.deletedAllocations.includes(r.migrationUuid));
      assert.deepEqual(h.scheduler.deleted, [{ requestId, uuid }]);
      assert.deepEqual(await runtime(uuid), { power: PowerState.RUNNING, memoryMb: 1024, vcpus: 2 });
      assert.equal(await memoryUsed(), 512 + 1024);
      assert.equal(await memoryUsed(true), 512 + 1024);
    });

    it('a migration already confirmed, or not finished, is left alone (no state change)', async () => {
      const uuid = await instance();
      const r = await prep(uuid);
      h.conductor.migration(r.migrationId)['status'] = 'confirmed';
      const { context, instance: primitive } = h.api(uuid, { taskState: null, action: 'confirmResize' });
      await h.rpc('confirm_resize', { instance: primitive, migration: h.conductor.migrationPrimitive(r.migrationId) }, context);
      assert.deepEqual(berthSaves(h.conductor.requests, context.request_id), []);
      assert.deepEqual(events(uuid, context.request_id), [['compute_confirm_resize', 'Success']]);
      assert.equal(h.row(uuid)['vm_state'], 'resized');
    });
  });

  describe('revert_resize → finish_revert_resize', () => {
    it('puts the old flavor back: limits, allocations swapped back (POST /allocations), migration reverted, ACTIVE', async () => {
      const uuid = await instance();
      const r = await prep(uuid);
      const requestId = await revert(uuid, r);

      assert.deepEqual(events(uuid, requestId), [
        ['compute_revert_resize', 'Success'],
        ['compute_finish_revert_resize', 'Success'],
      ]);
      assert.deepEqual(h.notifier.statesFor(requestId), ['resize_revert.start resized/resize_reverting', 'resize_revert.end active/']);
      assert.deepEqual(berthSaves(h.conductor.requests, requestId), [
        { fields: [], expected_task_state: ['resize_reverting'] }, // revert_migration_context (drop_move_claim_at_dest)
        { fields: ['host', 'node'], expected_task_state: ['resize_reverting'] }, // old flavor, host, node
        { fields: [], expected_task_state: 'resize_reverting' }, // launched_at
        { fields: ['task_state', 'vm_state'], vm_state: 'active', task_state: null, expected_task_state: '<absent>' },
        { fields: [], expected_task_state: '<absent>' }, // stashed flavors gone
      ]);
      assert.deepEqual(migrationStatuses(requestId), ['reverted']);
      assert.deepEqual(h.computeBus.casts.at(-1)?.method, 'finish_revert_resize');
      assert.deepEqual(Object.keys(h.computeBus.casts.at(-1)?.args ?? {}).sort(), ['instance', 'migration', 'request_spec']);

      const row = h.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['instance_type_id'], row['memory_mb']], ['active', null, F1_ID, 512]);
      assert.equal(data(row['flavor'])['id'], F1_ID);
      assert.deepEqual([row['old_flavor'], row['new_flavor'], row['migration_context']], [null, null, null]);
      assert.deepEqual(h.placement.moves, [[r.migrationUuid, uuid]]);
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.deepEqual(await runtime(uuid), { power: PowerState.RUNNING, memoryMb: 512, vcpus: 1 });
      assert.equal(await memoryUsed(), 512 + 512);
      assert.equal(await memoryUsed(true), 512 + 512);
      assert.deepEqual(h.faultsOf(uuid), []);
    });
  });

  describe('a STOPPED instance', () => {
    it('stays off through the resize (VERIFY_RESIZE with the container stopped) and a confirm leaves it STOPPED', async () => {
      const uuid = await instance('stopped');
      const r = await prep(uuid);
      assert.equal(h.row(uuid)['vm_state'], 'resized');
      assert.equal((h.row(uuid)['system_metadata'] as Row)['old_vm_state'], 'stopped');
      assert.deepEqual(await runtime(uuid), { power: PowerState.SHUTDOWN, memoryMb: 1024, vcpus: 2 });
      await confirm(uuid, r.migrationId);
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state'], h.row(uuid)['power_state']], ['stopped', null, PowerState.SHUTDOWN]);
      assert.deepEqual(await runtime(uuid), { power: PowerState.SHUTDOWN, memoryMb: 1024, vcpus: 2 });
    });

    it('a revert brings it back STOPPED through stop_instance (its own event), with the old limits', async () => {
      const uuid = await instance('stopped');
      const r = await prep(uuid);
      const requestId = await revert(uuid, r);
      assert.deepEqual(events(uuid, requestId), [
        ['compute_revert_resize', 'Success'],
        ['compute_finish_revert_resize', 'Success'],
        ['compute_stop_instance', 'Success'],
      ]);
      const saves = berthSaves(h.conductor.requests, requestId);
      assert.deepEqual(saves.slice(3, 5), [
        { fields: ['task_state'], task_state: 'powering-off', expected_task_state: '<absent>' },
        { fields: ['power_state', 'task_state', 'vm_state'], vm_state: 'stopped', task_state: null, expected_task_state: ['powering-off', null] },
      ]);
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['stopped', null]);
      assert.deepEqual(await runtime(uuid), { power: PowerState.SHUTDOWN, memoryMb: 512, vcpus: 1 });
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
    });
  });

  describe('failures', () => {
    it('the runtime refuses the new flavor: rolled back as it was (running, old limits, old allocation), migration error, a fault', async () => {
      const uuid = await instance();
      h.driver.failNext('changeFlavor', new FlavorNotAllowed('Flavor m1.small: extra spec fake:x is not allowed on this host'));
      const r = await prep(uuid);
      const requestId = r.context.request_id;
      assert.equal(h.computeBus.failures.length, 1, 'the resize_instance cast failed');
      const failure = h.computeBus.failures[0]?.error;
      assert.ok(failure instanceof RemoteFailure);
      assert.equal(failure.className, 'InvalidInput');

      const row = h.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['instance_type_id']], ['active', null, F1_ID]);
      assert.equal(data(row['flavor'])['id'], F1_ID);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(migrationStatuses(requestId), ['pre-migrating', 'migrating', 'error']);
      assert.deepEqual(await runtime(uuid), { power: PowerState.RUNNING, memoryMb: 512, vcpus: 1 });
      assert.deepEqual(h.placement.moves, [[r.migrationUuid, uuid]]);
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.deepEqual(h.faultsOf(uuid).map((f) => [f.code, f.message]), [[400, 'Invalid input received: Flavor m1.small: extra spec fake:x is not allowed on this host']]);
      assert.deepEqual(events(uuid, requestId), [['compute_prep_resize', 'Success'], ['compute_resize_instance', 'Error']]);
      assert.deepEqual(h.notifier.exceptions.map((e) => e.method), ['resize_instance']);
      assert.equal(h.computeBus.casts.filter((c) => c.method === 'finish_resize').length, 0);
      // The saves of the rollback: vm_state back to what it was, no task.
      assert.deepEqual(berthSaves(h.conductor.requests, requestId).slice(2), [
        { fields: ['task_state'], task_state: 'resize_migrating', expected_task_state: 'resize_prep' },
        { fields: ['task_state', 'vm_state'], vm_state: 'active', task_state: null, expected_task_state: '<absent>' },
        { fields: ['task_state'], task_state: null, expected_task_state: '<absent>' }, // reverts_task_state
      ]);
      // The claim of the new flavor goes with the next audit (the instance is no longer resizing).
      assert.equal(await memoryUsed(true), 512 + 512);
    });

    it('a same-flavor migration to this host: InstanceFaultRollback(UnableToMigrateToSelf), nothing changed', async () => {
      const uuid = await instance();
      const r = await prep(uuid, f1);
      const requestId = r.context.request_id;
      assert.ok(r.error instanceof RemoteFailure);
      assert.equal(r.error.className, 'UnableToMigrateToSelf');
      assert.equal(r.error.message, `Unable to migrate instance (${uuid}) to current host (${CAPTURE_HOST}).`);
      assert.deepEqual(h.computeBus.casts, []);
      const row = h.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['new_flavor']], ['active', null, null]);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.deepEqual(h.faultsOf(uuid).map((f) => [f.code, f.message]), [[400, r.error.message]]);
      assert.deepEqual(events(uuid, requestId), [['compute_prep_resize', 'Error']]);
      assert.deepEqual(h.notifier.eventsFor(requestId), ['resize_prep.start', 'resize_prep.end']);
      assert.deepEqual(berthSaves(h.conductor.requests, requestId), [
        { fields: ['task_state', 'vm_state'], vm_state: 'active', task_state: null, expected_task_state: '<absent>' },
        { fields: ['task_state'], task_state: null, expected_task_state: '<absent>' }, // reverts_task_state
      ]);
    });

    it('without a Glance service credential, a prep_resize for an instance of another host fails early: allocation back, migration error, vm_state back, a fault', async () => {
      const uuid = await instance('stopped');
      h.row(uuid)['host'] = 'other-host';
      h.row(uuid)['node'] = 'other-host';
      const r = await prep(uuid);
      assert.ok(r.error instanceof RemoteFailure);
      assert.equal(r.error.className, 'MigrationPreCheckError');
      assert.match(r.error.message, /^Migration pre-check error: instance .* runs on host other-host; host fake-1 has no Glance service credential/);
      const row = h.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['host']], ['stopped', null, 'other-host']);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(h.placement.moves, [[r.migrationUuid, uuid]]);
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), [r.error.message]);
      assert.deepEqual(h.computeBus.casts, []);
    });

    it('with retry info, a refused prep_resize reschedules through the conductor (migrate_server) and records why', async () => {
      const uuid = await instance();
      const r = await prep(uuid, f1, { retry: true });
      assert.equal(r.error, null, 'a rescheduled prep_resize ends without an error');
      const [call] = h.conductor.requests.filter((q) => q.method === 'migrate_server');
      assert.ok(call);
      assert.deepEqual([call.kind, call.namespace], ['call', 'compute_task']);
      const hint = call.args['scheduler_hint'] as { filter_properties: { retry: { exc: string[] } } };
      assert.deepEqual(hint.filter_properties.retry.exc, [
        `nova.exception.InstanceFaultRollback: Instance rollback performed due to: Unable to migrate instance (${uuid}) to current host (${CAPTURE_HOST}).\n`,
      ]);
      assert.deepEqual([call.args['live'], call.args['rebuild'], call.args['clean_shutdown']], [false, false, true]);
      assert.equal(h.row(uuid)['task_state'], 'resize_prep', 'the conductor goes on from resize_prep');
      assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), [`Instance rollback performed due to: Unable to migrate instance (${uuid}) to current host (${CAPTURE_HOST}).`]);
      assert.deepEqual(h.notifier.eventsFor(r.context.request_id), ['resize_prep.start', 'resize.error', 'resize_prep.end']);
      assert.deepEqual(events(uuid, r.context.request_id), [['compute_prep_resize', 'Success']]);
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
    });

    it('a reschedule the conductor refuses (MaxRetriesExceeded): both faults, then the refusal as without retry', async () => {
      const uuid = await instance();
      h.conductor.migrateServerFailure = new RemoteFailure('MaxRetriesExceeded', 'nova.exception', 'Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance x.', { kwargs: { code: 500 } });
      const r = await prep(uuid, f1, { retry: true });
      assert.ok(r.error instanceof RemoteFailure && r.error.className === 'UnableToMigrateToSelf');
      assert.deepEqual(h.faultsOf(uuid).map((f) => f.message.split(':')[0]), ['Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance x.'.split(':')[0], r.error.message.split(':')[0]]);
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['active', null]);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
    });

    it('a changeFlavor failure while reverting: ERROR with a fault, the old allocation already back', async () => {
      const uuid = await instance();
      const r = await prep(uuid);
      h.driver.failNext('changeFlavor', new Error('docker update failed'));
      const requestId = await revert(uuid, r);
      assert.deepEqual(events(uuid, requestId), [['compute_revert_resize', 'Success'], ['compute_finish_revert_resize', 'Error']]);
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['error', null]);
      assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['docker update failed']);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.deepEqual([h.row(uuid)['old_flavor'], h.row(uuid)['new_flavor']], [null, null]);
    });

    it('a new flavor bigger than the host: the claim fails (ComputeResourcesUnavailable), ERROR as in Nova, allocation back', async () => {
      await h.close();
      h = await Harness.create({ driver: { resources: { memoryMb: 1000 } } });
      await h.tracker.updateAvailableResource(undefined, true);
      provider = h.tracker.nodeUuid as string;
      const uuid = await instance();
      const r = await prep(uuid);
      assert.ok(r.error instanceof RemoteFailure && r.error.className === 'ComputeResourcesUnavailable');
      assert.equal(r.error.message, 'Insufficient compute resources: Memory 1000 MB of this host < requested 1024 MB.');
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['error', null]);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.deepEqual(h.computeBus.casts, []);
      assert.equal(await memoryUsed(), 512 + 512, 'the failed claim holds nothing');
    });

    it('the resize_instance cast cannot be sent: the claim is given back (MoveClaim.abort), migration context dropped', async () => {
      const uuid = await instance();
      h.computeBus.cast = async () => {
        throw new Error('Connection closed');
      };
      const r = await prep(uuid);
      assert.ok(r.error instanceof RemoteFailure);
      assert.equal(h.row(uuid)['migration_context'], null);
      assert.equal(h.conductor.requestsFor('Instance', 'drop_migration_context', r.context.request_id).length, 1);
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['error', null]);
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.equal(await memoryUsed(), 512 + 512);
    });

    it('bad arguments: a migration that is no Migration is an AttributeError, as Python\'s first use of it', async () => {
      const uuid = await instance();
      const r = h.scheduleResize(uuid, F2);
      await assert.rejects(h.rpc('prep_resize', { ...r.args, migration: { id: 1 } }, r.context), (err: unknown) => err instanceof RemoteFailure && err.className === 'AttributeError' && err.message === "'dict' object has no attribute 'status'");
    });
  });

  describe('init_host in the middle of a resize', () => {
    /** prep_resize done, the resize_instance cast held back (as if Berth stopped with it in flight). */
    async function prepared(): Promise<ScheduledResize> {
      const uuid = await instance();
      h.computeBus.deliver = false;
      const r = await prep(uuid);
      assert.equal(h.row(uuid)['task_state'], 'resize_prep');
      return r;
    }

    it('resize_prep: the task state is cleared (Nova)', async () => {
      const r = await prepared();
      const uuid = String(data(r.args['instance'])['uuid']);
      await h.manager.initHost();
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['active', null]);
    });

    it('resize_prep with resize_instance still queued: cleared, then the late cast rolls back (no ERROR, allocation back)', async () => {
      const r = await prepared();
      const uuid = String(data(r.args['instance'])['uuid']);
      await h.manager.initHost();
      const [late] = h.computeBus.casts;
      assert.ok(late);
      await assert.rejects(h.rpc(late.method, late.args, late.context), (err: unknown) => err instanceof RemoteFailure && err.className === 'UnexpectedTaskStateError');
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['active', null]);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.deepEqual(await runtime(uuid), { power: PowerState.RUNNING, memoryMb: 512, vcpus: 1 });
      assert.deepEqual(events(uuid, r.context.request_id), [['compute_prep_resize', 'Success'], ['compute_resize_instance', 'Error']]);
      assert.equal(h.computeBus.casts.length, 1, 'no finish_resize');
    });

    it('resize_migrating: Nova\'s rollback (old limits, powered on, task cleared); Berth also ends the migration and its allocation', async () => {
      const r = await prepared();
      const uuid = String(data(r.args['instance'])['uuid']);
      // The crash: migrating, container stopped with the new limits, no finish_resize sent.
      h.row(uuid)['task_state'] = 'resize_migrating';
      h.conductor.migration(r.migrationId)['status'] = 'migrating';
      const ref = { uuid, name: '' };
      await h.driver.powerOff(ref, 0);
      await h.driver.changeFlavor(ref, { name: 'm1.small', flavorId: 'x', vcpus: 2, memoryMb: 1024, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} });

      await h.manager.initHost();
      const row = h.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['migration_context'], row['new_flavor']], ['active', null, null, null]);
      assert.equal('old_vm_state' in (row['system_metadata'] as Row), false);
      assert.deepEqual(await runtime(uuid), { power: PowerState.RUNNING, memoryMb: 512, vcpus: 1 });
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(allocations(), { [uuid]: flavorResources(f1) });
      assert.equal(await memoryUsed(true), 512 + 512);
    });

    it('resize_finish: the interrupted finish is completed (VERIFY_RESIZE), never left in a task state', async () => {
      const r = await prepared();
      const uuid = String(data(r.args['instance'])['uuid']);
      const [resizeCast] = h.computeBus.casts;
      assert.ok(resizeCast);
      await h.rpc(resizeCast.method, resizeCast.args, resizeCast.context);
      // finish_resize saved resize_finish with the new flavor, then Berth stopped.
      const finishCast = h.computeBus.casts.find((c) => c.method === 'finish_resize');
      assert.ok(finishCast);
      const row = h.row(uuid);
      row['task_state'] = 'resize_finish';
      row['flavor'] = structuredClone(row['new_flavor']);
      row['instance_type_id'] = 2;

      await h.manager.initHost();
      assert.deepEqual([h.row(uuid)['vm_state'], h.row(uuid)['task_state']], ['resized', null]);
      assert.equal(h.conductor.migration(r.migrationId)['status'], 'finished');
      assert.deepEqual(await runtime(uuid), { power: PowerState.RUNNING, memoryMb: 1024, vcpus: 2 });
      assert.equal(await memoryUsed(true), 512 + 512 + 1024);
    });
  });

  it('a prep_resize whose action nova-api never recorded fails before anything changes (InstanceActionNotFound)', async () => {
    const uuid = await instance();
    const r = h.scheduleResize(uuid, F2);
    const context = { ...r.context, request_id: `req-${randomUUID()}` };
    await assert.rejects(h.rpc('prep_resize', r.args, context), (err: unknown) => err instanceof RemoteFailure && err.className === 'InstanceActionNotFound');
    await h.computeBus.drain();
    assert.deepEqual(h.computeBus.casts, []);
  });
});
