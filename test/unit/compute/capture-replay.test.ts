// The whole lifecycle of the lab capture (build, stop, start, reboot soft and hard, pause, unpause, suspend, resume,
// console, delete) replayed against Berth with the exact RPCs nova-api sent: after every step the Instance.save
// sequence (state fields, values and expected_task_state), the action events and the legacy notifications (with the
// vm_state/task_state they carry) must be the ones Python's nova-compute produced for the same request.
import assert from 'node:assert/strict';
import { Harness } from './harness';
import {
  berthEvents,
  berthSaves,
  CAPTURE_INSTANCE_UUID,
  capturedComputeCalls,
  capturedDestroyed,
  capturedEvents,
  capturedNotificationStates,
  capturedSaves,
  withClaimMerged,
} from './lifecycle-capture';

/** The InstanceAction nova-api records for each cast (the conductor records `create`). */
const ACTIONS: Record<string, string> = {
  build_and_run_instance: 'create',
  stop_instance: 'stop',
  start_instance: 'start',
  reboot_instance: 'reboot',
  pause_instance: 'pause',
  unpause_instance: 'unpause',
  suspend_instance: 'suspend',
  resume_instance: 'resume',
  terminate_instance: 'delete',
};

describe('compute: the lab lifecycle replayed (fake-driver-lifecycle.jsonl)', () => {
  let h: Harness;
  const uuid = CAPTURE_INSTANCE_UUID;

  before(async () => {
    h = await Harness.create();
  });
  after(async () => {
    await h.close();
  });

  it('the capture holds the whole lifecycle', () => {
    assert.deepEqual(
      capturedComputeCalls().map((c) => (c.method === 'reboot_instance' ? `reboot ${String(c.args['reboot_type'])}` : c.method)),
      [
        'build_and_run_instance', 'stop_instance', 'start_instance', 'reboot SOFT', 'reboot HARD', 'pause_instance',
        'unpause_instance', 'suspend_instance', 'resume_instance', 'get_console_output', 'terminate_instance',
      ],
    );
  });

  for (const step of capturedComputeCalls()) {
    const label = step.method === 'reboot_instance' ? `reboot_instance ${String(step.args['reboot_type'])}` : step.method;
    it(`${label}: Instance.save sequence, events and notifications as Python's`, async () => {
      const args = structuredClone(step.args);
      const sent = (args['instance'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
      if (step.method === 'build_and_run_instance') {
        // The FakeDriver runs docker images only; Python's FakeDriver took the lab's raw "bare" image.
        (args['image'] as Record<string, unknown>)['container_format'] = 'docker';
        h.conductor.addInstance(sent);
      } else {
        // Berth left the instance in the vm_state Python did; nova-api then set the task_state it sent.
        const row = h.row(uuid);
        assert.equal(row['vm_state'], sent['vm_state'], 'vm_state before the step');
        assert.equal(row['task_state'], null, 'task_state before the step');
        row['task_state'] = sent['task_state'];
      }
      const action = ACTIONS[step.method];
      if (action) h.conductor.recordAction(uuid, step.requestId, action);

      const result = await h.rpc(step.method, args, step.context, step.isCall);

      const pythonSaves = capturedSaves(step.requestId);
      assert.deepEqual(berthSaves(h.conductor.requests, step.requestId), step.method === 'build_and_run_instance' ? withClaimMerged(pythonSaves) : pythonSaves);
      assert.deepEqual(berthEvents(h.conductor.requests, step.requestId), capturedEvents(step.requestId));
      assert.deepEqual(h.notifier.statesFor(step.requestId), capturedNotificationStates(step.requestId));
      const destroyed = h.conductor.requestsFor('Instance', 'destroy', step.requestId).length > 0;
      assert.equal(destroyed, capturedDestroyed(step.requestId));
      if (step.isCall) assert.equal(typeof result, 'string');
    });
  }

  it('ends with the row deleted, the container gone and the allocation released', async () => {
    assert.equal(h.row(uuid)['deleted'], true);
    assert.equal(h.row(uuid)['vm_state'], 'deleted');
    assert.deepEqual(await h.driver.listInstances(), []);
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
  });
});
