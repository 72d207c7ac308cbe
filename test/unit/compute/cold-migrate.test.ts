// Cold migration and resize between two Berth hosts (src/compute/resize.ts, non-shared storage through Glance), driven
// as nova-api and the conductor drive it: prep_resize on the destination → resize_instance on the source (stop,
// commit, temporary service-project image) → finish_resize on the destination (the container created from it), then
// confirm_resize on the source or revert_resize → finish_revert_resize. Checked: task states, migration statuses,
// casts and their hosts, disk_info, both runtimes, Placement, the temporary image's life, faults; and the failures:
// mid-transfer (rolled back, the source running again), at the destination (ERROR), a missing credential.
import assert from 'node:assert/strict';
import { DriverError, PowerState } from '../../../driver/driver';
import { RemoteFailure } from '../../../src/messaging/failure';
import { berthSaves } from './lifecycle-capture';
import { HOST_A, HOST_B, TwoHosts } from './two-hosts';

type Row = Record<string, unknown>;
const data = (o: unknown): Row => ((o as Row | null)?.['nova_object.data'] ?? null) as Row;

const F2 = {
  id: 2, name: 'm1.small', memory_mb: 1024, vcpus: 2, root_gb: 1, ephemeral_gb: 0, flavorid: 'b0c1f2e3-0000-4000-8000-000000000002',
  swap: 0, rxtx_factor: 1, vcpu_weight: 0, disabled: false, is_public: true, extra_specs: {}, description: null,
  created_at: '2026-11-30T01:08:12Z', updated_at: null, deleted_at: null, deleted: false,
};

/** Lets the managers' promise chains run until `done` holds (no timers, a bounded number of turns). */
async function waitUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise<void>((resolve) => setImmediate(resolve));
  if (!done()) throw new Error('the condition never held');
}

describe('compute: cold migration and resize to another host (through a temporary Glance image)', () => {
  let cloud: TwoHosts;

  afterEach(async () => {
    await cloud?.close();
  });

  const ref = (uuid: string) => ({ uuid, name: '' });
  const power = async (host: string, uuid: string): Promise<number | 'none'> =>
    cloud.node(host).driver.getInfo(ref(uuid)).then((i) => i.powerState, () => 'none' as const);

  async function move(uuid: string, flavor: Row | null = null) {
    const scheduled = cloud.scheduleMove(uuid, HOST_B, flavor);
    let error: unknown = null;
    await cloud.rpc(HOST_B, 'prep_resize', scheduled.args, scheduled.context).catch((err: unknown) => {
      error = err;
    });
    await cloud.bus.drain();
    return { ...scheduled, error };
  }

  async function confirm(uuid: string, migrationId: number): Promise<string> {
    cloud.conductor.migration(migrationId)['status'] = 'confirming';
    const { context, instance } = cloud.api(uuid, null, 'confirmResize');
    // nova-api casts confirm_resize to migration.source_compute.
    await cloud.rpc(HOST_A, 'confirm_resize', { instance, migration: cloud.conductor.migrationPrimitive(migrationId) }, context).catch(() => undefined);
    await cloud.bus.drain();
    return context.request_id;
  }

  async function revert(uuid: string, migrationId: number): Promise<string> {
    const { context, instance } = cloud.api(uuid, 'resize_reverting', 'revertResize');
    cloud.conductor.migration(migrationId)['status'] = 'reverting';
    // ... and revert_resize to the destination, where the instance is.
    await cloud.rpc(HOST_B, 'revert_resize', { instance, migration: cloud.conductor.migrationPrimitive(migrationId), request_spec: null }, context).catch(() => undefined);
    await cloud.bus.drain();
    return context.request_id;
  }

  function held(consumer: string): Record<string, Record<string, number>> {
    const c = cloud.placement.consumers.get(consumer);
    return Object.fromEntries(Object.entries(c?.allocations ?? {}).map(([rp, a]) => [rp, a.resources]));
  }

  function migrationStatuses(requestId: string): unknown[] {
    return cloud.conductor.requestsFor('Migration', 'save', requestId).map((r) => data(r.args['objinst'])['status']);
  }

  describe('to VERIFY_RESIZE', () => {
    it('stops and commits the source, uploads it as berth-migration-<uuid>, and the destination runs the copy', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      const oldFlavor = data(cloud.row(uuid)['flavor']);
      const r = await move(uuid);
      assert.equal(r.error, null);
      assert.deepEqual(cloud.bus.failures, []);

      // The casts: resize_instance to the source, finish_resize to the destination, disk_info naming the image.
      assert.deepEqual(cloud.bus.casts.map((c) => [c.method, c.target.server]), [['resize_instance', HOST_A], ['finish_resize', HOST_B]]);
      const diskInfo = JSON.parse(String(cloud.bus.casts[1]?.args['disk_info'])) as Row[];
      assert.deepEqual(diskInfo, [{ type: 'berth-glance-image', image_id: r.migrationUuid, name: `berth-migration-${r.migrationUuid}` }]);
      assert.deepEqual(cloud.migrationImages.created, [{ id: r.migrationUuid, name: `berth-migration-${r.migrationUuid}`, migrationUuid: r.migrationUuid, instanceUuid: uuid }]);
      assert.deepEqual(cloud.migrationImages.fetched, [r.migrationUuid]);
      assert.deepEqual(cloud.migrationImages.deleted, [], 'the image stays until confirm or revert');

      assert.deepEqual(berthSaves(cloud.conductor.requests, r.context.request_id), [
        { fields: [], expected_task_state: '<absent>' },
        { fields: [], expected_task_state: '<absent>' },
        { fields: ['task_state'], task_state: 'resize_migrating', expected_task_state: 'resize_prep' },
        { fields: ['host', 'node', 'task_state'], task_state: 'resize_migrated', expected_task_state: 'resize_migrating' },
        { fields: ['task_state'], task_state: 'resize_finish', expected_task_state: 'resize_migrated' },
        { fields: ['task_state', 'vm_state'], vm_state: 'resized', task_state: null, expected_task_state: 'resize_finish' },
      ]);
      assert.deepEqual(migrationStatuses(r.context.request_id), ['pre-migrating', 'migrating', 'post-migrating', 'finished']);
      const row = cloud.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['host'], row['node']], ['resized', null, HOST_B, HOST_B]);
      const migration = cloud.conductor.migration(r.migrationId);
      assert.deepEqual([migration['source_compute'], migration['dest_compute'], migration['status']], [HOST_A, HOST_B, 'finished']);

      // The source container stays, stopped, for a revert; the copy runs on B with B's own container.
      assert.equal(await power(HOST_A, uuid), PowerState.SHUTDOWN);
      assert.equal(await power(HOST_B, uuid), PowerState.RUNNING);
      // Placement: the migration holds the source, the instance the destination.
      assert.deepEqual(Object.keys(held(r.migrationUuid)), [cloud.provider(HOST_A)]);
      assert.deepEqual(Object.keys(held(uuid)), [cloud.provider(HOST_B)]);
      assert.equal(data(row['old_flavor'])['id'], oldFlavor['id']);
      const events = cloud.conductor.actionFor(uuid, r.context.request_id)?.events.map((e) => [e.event, e.host, e.result]);
      assert.deepEqual(events, [
        ['compute_prep_resize', HOST_B, 'Success'],
        ['compute_resize_instance', HOST_A, 'Success'],
        ['compute_finish_resize', HOST_B, 'Success'],
      ]);
      assert.deepEqual(cloud.conductor.faults, []);
      // Nova's notifications, each from the host that runs the step.
      assert.deepEqual(cloud.notifier.statesFor(r.context.request_id), [
        'resize_prep.start active/resize_prep',
        'resize_prep.end active/resize_prep',
        'resize.start active/resize_migrating',
        'resize.end active/resize_migrated',
        'resize_finish.start active/resize_finish',
        'resize_finish.end resized/',
      ]);
    });

    it('a resize to another host gives the copy the new flavor\'s limits; the source keeps its old ones', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      const before = (await cloud.node(HOST_A).driver.getDiagnostics(ref(uuid))).memoryMaxMb;
      const r = await move(uuid, F2);
      assert.equal(r.error, null);
      assert.equal((await cloud.node(HOST_B).driver.getDiagnostics(ref(uuid))).memoryMaxMb, 1024);
      assert.equal((await cloud.node(HOST_A).driver.getDiagnostics(ref(uuid))).memoryMaxMb, before);
      assert.equal(data(cloud.row(uuid)['flavor'])['id'], 2);
    });

    it('a STOPPED instance is created on the destination and not started (power_on false)', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      const { context, instance } = cloud.api(uuid, 'powering-off', 'stop');
      await cloud.rpc(HOST_A, 'stop_instance', { instance, clean_shutdown: true }, context);
      const r = await move(uuid);
      assert.equal(r.error, null);
      assert.equal(await power(HOST_B, uuid), PowerState.SHUTDOWN);
      assert.equal(cloud.row(uuid)['vm_state'], 'resized');
      await confirm(uuid, r.migrationId);
      assert.equal(cloud.row(uuid)['vm_state'], 'stopped');
      assert.equal(await power(HOST_A, uuid), 'none');
    });
  });

  describe('confirm and revert', () => {
    it('confirm_resize on the source destroys its container, drops the migration\'s allocation, deletes the image', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      const r = await move(uuid);
      const requestId = await confirm(uuid, r.migrationId);
      assert.deepEqual(cloud.bus.failures, []);
      assert.equal(await power(HOST_A, uuid), 'none');
      assert.equal(await power(HOST_B, uuid), PowerState.RUNNING);
      assert.equal(cloud.placement.consumers.has(r.migrationUuid), false);
      assert.deepEqual(Object.keys(held(uuid)), [cloud.provider(HOST_B)]);
      assert.deepEqual(cloud.migrationImages.deleted, [r.migrationUuid]);
      assert.equal(cloud.migrationImages.data.size, 0);
      const row = cloud.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['host']], ['active', null, HOST_B]);
      assert.equal(cloud.conductor.migration(r.migrationId)['status'], 'confirmed');
      assert.deepEqual(cloud.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.host, e.result]), [['compute_confirm_resize', HOST_A, 'Success']]);
    });

    it('a confirm whose image deletion fails is still a confirm (the failure is only logged)', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      const r = await move(uuid);
      cloud.migrationImages.failDelete = new Error('glance is down');
      await confirm(uuid, r.migrationId);
      assert.equal(cloud.row(uuid)['vm_state'], 'active');
      assert.equal(cloud.conductor.migration(r.migrationId)['status'], 'confirmed');
      assert.deepEqual(cloud.conductor.faults, []);
    });

    it('revert_resize destroys the copy on B; finish_revert_resize starts the source again on A with its allocation back; the image goes', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      const oldFlavor = data(cloud.row(uuid)['flavor']);
      const r = await move(uuid, F2);
      const requestId = await revert(uuid, r.migrationId);
      assert.deepEqual(cloud.bus.failures, []);
      assert.deepEqual(cloud.bus.casts.slice(2).map((c) => [c.method, c.target.server]), [['finish_revert_resize', HOST_A]]);
      assert.equal(await power(HOST_B, uuid), 'none');
      assert.equal(await power(HOST_A, uuid), PowerState.RUNNING);
      const row = cloud.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['host'], row['node']], ['active', null, HOST_A, HOST_A]);
      assert.equal(data(row['flavor'])['id'], oldFlavor['id']);
      assert.equal(cloud.placement.consumers.has(r.migrationUuid), false);
      assert.deepEqual(Object.keys(held(uuid)), [cloud.provider(HOST_A)]);
      assert.deepEqual(cloud.migrationImages.deleted, [r.migrationUuid]);
      assert.equal(cloud.conductor.migration(r.migrationId)['status'], 'reverted');
      assert.deepEqual(cloud.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.host, e.result]), [
        ['compute_revert_resize', HOST_B, 'Success'],
        ['compute_finish_revert_resize', HOST_A, 'Success'],
      ]);
    });
  });

  describe('failures', () => {
    it('an upload that fails mid-transfer rolls back: the source runs again, vm_state back, migration error, a fault, the image deleted, the allocation back', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      cloud.migrationImages.failUpload = new Error('Glance connection reset during the upload');
      const r = await move(uuid);
      assert.deepEqual(cloud.bus.casts.map((c) => c.method), ['resize_instance'], 'no finish_resize');
      assert.equal(cloud.bus.failures.length, 1);
      const error = cloud.bus.failures[0]?.error;
      assert.ok(error instanceof RemoteFailure);
      assert.match(error.message, /Glance connection reset during the upload/);

      assert.equal(await power(HOST_A, uuid), PowerState.RUNNING);
      assert.equal(await power(HOST_B, uuid), 'none');
      const row = cloud.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['host']], ['active', null, HOST_A]);
      assert.equal(cloud.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(cloud.migrationImages.deleted, [r.migrationUuid]);
      assert.equal(cloud.migrationImages.data.size, 0);
      assert.deepEqual(Object.keys(held(uuid)), [cloud.provider(HOST_A)]);
      assert.equal(cloud.placement.consumers.has(r.migrationUuid), false);
      const faults = cloud.conductor.faults.filter((f) => f.instance_uuid === uuid);
      assert.equal(faults.length, 1);
      assert.match(faults[0]?.message ?? '', /Glance connection reset/);
    });

    it('an image that cannot be created rolls back the same way (nothing to delete) and a STOPPED source stays stopped', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      const { context, instance } = cloud.api(uuid, 'powering-off', 'stop');
      await cloud.rpc(HOST_A, 'stop_instance', { instance, clean_shutdown: true }, context);
      cloud.migrationImages.failCreate = new Error('403 quota exceeded');
      const r = await move(uuid);
      assert.equal(await power(HOST_A, uuid), PowerState.SHUTDOWN);
      assert.deepEqual([cloud.row(uuid)['vm_state'], cloud.row(uuid)['task_state']], ['stopped', null]);
      assert.equal(cloud.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(cloud.migrationImages.created, []);
      assert.deepEqual(cloud.migrationImages.deleted, []);
    });

    it('a failure at the destination after the move: ERROR with a fault, migration error, the source allocation and the image removed, the source container kept', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      cloud.node(HOST_B).driver.failNext('finishMigration', new DriverError('the engine refused to create the container'));
      const r = await move(uuid);
      assert.deepEqual(cloud.bus.failures.map((f) => [f.method, f.host]), [['finish_resize', HOST_B]]);
      const row = cloud.row(uuid);
      assert.deepEqual([row['vm_state'], row['host']], ['error', HOST_B]);
      assert.equal(cloud.conductor.migration(r.migrationId)['status'], 'error');
      assert.equal(cloud.placement.consumers.has(r.migrationUuid), false);
      assert.deepEqual(cloud.migrationImages.deleted, [r.migrationUuid]);
      assert.equal(await power(HOST_A, uuid), PowerState.SHUTDOWN);
      assert.equal(await power(HOST_B, uuid), 'none');
      const faults = cloud.conductor.faults.filter((f) => f.instance_uuid === uuid);
      assert.ok(faults.some((f) => /refused to create the container/.test(f.message)), JSON.stringify(faults));
    });

    it('a restart of the source in the middle of the transfer (init_host, resize_migrating): the instance back as it was, the migration error, the image deleted', async () => {
      cloud = await TwoHosts.create();
      const uuid = await cloud.activeInstance(HOST_A);
      let release!: (err: Error) => void;
      cloud.migrationImages.holdUpload = new Promise<void>((_resolve, reject) => {
        release = reject;
      });
      cloud.migrationImages.holdUpload.catch(() => undefined);
      const scheduled = cloud.scheduleMove(uuid, HOST_B);
      await cloud.rpc(HOST_B, 'prep_resize', scheduled.args, scheduled.context);
      await waitUntil(() => cloud.row(uuid)['task_state'] === 'resize_migrating' && cloud.migrationImages.created.length === 1);

      // What the restarted source's init_host does with an instance it finds in resize_migrating.
      const context = { request_id: 'req-init-host', is_admin: true };
      const found = await cloud.client.instanceGetByUuid(context, uuid, []);
      await cloud.node(HOST_A).manager.resize.recoverInterruptedResize(context, found);
      const row = cloud.row(uuid);
      assert.deepEqual([row['vm_state'], row['task_state'], row['host']], ['active', null, HOST_A]);
      assert.equal(cloud.conductor.migration(scheduled.migrationId)['status'], 'error');
      assert.deepEqual(cloud.migrationImages.deleted, [scheduled.migrationUuid]);
      assert.deepEqual(Object.keys(held(uuid)), [cloud.provider(HOST_A)]);
      assert.equal(await power(HOST_A, uuid), PowerState.RUNNING);

      // The interrupted cast (in a real restart it died with the process) ends without undoing that.
      release(new Error('the process went away'));
      await cloud.bus.drain();
      assert.equal(cloud.row(uuid)['host'], HOST_A);
      assert.equal(await power(HOST_A, uuid), PowerState.RUNNING);
      assert.equal(await power(HOST_B, uuid), 'none');
    });

    it('a destination without a Glance service credential refuses in prep_resize; nothing is transferred', async () => {
      cloud = await TwoHosts.create({ withoutMigrationImagesOn: HOST_B });
      const uuid = await cloud.activeInstance(HOST_A);
      const r = await move(uuid);
      assert.ok(r.error instanceof RemoteFailure);
      assert.equal(r.error.className, 'MigrationPreCheckError');
      assert.deepEqual(cloud.bus.casts, []);
      assert.deepEqual([cloud.row(uuid)['vm_state'], cloud.row(uuid)['host']], ['active', HOST_A]);
      assert.equal(await power(HOST_A, uuid), PowerState.RUNNING);
    });

    it('a source without one rolls back in resize_instance before stopping anything', async () => {
      cloud = await TwoHosts.create({ withoutMigrationImagesOn: HOST_A });
      const uuid = await cloud.activeInstance(HOST_A);
      const r = await move(uuid);
      assert.equal(cloud.bus.failures.length, 1);
      const error = cloud.bus.failures[0]?.error;
      assert.ok(error instanceof RemoteFailure);
      assert.equal(error.className, 'MigrationPreCheckError');
      assert.equal(await power(HOST_A, uuid), PowerState.RUNNING);
      assert.deepEqual([cloud.row(uuid)['vm_state'], cloud.row(uuid)['task_state'], cloud.row(uuid)['host']], ['active', null, HOST_A]);
      assert.equal(cloud.conductor.migration(r.migrationId)['status'], 'error');
      assert.deepEqual(Object.keys(held(uuid)), [cloud.provider(HOST_A)]);
    });
  });
});
