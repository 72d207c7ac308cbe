// terminate_instance: nova/compute/manager.py terminate_instance / _delete_instance / _complete_deletion.
import assert from 'node:assert/strict';
import { DriverError } from '../../../driver/driver';
import { RemoteFailure } from '../../../src/messaging/failure';
import { Harness } from './harness';
import { berthSaves, capturedCompute, capturedNotifications, capturedSaves } from './lifecycle-capture';

describe('compute: terminate_instance', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });
  afterEach(async () => {
    await h.close();
  });

  function terminate(uuid: string): { requestId: string; done: Promise<unknown> } {
    const { context, instance } = h.api(uuid, { taskState: 'deleting', action: 'delete' });
    const bdms = capturedCompute('terminate_instance').args['bdms'];
    return { requestId: context.request_id, done: h.rpc('terminate_instance', { instance, bdms }, context) };
  }

  it('removes the container, saves vm_state deleted, releases placement and the scheduler, then destroys the row', async () => {
    const uuid = await h.activeInstance();
    // What had already happened when Instance.destroy arrived (Nova destroys the row only after the allocation).
    let atDestroy: { allocations: string[]; schedulerDeleted: number; containers: number; vmState: unknown } | null = null;
    h.conductor.beforeAnswer.push(async (request) => {
      if (request.objName === 'Instance' && request.objMethod === 'destroy') {
        atDestroy = {
          allocations: [...h.placement.deletedAllocations],
          schedulerDeleted: h.scheduler.deleted.length,
          containers: (await h.driver.listInstances()).length,
          vmState: h.row(uuid)['vm_state'],
        };
      }
    });
    const { requestId, done } = terminate(uuid);
    await done;

    const captured = capturedCompute('terminate_instance').requestId;
    assert.deepEqual(berthSaves(h.conductor.requests, requestId), capturedSaves(captured));
    assert.deepEqual(h.notifier.eventsFor(requestId), capturedNotifications(captured));
    assert.deepEqual(atDestroy, { allocations: [uuid], schedulerDeleted: 1, containers: 0, vmState: 'deleted' });
    const row = h.row(uuid);
    assert.equal(row['deleted'], true);
    assert.equal(row['vm_state'], 'deleted');
    assert.equal(row['task_state'], null);
    assert.equal(row['power_state'], 0);
    assert.equal(typeof row['terminated_at'], 'string');
    assert.deepEqual(h.scheduler.deleted, [{ requestId, uuid }]);
    assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [['compute_terminate_instance', 'Success']]);
  });

  it('an instance whose container is already gone is deleted all the same', async () => {
    const uuid = await h.activeInstance();
    await h.driver.destroy({ uuid, name: '' });
    const { done } = terminate(uuid);
    await done;
    assert.equal(h.row(uuid)['deleted'], true);
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
    assert.deepEqual(h.faultsOf(uuid), []);
  });

  it('an instance that disappeared from the database meanwhile: the container is removed, nothing fails', async () => {
    const uuid = await h.activeInstance();
    const { done } = terminate(uuid);
    h.row(uuid)['deleted'] = true;
    await done;
    assert.deepEqual(await h.driver.listInstances(), []);
    assert.deepEqual(h.faultsOf(uuid), []);
  });

  it('a runtime failure: vm_state error, fault, event error, task_state reverted, row and allocation kept', async () => {
    const uuid = await h.activeInstance();
    h.driver.failNext('destroy', new DriverError('device or resource busy'));
    const { requestId, done } = terminate(uuid);
    await assert.rejects(done, (err: unknown) => err instanceof RemoteFailure && err.message === 'device or resource busy');
    const row = h.row(uuid);
    assert.equal(row['vm_state'], 'error');
    assert.equal(row['task_state'], null);
    assert.equal(row['deleted'], false);
    assert.deepEqual(h.placement.deletedAllocations, []);
    assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['device or resource busy']);
    assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Error');
    // The user can delete it again once the runtime recovers.
    const again = terminate(uuid);
    await again.done;
    assert.equal(h.row(uuid)['deleted'], true);
    assert.deepEqual(await h.driver.listInstances(), []);
  });
});
