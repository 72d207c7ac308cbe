// rebuild_instance: nova/compute/manager.py _do_rebuild_instance with the default driver rebuild (destroy, then
// spawn the image): the task states of nova-compute-protocol.md §4.4 with Nova's expected_task_state lists, a
// stopped instance brought back to stopped, an instance deleted meanwhile, and a failure. Evacuation (recreate=True)
// is evacuate.test.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DriverError, PowerState } from '../../../driver/driver';
import { RemoteFailure } from '../../../src/messaging/failure';
import { Harness } from './harness';
import { berthSaves } from './lifecycle-capture';

describe('compute: rebuild_instance', () => {
  let h: Harness;
  let uuid: string;
  const imageRef = randomUUID();

  beforeEach(async () => {
    h = await Harness.create();
    uuid = await h.activeInstance();
  });
  afterEach(async () => {
    await h.close();
  });

  function rebuild(): { requestId: string; done: Promise<unknown> } {
    const { context, instance } = h.api(uuid, { taskState: 'rebuilding', action: 'rebuild' });
    const args = {
      instance, orig_image_ref: '1271781e-5153-43b9-a96c-9851e9bec3c0', image_ref: imageRef, injected_files: [], new_pass: null,
      orig_sys_metadata: {}, bdms: null, recreate: false, on_shared_storage: null, preserve_ephemeral: false, migration: null,
      scheduled_node: null, limits: {}, request_spec: null, accel_uuids: [],
    };
    return { requestId: context.request_id, done: h.rpc('rebuild_instance', args, context) };
  }

  it('destroys and spawns the new image through rebuilding → rebuild_block_device_mapping → rebuild_spawning → ACTIVE', async () => {
    const before = (await h.driver.getInfo({ uuid, name: '' })).runtimeId;
    const { requestId, done } = rebuild();
    await done;
    assert.deepEqual(berthSaves(h.conductor.requests, requestId), [
      { fields: ['power_state', 'task_state'], task_state: 'rebuilding', expected_task_state: ['rebuilding'] },
      { fields: ['task_state'], task_state: 'rebuild_block_device_mapping', expected_task_state: ['rebuilding'] },
      { fields: ['task_state'], task_state: 'rebuild_spawning', expected_task_state: ['rebuild_block_device_mapping'] },
      { fields: ['power_state', 'task_state', 'vm_state'], vm_state: 'active', task_state: null, expected_task_state: ['rebuild_spawning'] },
    ]);
    const after = await h.driver.getInfo({ uuid, name: '' });
    assert.notEqual(after.runtimeId, before);
    assert.equal(after.powerState, PowerState.RUNNING);
    assert.equal(h.row(uuid)['image_ref'], imageRef);
    assert.ok(h.images.fetched.includes(imageRef));
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.start', 'rebuild.end']);
    assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [['compute_rebuild_instance', 'Success']]);
  });

  it('a STOPPED instance is stopped again afterwards, through stop_instance (forced, its own event)', async () => {
    const { context, instance } = h.api(uuid, { taskState: 'powering-off', action: 'stop' });
    await h.rpc('stop_instance', { instance, clean_shutdown: true }, context);
    const timeouts: number[] = [];
    const powerOff = h.driver.powerOff.bind(h.driver);
    h.driver.powerOff = async (r, t) => {
      timeouts.push(t);
      return powerOff(r, t);
    };
    const { requestId, done } = rebuild();
    await done;
    assert.equal(h.row(uuid)['vm_state'], 'stopped');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.equal((await h.driver.getInfo({ uuid, name: '' })).powerState, PowerState.SHUTDOWN);
    assert.deepEqual(timeouts, [0], 'stop_instance(clean_shutdown=False)');
    assert.deepEqual(berthSaves(h.conductor.requests, requestId).slice(-2), [
      { fields: ['task_state', 'vm_state'], vm_state: 'active', task_state: 'powering-off', expected_task_state: '<absent>' },
      { fields: ['power_state', 'task_state', 'vm_state'], vm_state: 'stopped', task_state: null, expected_task_state: ['powering-off'] },
    ]);
    assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [
      ['compute_rebuild_instance', 'Success'],
      ['compute_stop_instance', 'Success'],
    ]);
  });

  it('deleted meanwhile (UnexpectedDeletingTaskStateError): rebuild.error, no fault, nothing raised', async () => {
    const { requestId, done } = rebuild();
    h.conductor.beforeAnswer.push((request) => {
      const data = (request.args['objinst'] as Record<string, unknown> | undefined)?.['nova_object.data'] as Record<string, unknown> | undefined;
      if (request.objMethod === 'save' && data?.['task_state'] === 'rebuild_block_device_mapping') h.row(uuid)['task_state'] = 'deleting';
    });
    await done;
    assert.equal(h.row(uuid)['task_state'], 'deleting');
    assert.deepEqual(h.faultsOf(uuid), []);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.start', 'rebuild.error']);
    assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Success');
  });

  it('a spawn failure: ERROR, fault, rebuild.error, event error, task_state reverted', async () => {
    h.driver.failNext('spawn', new DriverError('image would not start'));
    const { requestId, done } = rebuild();
    await assert.rejects(done, (err: unknown) => err instanceof RemoteFailure && err.message === 'image would not start');
    assert.equal(h.row(uuid)['vm_state'], 'error');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['image would not start']);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['rebuild.start', 'rebuild.error']);
    assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Error');
  });
});
