import assert from 'node:assert/strict';
import { noSuchMethod, selectEndpoint, unsupportedVersion, validateEndpoints, versionIsCompatible } from '../../../src/messaging/dispatcher';
import { RemoteFailure } from '../../../src/messaging/failure';
import type { RpcEndpoint } from '../../../src/messaging/types';
import { failureReplies } from './captures';

const handler = async (): Promise<string> => 'ok';
const compute: RpcEndpoint = { namespace: null, version: '6.1', methods: { get_console_output: handler, build_and_run_instance: handler } };
const proxy5: RpcEndpoint = { namespace: null, version: '5.13', methods: { get_console_output: async () => '5.x' } };
const baseapi: RpcEndpoint = { namespace: 'baseapi', version: '1.1', methods: { ping: handler } };
const endpoints = [compute, proxy5, baseapi];

function failureOf(fn: () => unknown): RemoteFailure {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RemoteFailure, `not a RemoteFailure: ${String(err)}`);
    return err;
  }
  assert.fail('did not throw');
}

describe('messaging dispatcher', () => {
  // [implemented, requested, compatible] as oslo_messaging._utils.version_is_compatible answers.
  const table: [string, unknown, boolean][] = [
    ['6.1', '6.0', true],
    ['6.1', '6.1', true],
    ['6.1', '6.2', false],
    ['6.1', '5.0', false],
    ['6.1', '7.0', false],
    ['5.13', '5.0', true],
    ['5.13', '5.13', true],
    ['5.13', '5.14', false],
    ['1.1', '1.0', true],
    ['1.0', '1.1', false],
    ['6.1', '6.1.0', true],
    ['6.1', '6.1.1', false],
    ['6.1.2', '6.1.1', true],
    ['6.1.2', '6.0.9', true],
    ['3.0', '3.0', true],
    ['6.1', ' 6 . 1 ', true],
    ['6.1', '+6.0', true],
    ['6.1', null, false],
  ];
  for (const [implemented, requested, expected] of table) {
    it(`version ${JSON.stringify(requested)} against endpoint ${implemented}: ${expected ? 'compatible' : 'not compatible'}`, () => {
      assert.equal(versionIsCompatible(implemented, requested), expected);
    });
  }

  it('fails on malformed versions the way Python int() and split() fail', () => {
    const cases: [unknown, string, string][] = [
      ['abc', 'ValueError', "invalid literal for int() with base 10: 'abc'"],
      ['6.x', 'ValueError', "invalid literal for int() with base 10: 'x'"],
      ["6.'", 'ValueError', `invalid literal for int() with base 10: "'"`],
      ['6', 'IndexError', 'list index out of range'],
      ['', 'ValueError', "invalid literal for int() with base 10: ''"],
      [6, 'AttributeError', "'int' object has no attribute 'split'"],
      [6.5, 'AttributeError', "'float' object has no attribute 'split'"],
      [['6.0'], 'AttributeError', "'list' object has no attribute 'split'"],
    ];
    for (const [version, cls, message] of cases) {
      const failure = failureOf(() => versionIsCompatible('6.1', version));
      assert.equal(failure.className, cls, String(version));
      assert.equal(failure.module, 'builtins');
      assert.equal(failure.message, message);
    }
    // A major mismatch is decided before the minor is looked at, as in Python.
    assert.equal(versionIsCompatible('6.1', '5'), false);
  });

  it('produces exactly the NoSuchMethod and UnsupportedVersion failures the real nova-compute sent', () => {
    const records = failureReplies();
    for (const label of ['nova-compute unknown method -> NoSuchMethod', 'nova-compute unsupported version -> UnsupportedVersion']) {
      const record = records.find((r) => r.label === label);
      assert.ok(record, label);
      const captured = JSON.parse(String(record.reply['failure'])) as Record<string, unknown>;
      const { request } = record;
      const ours = failureOf(() =>
        selectEndpoint(endpoints, { method: request['method'], namespace: request['namespace'], version: request['version'], args: request['args'] }),
      ).toPayload();
      for (const key of ['class', 'module', 'message', 'args', 'kwargs'] as const) assert.deepEqual(ours[key], captured[key], key);
      assert.equal(ours.tb.at(-1), captured['tb'] && (captured['tb'] as string[]).at(-1), 'the exception line of the traceback');
    }
  });

  it('builds the dispatcher exceptions by themselves', () => {
    assert.equal(noSuchMethod('x').message, 'Endpoint does not support RPC method x');
    assert.equal(unsupportedVersion('2.0', 'm').message, 'Endpoint does not support RPC version 2.0. Attempted method: m');
    assert.equal(unsupportedVersion(null, null).message, 'Endpoint does not support RPC version None');
  });

  it('selects by namespace and version, first compatible endpoint wins', () => {
    const compute6 = selectEndpoint(endpoints, { method: 'get_console_output', namespace: undefined, version: '6.0', args: { tail_length: 1 } });
    assert.equal(compute6.handler, compute.methods['get_console_output']);
    assert.deepEqual(compute6.args, { tail_length: 1 });
    assert.equal(compute6.namespace, null);
    const compute5 = selectEndpoint(endpoints, { method: 'get_console_output', namespace: null, version: '5.11', args: {} });
    assert.equal(compute5.handler, proxy5.methods['get_console_output']);
    const ping = selectEndpoint(endpoints, { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 'x' } });
    assert.equal(ping.handler, handler);
    assert.equal(ping.namespace, 'baseapi');
    // A missing version means 1.0; missing args mean {}.
    const defaulted = selectEndpoint(endpoints, { method: 'ping', namespace: 'baseapi', version: undefined, args: undefined });
    assert.equal(defaulted.version, '1.0');
    assert.deepEqual(defaulted.args, {});
  });

  it('answers bad requests with the exception Python raises', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ method: undefined, version: '6.0' }, 'TypeError', "attribute name must be string, not 'NoneType'"],
      [{ method: 5, version: '6.0' }, 'TypeError', "attribute name must be string, not 'int'"],
      [{ method: 'get_console_output', version: '6.0', args: [] }, 'AttributeError', "'list' object has no attribute 'items'"],
      [{ method: 'get_console_output', version: '6.0', args: null }, 'AttributeError', "'NoneType' object has no attribute 'items'"],
      [{ method: 'get_console_output', version: '6.0', args: 'x' }, 'AttributeError', "'str' object has no attribute 'items'"],
      [{ method: 'ping', namespace: 'other', version: '1.0' }, 'UnsupportedVersion', 'Endpoint does not support RPC version 1.0. Attempted method: ping'],
      [{ method: 'ping', namespace: 'baseapi', version: '1.2' }, 'UnsupportedVersion', 'Endpoint does not support RPC version 1.2. Attempted method: ping'],
      [{ method: 'constructor', version: '6.0' }, 'NoSuchMethod', 'Endpoint does not support RPC method constructor'],
      [{ method: 'toString', version: '6.0' }, 'NoSuchMethod', 'Endpoint does not support RPC method toString'],
      [{ method: '__proto__', version: '6.0' }, 'NoSuchMethod', 'Endpoint does not support RPC method __proto__'],
    ];
    for (const [request, cls, message] of cases) {
      const failure = failureOf(() =>
        selectEndpoint(endpoints, { method: request['method'], namespace: request['namespace'], version: request['version'], args: request['args'] }),
      );
      assert.equal(failure.className, cls, JSON.stringify(request));
      assert.equal(failure.message, message);
    }
  });

  it('refuses endpoints whose version is not major.minor', () => {
    assert.throws(() => validateEndpoints([{ namespace: null, version: '6', methods: {} }]), RangeError);
    assert.doesNotThrow(() => validateEndpoints(endpoints));
  });
});
