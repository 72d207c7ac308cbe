// The CALLs that read an instance: get_console_output (_tail_log's int() and ascii-replace), get_diagnostics and
// get_instance_diagnostics (running only, InstanceInvalidState otherwise), unknown instances.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { RemoteFailure } from '../../../src/messaging/failure';
import { NovaObject } from '../../../src/objects';
import { Harness, userContext } from './harness';

/** nova/compute/manager.py _tail_log on the whole output, for a length Python's int() accepted. */
function pythonTail(output: string, length: number): string {
  if (length === 0) return '';
  return output.split('\n').slice(-length).join('\n');
}

describe('compute: get_console_output and diagnostics', () => {
  let h: Harness;
  let uuid: string;
  let full: string;

  before(async () => {
    h = await Harness.create();
    uuid = await h.activeInstance();
    // More lines of console.
    for (const op of ['powerOff', 'powerOn'] as const) await h.driver[op]({ uuid, name: '' }, 0);
    full = await h.driver.getConsoleOutput({ uuid, name: '' }, null);
  });
  after(async () => {
    await h.close();
  });

  function consoleOutput(tailLength: unknown, instance: unknown = h.conductor.instancePrimitive(uuid)): Promise<unknown> {
    return h.rpc('get_console_output', { instance, tail_length: tailLength }, userContext(), true);
  }

  it('the fixture has several lines', () => {
    assert.ok(full.split('\n').length >= 5, full);
  });

  for (const [tail, length] of [
    [null, null],
    [2, 2],
    [3, 3],
    ['2', 2],
    [' 3 ', 3],
    ['+2', 2],
    ['1_0', 10],
    [2.9, 2],
    [0, 0],
    ['0', 0],
    ['garbage', 0],
    ['2.5', 0],
    ['', 0],
    [-1, -1],
    ['-2', -2],
    [1000, 1000],
  ] as const) {
    it(`tail_length ${JSON.stringify(tail)}: as Python's _tail_log`, async () => {
      const expected = length === null ? full : pythonTail(full, length);
      assert.equal(await consoleOutput(tail), expected);
    });
  }

  it('non-ASCII characters are replaced (decode ascii, replace)', async () => {
    const other = await h.activeInstance();
    const original = h.driver.getConsoleOutput.bind(h.driver);
    h.driver.getConsoleOutput = async () => 'caf\u00e9 \u2603 ok\n';
    try {
      assert.equal(await consoleOutput(null, h.conductor.instancePrimitive(other)), 'caf\ufffd \ufffd ok\n');
    } finally {
      h.driver.getConsoleOutput = original;
    }
  });

  it('an instance the runtime does not have: InstanceNotFound (no fault, as wrap_instance_fault skips it)', async () => {
    const ghost = randomUUID();
    h.conductor.addInstance({ ...structuredClone(h.row(uuid)), uuid: ghost });
    await assert.rejects(consoleOutput(5, h.conductor.instancePrimitive(ghost)), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.equal(err.className, 'InstanceNotFound');
      assert.equal(err.module, 'nova.exception');
      assert.equal(err.message, `Instance ${ghost} could not be found.`);
      assert.equal(err.kwargs['code'], 404);
      return true;
    });
    assert.deepEqual(h.faultsOf(ghost), []);
  });

  it('no instance action event and no Instance.save for a CALL that reads', async () => {
    const before = h.conductor.requests.length;
    await consoleOutput(null);
    await h.rpc('get_diagnostics', { instance: h.conductor.instancePrimitive(uuid) }, userContext(), true);
    assert.deepEqual(h.conductor.requests.slice(before).map((r) => `${String(r.objName)}.${String(r.objMethod)}`), []);
  });

  describe('set_admin_password (a container has no guest agent)', () => {
    it('a running instance: NotImplementedError, task_state cleared expecting updating_password', async () => {
      const target = await h.activeInstance();
      const { context, instance } = h.api(target, { taskState: 'updating_password', action: 'changePassword' });
      await assert.rejects(h.rpc('set_admin_password', { instance, new_pass: 'hunter2' }, context, true), (err: unknown) => {
        assert.ok(err instanceof RemoteFailure);
        assert.equal(err.className, 'NotImplementedError');
        assert.equal(err.message, 'set_admin_password is not implemented by this driver or guest instance.');
        return true;
      });
      assert.equal(h.row(target)['task_state'], null);
      const saves = h.conductor.requestsFor('Instance', 'save', context.request_id);
      assert.equal((saves[0]?.args['kwargs'] as Record<string, unknown>)['expected_task_state'], 'updating_password');
      assert.equal(h.conductor.actionFor(target, context.request_id)?.events[0]?.event, 'compute_set_admin_password');
    });

    it('a stopped instance: InstancePasswordSetFailed (409), task_state cleared', async () => {
      const target = await h.activeInstance();
      await h.driver.powerOff({ uuid: target, name: '' }, 0);
      const { context, instance } = h.api(target, { taskState: 'updating_password', action: 'changePassword' });
      await assert.rejects(h.rpc('set_admin_password', { instance, new_pass: 'hunter2' }, context, true), (err: unknown) => {
        assert.ok(err instanceof RemoteFailure);
        assert.equal(err.className, 'InstancePasswordSetFailed');
        assert.equal(err.message, `Failed to set admin password on ${target} because instance ${target} is not running`);
        assert.equal(err.kwargs['code'], 409);
        return true;
      });
      assert.equal(h.row(target)['task_state'], null);
    });
  });

  describe('diagnostics', () => {
    it('get_instance_diagnostics of a running instance: a Diagnostics object', async () => {
      const result = await h.rpc('get_instance_diagnostics', { instance: h.conductor.instancePrimitive(uuid) }, userContext(), true);
      const diag = NovaObject.fromPrimitive(result);
      assert.equal(diag.name, 'Diagnostics');
      assert.equal(diag.get('state'), 'running');
      assert.equal(diag.get('driver'), 'libvirt');
      assert.equal(diag.get('hypervisor'), 'fake');
      assert.equal(diag.get('num_cpus'), 1);
      assert.equal((diag.get('memory_details') as NovaObject).get('maximum'), 512);
    });

    it('get_diagnostics of a running instance: the libvirt-style dict', async () => {
      const result = (await h.rpc('get_diagnostics', { instance: h.conductor.instancePrimitive(uuid) }, userContext(), true)) as Record<string, unknown>;
      assert.equal(result['memory'], 512 * 1024);
      assert.equal(result['cpu0_time'], 17_300_000_000);
      assert.equal(result['disk0_read'], 262144);
    });

    for (const method of ['get_instance_diagnostics', 'get_diagnostics']) {
      it(`${method} of a stopped instance: InstanceInvalidState (Nova's message, code 400) and a fault`, async () => {
        const stopped = await h.activeInstance();
        await h.driver.powerOff({ uuid: stopped, name: '' }, 0);
        h.row(stopped)['power_state'] = 4;
        const faultsBefore = h.faultsOf(stopped).length;
        await assert.rejects(h.rpc(method, { instance: h.conductor.instancePrimitive(stopped) }, userContext(), true), (err: unknown) => {
          assert.ok(err instanceof RemoteFailure);
          assert.equal(err.className, 'InstanceInvalidState');
          assert.equal(err.message, `Instance ${stopped} in power state shutdown. Cannot get_diagnostics while the instance is in this state.`);
          assert.equal(err.kwargs['code'], 400);
          return true;
        });
        assert.deepEqual(h.faultsOf(stopped).slice(faultsBefore).map((f) => [f.code, f.details]), [[400, '']]);
      });
    }
  });
});
