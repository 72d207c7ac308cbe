// The compute RPC endpoint: arguments bound like Python binds them (TypeError worded as nova's wrap_exception makes
// inspect.getcallargs word it — the real compute's reply in failure-replies.jsonl), bad instances, methods Berth does
// not implement (CALL: NotImplementedError; CAST: Nova's decorators), and baseapi.
import assert from 'node:assert/strict';
import { RemoteFailure } from '../../../src/messaging/failure';
import { COMPUTE_RPC_VERSION } from '../../../src/compute/rpc-endpoint';
import { contextOf, failureExchanges } from '../objects/capture-fixtures';
import { Harness, userContext } from './harness';

function failureOf(reply: Record<string, unknown>): { class: string; module: string; message: string } {
  const f = JSON.parse(String(reply['failure'])) as { class: string; module: string; message: string };
  return { class: f.class, module: f.module, message: f.message };
}

async function rejection(promise: Promise<unknown>): Promise<{ class: string; module: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof RemoteFailure, `not a RemoteFailure: ${String(err)}`);
    return { class: err.className, module: err.module, message: err.message };
  }
  assert.fail('the call did not fail');
}

describe('compute: RPC endpoint', () => {
  let h: Harness;
  let uuid: string;

  before(async () => {
    h = await Harness.create();
    uuid = await h.activeInstance();
  });
  after(async () => {
    await h.close();
  });

  const instance = (): Record<string, unknown> => h.conductor.instancePrimitive(uuid);

  it('compute 6.1 and baseapi 1.1', () => {
    assert.equal(COMPUTE_RPC_VERSION, '6.1');
    assert.ok(h.methods['build_and_run_instance'] && h.methods['terminate_instance'] && h.methods['get_console_output']);
  });

  describe('argument binding', () => {
    it("a missing argument: the real compute's reply, word for word (failure-replies.jsonl)", async () => {
      const captured = failureExchanges().find((e) => e.label.includes('missing argument'));
      assert.ok(captured, 'the capture has the missing-argument exchange');
      const args = captured.request['args'] as Record<string, unknown>;
      const got = await rejection(h.rpc(String(captured.request['method']), args, contextOf(captured.request), true));
      assert.deepEqual(got, failureOf(captured.reply));
    });

    for (const [method, args, message] of [
      ['reboot_instance', { instance: 'x' }, "reboot_instance() missing 2 required positional arguments: 'block_device_info' and 'reboot_type'"],
      ['rescue_instance', { instance: 'x' }, "rescue_instance() missing 3 required positional arguments: 'rescue_password', 'rescue_image_ref' and 'clean_shutdown'"],
      ['attach_interface', {}, "attach_interface() missing 5 required positional arguments: 'instance', 'network_id', 'port_id', 'requested_ip' and 'tag'"],
      ['pause_instance', { instance: 'x', bogus: 1 }, "pause_instance() got an unexpected keyword argument 'bogus'"],
      ['pause_instance', { bogus: 1 }, "pause_instance() got an unexpected keyword argument 'bogus'"],
    ] as const) {
      it(`${method}(${Object.keys(args).join(', ')}): TypeError "${message}"`, async () => {
        assert.deepEqual(await rejection(h.rpc(method, args, userContext(), true)), { class: 'TypeError', module: 'builtins', message });
      });
    }

    it('optional arguments may be left out', async () => {
      const result = await h.rpc('unquiesce_instance', { instance: instance() }, userContext(), true).catch((err: unknown) => err);
      assert.ok(result instanceof RemoteFailure && result.className === 'NotImplementedError');
    });

    for (const [value, type] of [
      ['garbage', 'str'],
      [7, 'int'],
      [null, 'NoneType'],
      [{ uuid: 'x' }, 'dict'],
    ] as const) {
      it(`instance ${JSON.stringify(value)}: AttributeError '${type}' object has no attribute 'uuid'`, async () => {
        assert.deepEqual(await rejection(h.rpc('get_console_output', { instance: value, tail_length: 10 }, userContext(), true)), {
          class: 'AttributeError',
          module: 'builtins',
          message: `'${type}' object has no attribute 'uuid'`,
        });
      });
    }

    it('a malformed object primitive never crashes the endpoint: the caller gets a failure', async () => {
      const bad = { 'nova_object.name': 'Instance', 'nova_object.namespace': 'nova', 'nova_object.version': '99.0', 'nova_object.data': {} };
      const got = await h.rpc('get_console_output', { instance: bad, tail_length: 1 }, userContext(), true).then(
        () => null,
        (err: unknown) => err,
      );
      assert.ok(got instanceof Error);
    });
  });

  describe('methods Berth does not implement', () => {
    it('a CALL: NotImplementedError, no fault, task_state untouched', async () => {
      const args = { instance: instance(), device: null, volume_id: 'v', disk_bus: null, device_type: null, tag: null, multiattach: false };
      assert.deepEqual(await rejection(h.rpc('reserve_block_device_name', args, userContext(), true)), {
        class: 'NotImplementedError',
        module: 'builtins',
        message: 'reserve_block_device_name is not supported by Berth',
      });
      assert.deepEqual(h.faultsOf(uuid), []);
    });

    it('a CAST on an instance: fault, event error, task_state reverted (nothing left in rescuing)', async () => {
      const { context, instance: sent } = h.api(uuid, { taskState: 'rescuing', action: 'rescue' });
      const args = { instance: sent, rescue_password: 'secret', rescue_image_ref: null, clean_shutdown: true };
      await assert.rejects(h.rpc('rescue_instance', args, context), (err: unknown) => err instanceof RemoteFailure && err.className === 'NotImplementedError');
      assert.equal(h.row(uuid)['task_state'], null);
      assert.equal(h.row(uuid)['vm_state'], 'active');
      assert.deepEqual(h.faultsOf(uuid).map((f) => [f.code, f.message]), [[500, 'rescue_instance is not supported by Berth']]);
      assert.deepEqual(h.conductor.actionFor(uuid, context.request_id)?.events.map((e) => [e.event, e.result]), [['compute_rescue_instance', 'Error']]);
      assert.deepEqual(h.notifier.exceptions.map((e) => [e.method, e.error.className]), [['rescue_instance', 'NotImplementedError']]);
    });

    it('consoles: ConsoleTypeUnavailable', async () => {
      assert.deepEqual(await rejection(h.rpc('get_vnc_console', { instance: instance(), console_type: 'novnc' }, userContext(), true)), {
        class: 'ConsoleTypeUnavailable',
        module: 'nova.exception',
        message: 'Unavailable console type novnc.',
      });
    });
  });

  describe('baseapi', () => {
    it("ping answers {service: 'compute', arg}", async () => {
      const ping = h.baseapi['ping'];
      assert.ok(ping);
      const call = { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: '1.21 GigaWatts' }, context: userContext(), isCall: true, messageId: 'm' };
      assert.deepEqual(await ping(call), { service: 'compute', arg: '1.21 GigaWatts' });
    });

    it('get_backdoor_port answers None', async () => {
      const get = h.baseapi['get_backdoor_port'];
      assert.ok(get);
      assert.equal(await get({ method: 'get_backdoor_port', namespace: 'baseapi', version: '1.1', args: {}, context: userContext(), isCall: true, messageId: 'm' }), null);
    });
  });
});
