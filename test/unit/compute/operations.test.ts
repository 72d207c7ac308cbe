// stop / start / pause / unpause / suspend / resume and reboot (soft, hard): the saves, events and notifications of
// the lab capture, the runtime state after, and Nova's decorator semantics on failure (fault, event error,
// reverts_task_state, _error_out_instance_on_exception, a preempted task left alone).
import assert from 'node:assert/strict';
import { DriverError, PowerState, type PowerState as PowerStateT } from '../../../driver/driver';
import type { FakeOperation } from '../../../driver/fake/fake-driver';
import { RemoteFailure } from '../../../src/messaging/failure';
import { Harness } from './harness';
import { berthSaves, capturedCompute, capturedNotifications, capturedSaves } from './lifecycle-capture';

interface SimpleOp {
  readonly method: string;
  readonly from: 'active' | 'stopped' | 'paused' | 'suspended';
  readonly task: string;
  readonly action: string;
  readonly args?: Record<string, unknown>;
  readonly vmState: string;
  readonly power: PowerStateT;
  readonly driverCall: FakeOperation;
  /** _error_out_instance_on_exception around the driver call. */
  readonly errorsOut: boolean;
}

const OPS: readonly SimpleOp[] = [
  { method: 'stop_instance', from: 'active', task: 'powering-off', action: 'stop', args: { clean_shutdown: true }, vmState: 'stopped', power: PowerState.SHUTDOWN, driverCall: 'powerOff', errorsOut: false },
  { method: 'start_instance', from: 'stopped', task: 'powering-on', action: 'start', vmState: 'active', power: PowerState.RUNNING, driverCall: 'powerOn', errorsOut: false },
  { method: 'pause_instance', from: 'active', task: 'pausing', action: 'pause', vmState: 'paused', power: PowerState.PAUSED, driverCall: 'pause', errorsOut: false },
  { method: 'unpause_instance', from: 'paused', task: 'unpausing', action: 'unpause', vmState: 'active', power: PowerState.RUNNING, driverCall: 'unpause', errorsOut: false },
  { method: 'suspend_instance', from: 'active', task: 'suspending', action: 'suspend', vmState: 'suspended', power: PowerState.SUSPENDED, driverCall: 'suspend', errorsOut: true },
  { method: 'resume_instance', from: 'suspended', task: 'resuming', action: 'resume', vmState: 'active', power: PowerState.RUNNING, driverCall: 'resume', errorsOut: true },
];

const opFor = (method: string): SimpleOp => OPS.find((o) => o.method === method) as SimpleOp;

describe('compute: instance operations', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });
  afterEach(async () => {
    await h.close();
  });

  /** Runs `op` on `uuid` as nova-api would cast it; resolves with the request id (rejects like the handler). */
  async function run(uuid: string, op: SimpleOp): Promise<string> {
    const { context, instance } = h.api(uuid, { taskState: op.task, action: op.action });
    await h.rpc(op.method, { instance, ...op.args }, context);
    return context.request_id;
  }

  async function instanceIn(state: SimpleOp['from']): Promise<string> {
    const uuid = await h.activeInstance();
    if (state === 'stopped') await run(uuid, opFor('stop_instance'));
    if (state === 'paused') await run(uuid, opFor('pause_instance'));
    if (state === 'suspended') await run(uuid, opFor('suspend_instance'));
    assert.equal(h.row(uuid)['vm_state'], state);
    return uuid;
  }

  async function powerState(uuid: string): Promise<PowerStateT> {
    return (await h.driver.getInfo({ uuid, name: '' })).powerState;
  }

  for (const op of OPS) {
    describe(op.method, () => {
      it('saves, events and notifications as in the capture; the runtime and the row agree after', async () => {
        const uuid = await instanceIn(op.from);
        const requestId = await run(uuid, op);
        const captured = capturedCompute(op.method).requestId;
        assert.deepEqual(berthSaves(h.conductor.requests, requestId), capturedSaves(captured));
        assert.deepEqual(h.notifier.eventsFor(requestId), capturedNotifications(captured));
        assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [[`compute_${op.method}`, 'Success']]);
        assert.equal(await powerState(uuid), op.power);
        const row = h.row(uuid);
        assert.equal(row['vm_state'], op.vmState);
        assert.equal(row['task_state'], null);
        assert.equal(row['power_state'], op.power);
        assert.deepEqual(h.faultsOf(uuid), []);
      });

      it('a driver error: fault, event finished with the error, task_state reverted' + (op.errorsOut ? ', vm_state error' : ', vm_state kept'), async () => {
        const uuid = await instanceIn(op.from);
        h.driver.failNext(op.driverCall, new DriverError('the runtime said no'));
        const { context, instance } = h.api(uuid, { taskState: op.task, action: op.action });
        await assert.rejects(h.rpc(op.method, { instance, ...op.args }, context), (err: unknown) => {
          assert.ok(err instanceof RemoteFailure);
          assert.equal(err.message, 'the runtime said no');
          return true;
        });
        const row = h.row(uuid);
        assert.equal(row['task_state'], null);
        assert.equal(row['vm_state'], op.errorsOut ? 'error' : op.from);
        assert.deepEqual(h.faultsOf(uuid).map((f) => [f.code, f.message]), [[500, 'the runtime said no']]);
        const [event] = h.conductor.actionFor(uuid, context.request_id)?.events ?? [];
        assert.equal(event?.result, 'Error');
        assert.equal(event?.excVal, 'the runtime said no');
        assert.match(String(event?.traceback), /the runtime said no/);
        assert.deepEqual(h.notifier.exceptions.map((e) => [e.method, e.requestId]), [[op.method, context.request_id]]);
        assert.ok(!h.notifier.eventsFor(context.request_id).some((e) => e.endsWith('.end')));
      });

      it('UnexpectedTaskStateError at the final save (task preempted): task_state not reverted', async () => {
        const uuid = await instanceIn(op.from);
        const { context, instance } = h.api(uuid, { taskState: op.task, action: op.action });
        h.conductor.beforeAnswer.push((request) => {
          if (request.requestId === context.request_id && request.objMethod === 'save') h.row(uuid)['task_state'] = 'rebooting_hard';
        });
        await assert.rejects(h.rpc(op.method, { instance, ...op.args }, context), (err: unknown) => err instanceof RemoteFailure && err.className === 'UnexpectedTaskStateError');
        assert.equal(h.row(uuid)['task_state'], 'rebooting_hard');
        assert.equal(h.conductor.actionFor(uuid, context.request_id)?.events[0]?.result, 'Error');
        // The only save of the request was the one that conflicted: no revert followed.
        assert.equal(h.conductor.requestsFor('Instance', 'save', context.request_id).length, 1);
      });
    });
  }

  describe('stop_instance details', () => {
    it('a container that is already off: expected_task_state [powering-off, None]', async () => {
      const uuid = await h.activeInstance();
      h.driver.simulateExit(uuid, 'stopped');
      const requestId = await run(uuid, opFor('stop_instance'));
      assert.deepEqual(berthSaves(h.conductor.requests, requestId).map((s) => s.expected_task_state), [['powering-off', null]]);
      assert.equal(h.row(uuid)['vm_state'], 'stopped');
    });

    for (const [cleanShutdown, sysmeta, timeout] of [
      [true, undefined, 60],
      [false, undefined, 0],
      [true, '7', 7],
    ] as const) {
      it(`clean_shutdown=${String(cleanShutdown)}${sysmeta ? `, image_os_shutdown_timeout=${sysmeta}` : ''}: powerOff(${timeout})`, async () => {
        const uuid = await h.activeInstance();
        if (sysmeta) (h.row(uuid)['system_metadata'] as Record<string, string>)['image_os_shutdown_timeout'] = sysmeta;
        const timeouts: number[] = [];
        const powerOff = h.driver.powerOff.bind(h.driver);
        h.driver.powerOff = async (ref, t) => {
          timeouts.push(t);
          return powerOff(ref, t);
        };
        await run(uuid, { ...opFor('stop_instance'), args: { clean_shutdown: cleanShutdown } });
        assert.deepEqual(timeouts, [timeout]);
      });
    }
  });

  describe('suspend / resume details', () => {
    it('suspend keeps the old vm_state in system_metadata; resume restores it and drops the key', async () => {
      const uuid = await instanceIn('suspended');
      assert.equal((h.row(uuid)['system_metadata'] as Record<string, string>)['old_vm_state'], 'active');
      await run(uuid, opFor('resume_instance'));
      assert.equal(h.row(uuid)['vm_state'], 'active');
      assert.equal((h.row(uuid)['system_metadata'] as Record<string, string>)['old_vm_state'], undefined);
    });

    it('a driver without suspend: NotImplementedError, vm_state kept, task_state reverted', async () => {
      await h.close();
      h = await Harness.create({ driver: { capabilities: { supportsSuspend: false } } });
      const uuid = await h.activeInstance();
      const { context, instance } = h.api(uuid, { taskState: 'suspending', action: 'suspend' });
      await assert.rejects(h.rpc('suspend_instance', { instance }, context), (err: unknown) => err instanceof RemoteFailure && err.className === 'NotImplementedError');
      assert.equal(h.row(uuid)['vm_state'], 'active');
      assert.equal(h.row(uuid)['task_state'], null);
      assert.equal(await powerState(uuid), PowerState.RUNNING);
    });
  });

  for (const type of ['SOFT', 'HARD'] as const) {
    describe(`reboot_instance ${type}`, () => {
      const task = type === 'SOFT' ? 'rebooting' : 'rebooting_hard';

      async function reboot(uuid: string): Promise<{ requestId: string; done: Promise<unknown> }> {
        const { context, instance } = h.api(uuid, { taskState: task, action: 'reboot' });
        return { requestId: context.request_id, done: h.rpc('reboot_instance', { instance, block_device_info: null, reboot_type: type }, context) };
      }

      it('saves, events and notifications as in the capture; running after', async () => {
        const uuid = await h.activeInstance();
        const { requestId, done } = await reboot(uuid);
        await done;
        const captured = capturedCompute('reboot_instance', type).requestId;
        assert.deepEqual(berthSaves(h.conductor.requests, requestId), capturedSaves(captured));
        assert.deepEqual(h.notifier.eventsFor(requestId), capturedNotifications(captured));
        assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [['compute_reboot_instance', 'Success']]);
        assert.equal(await powerState(uuid), PowerState.RUNNING);
        assert.equal(h.row(uuid)['vm_state'], 'active');
        assert.equal(h.row(uuid)['task_state'], null);
      });

      it('the runtime fails but the instance still runs: fault and reboot.error, then ACTIVE as Nova does', async () => {
        const uuid = await h.activeInstance();
        h.driver.failNext('reboot', new DriverError('reboot hiccup'));
        const { requestId, done } = await reboot(uuid);
        await done;
        assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['reboot hiccup']);
        assert.deepEqual(h.notifier.eventsFor(requestId), ['reboot.start', 'reboot.error', 'reboot.end']);
        assert.equal(h.row(uuid)['vm_state'], 'active');
        assert.equal(h.row(uuid)['task_state'], null);
        assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Success');
      });

      it('the runtime fails and the instance is down: ERROR, fault, event error, task_state reverted', async () => {
        const uuid = await h.activeInstance();
        h.driver.simulateExit(uuid, 'stopped');
        h.driver.failNext('reboot', new DriverError('reboot failed'));
        const { requestId, done } = await reboot(uuid);
        await assert.rejects(done, (err: unknown) => err instanceof RemoteFailure && err.message === 'reboot failed');
        assert.equal(h.row(uuid)['vm_state'], 'error');
        assert.equal(h.row(uuid)['task_state'], null);
        assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['reboot failed']);
        assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Error');
      });
    });
  }
});
