// Issue 2, bad input: well over a thousand malformed and hostile messages at `compute.<host>` on exchange `nova`,
// sent with amqplib beside the control plane, at a Berth that is registered and mapped. Every CALL gets a failure
// reply carrying the exception a Python compute would raise (class and module), every CAST is logged with its
// message id and dropped, duplicates are dropped as oslo drops them, Berth stays alive and its service up, and a good
// CALL answers afterwards, through our own reply queue and through nova-api.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';

import type * as amqp from 'amqplib';

import { COMPUTE_RPC_VERSION } from '../../src/compute/rpc-endpoint';
import {
  BerthHost,
  NOVA_EXCHANGE,
  NOVA_EXCHANGE_OPTIONS,
  connectBroker,
  listComputeServices,
  median,
  openstackJson,
  printMeasure,
  requireControlPlane,
  waitFor,
  waitForComputeService,
} from './support';

const hex = (): string => randomUUID().replace(/-/g, '');
const MIB = 1024 * 1024;

/** What the reply to one CALL must carry: a failure of this class and module, or (failure null) a result. */
interface Expected {
  readonly kind: string;
  readonly failure: { readonly class: string; readonly module: string } | null;
}

interface Reply {
  readonly result: unknown;
  readonly failure: string | null;
  readonly ending?: boolean;
}

const f = (cls: string, module: string): Expected['failure'] => ({ class: cls, module });
const BUILTINS = 'builtins';
const DISPATCHER = 'oslo_messaging.rpc.dispatcher';
const NOVA = 'nova.exception';
const OVO = 'oslo_versionedobjects.exception';

describe('hostile messages at a running Berth (e2e, issue 2)', function () {
  this.timeout(600_000);
  let host: BerthHost;
  let connection: amqp.ChannelModel | undefined;
  let channel: amqp.ConfirmChannel;
  const replyQueue = `reply_${hex()}`;
  const replies = new Map<string, Reply[]>();
  let onReply: (() => void) | null = null;

  before(async function () {
    await requireControlPlane(this);
    // No instance is booted: the fake driver keeps this about the bus, whether or not Docker is here.
    host = new BerthHost({ suite: 'hostile', config: { docker: { driver: 'fake' } } });
    await host.start();
    connection = await connectBroker();
    channel = await connection.createConfirmChannel();
    await channel.assertExchange(NOVA_EXCHANGE, 'topic', NOVA_EXCHANGE_OPTIONS);
    // As oslo declares a reply queue: not durable, not auto-delete, expiring when unused.
    await channel.assertQueue(replyQueue, { durable: false, autoDelete: false, arguments: { 'x-expires': 600_000 } });
    await channel.consume(
      replyQueue,
      (message) => {
        if (!message) return;
        const outer = JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;
        const inner = JSON.parse(String(outer['oslo.message'])) as Reply & { _msg_id: string };
        replies.set(inner._msg_id, [...(replies.get(inner._msg_id) ?? []), inner]);
        onReply?.();
      },
      { noAck: true },
    );
  });

  after(async function () {
    if (connection) {
      await channel?.deleteQueue(replyQueue).catch(() => undefined);
      await connection.close().catch(() => undefined);
    }
    await host?.cleanup();
  });

  const context = (): Record<string, unknown> => ({
    _context_request_id: `req-${randomUUID()}`,
    _context_is_admin: true,
    _context_roles: ['admin'],
    _context_project_id: hex(),
    _context_user_id: hex(),
    _context_read_deleted: 'no',
  });
  const envelope = (inner: unknown): string => JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify(inner) });
  const instance = (uuid: string, namespace = 'nova'): Record<string, unknown> => ({
    'nova_object.name': 'Instance',
    'nova_object.namespace': namespace,
    'nova_object.version': '2.7',
    'nova_object.data': { uuid, id: 1, host: host.host, node: host.host, vm_state: 'active', task_state: null, power_state: 1 },
    'nova_object.changes': [],
  });

  function publish(body: string | Buffer): void {
    channel.publish(NOVA_EXCHANGE, `compute.${host.host}`, Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
    });
  }

  it('answers every CALL with the right failure, logs every CAST with its id, and keeps serving', async function () {
    const expected = new Map<string, Expected>();
    const castIds = new Set<string>(); // _unique_id of each cast that carries one: each must be logged
    let anonymousDrops = 0; // undecodable messages without any id: each must be logged too
    let duplicates = 0;

    const call = (kind: string, inner: Record<string, unknown>, failure: Expected['failure']): void => {
      const msgId = hex();
      expected.set(msgId, { kind, failure });
      publish(envelope({ ...context(), _unique_id: hex(), ...inner, _msg_id: msgId, _reply_q: replyQueue, _timeout: null }));
    };
    const cast = (inner: Record<string, unknown>): void => {
      const uniqueId = hex();
      castIds.add(uniqueId);
      publish(envelope({ ...context(), ...inner, _unique_id: uniqueId }));
    };
    const drop = (body: string | Buffer): void => {
      anonymousDrops++;
      publish(body);
    };

    const v = COMPUTE_RPC_VERSION;
    const started = Date.now();
    for (let round = 0; round < 30; round++) {
      const uuid = randomUUID();
      // Garbage, non-JSON, JSON that is no envelope: nothing to reply to.
      drop(randomBytes(1 + ((round * 37) % 500)));
      drop('{"method": "get_host_uptime", "args": {');
      drop('[1, 2, 3]');
      drop('"just a string"');
      drop(envelope([1, 2]));
      drop(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': '{"method": ' }));

      // Broken JSON or envelopes that still show their reply address.
      let msgId = hex();
      expected.set(msgId, { kind: 'bad inner JSON', failure: f('JSONDecodeError', 'json.decoder') });
      publish(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': `{"method": "get_host_uptime", "_msg_id": "${msgId}", "_reply_q": "${replyQueue}", "args": {` }));
      msgId = hex();
      expected.set(msgId, { kind: 'envelope 3.0', failure: f('UnsupportedRpcEnvelopeVersion', 'oslo_messaging._drivers.common') });
      publish(JSON.stringify({ 'oslo.version': '3.0', 'oslo.message': JSON.stringify({ method: 'get_host_uptime', _msg_id: msgId, _reply_q: replyQueue }) }));

      // The envelope is fine, the request is not.
      call('no method', { args: {}, version: v }, f('TypeError', BUILTINS));
      call('method not a string', { method: ['get_host_uptime'], args: {}, version: v }, f('TypeError', BUILTINS));
      call('args a list', { method: 'get_host_uptime', args: [], version: v }, f('AttributeError', BUILTINS));
      call('args a string', { method: 'get_host_uptime', args: 'x', version: v }, f('AttributeError', BUILTINS));
      call('unknown method', { method: `no_such_method_${round}`, args: {}, version: v }, f('NoSuchMethod', DISPATCHER));
      call('private method', { method: '__init__', args: {}, version: v }, f('NoSuchMethod', DISPATCHER));
      call('version 7.0', { method: 'get_host_uptime', args: {}, version: '7.0' }, f('UnsupportedVersion', DISPATCHER));
      // Python's compute also hosts a 5.13 proxy for pinned older control planes; Berth serves a Zed cloud only.
      call('version 5.0', { method: 'get_host_uptime', args: {}, version: '5.0' }, f('UnsupportedVersion', DISPATCHER));
      call('version 6.2', { method: 'get_host_uptime', args: {}, version: '6.2' }, f('UnsupportedVersion', DISPATCHER));
      call('version garbage', { method: 'get_host_uptime', args: {}, version: 'six' }, f('ValueError', BUILTINS));
      call('unknown namespace', { method: 'get_host_uptime', args: {}, version: v, namespace: 'nope' }, f('UnsupportedVersion', DISPATCHER));
      call('missing argument', { method: 'get_console_output', args: { instance: instance(uuid) }, version: v }, f('TypeError', BUILTINS));
      call('extra argument', { method: 'get_host_uptime', args: { surprise: 1 }, version: v }, f('TypeError', BUILTINS));
      call('instance a string', { method: 'get_console_output', args: { instance: uuid, tail_length: 5 }, version: v }, f('AttributeError', BUILTINS));
      call('instance a number', { method: 'get_diagnostics', args: { instance: 42 }, version: v }, f('AttributeError', BUILTINS));
      call('instance a plain dict', { method: 'get_diagnostics', args: { instance: { uuid } }, version: v }, f('AttributeError', BUILTINS));
      call('instance of another namespace', { method: 'get_console_output', args: { instance: instance(uuid, 'evil'), tail_length: 5 }, version: v }, f('UnsupportedObjectError', OVO));
      call('instance of another major version', { method: 'get_console_output', args: { instance: { ...instance(uuid), 'nova_object.version': '9.0' }, tail_length: 5 }, version: v }, f('IncompatibleObjectVersion', OVO));
      call('unknown object class', { method: 'get_diagnostics', args: { instance: { ...instance(uuid), 'nova_object.name': 'Hostile' } }, version: v }, f('UnsupportedObjectError', OVO));
      call('unknown instance: console', { method: 'get_console_output', args: { instance: instance(uuid), tail_length: 10 }, version: v }, f('InstanceNotFound', NOVA));
      // Nova's get_diagnostics: the runtime has no such guest (NOSTATE), so it is not running.
      call('unknown instance: diagnostics', { method: 'get_instance_diagnostics', args: { instance: instance(uuid) }, version: v }, f('InstanceInvalidState', NOVA));
      call('unknown instance: vnc console', { method: 'get_vnc_console', args: { instance: instance(uuid), console_type: 'novnc' }, version: v }, f('ConsoleTypeUnavailable', NOVA));
      call('unsupported call', { method: 'reserve_block_device_name', args: { instance: instance(uuid), device: null, volume_id: uuid, disk_bus: null, device_type: null, tag: null, multiattach: false }, version: v }, f('NotImplementedError', BUILTINS));
      if (round < 3) {
        const filler = 'x'.repeat(MIB);
        call('1 MiB extra argument', { method: 'get_host_uptime', args: { filler }, version: v }, f('TypeError', BUILTINS));
        call('1 MiB ping (answered)', { method: 'ping', namespace: 'baseapi', args: { arg: filler }, version: '1.1' }, null);
      }

      // CASTs of every kind: each one dropped with a log line naming its message id.
      cast({ args: {}, version: v });
      cast({ method: 'get_host_uptime', args: [], version: v });
      cast({ method: `no_such_method_${round}`, args: {}, version: v });
      cast({ method: 'get_host_uptime', args: {}, version: '7.0' });
      cast({ method: 'get_host_uptime', args: {}, version: '5.0' });
      cast({ method: 'stop_instance', args: { instance: instance(uuid) }, version: v });
      cast({ method: 'stop_instance', args: { instance: instance(uuid), clean_shutdown: true, extra: 1 }, version: v });
      cast({ method: 'terminate_instance', args: { instance: 'not an instance', bdms: [] }, version: v });
      cast({ method: 'pause_instance', args: { instance: instance(uuid, 'evil') }, version: v });
      cast({ method: 'stop_instance', args: { instance: instance(uuid), clean_shutdown: true }, version: v });
      cast({ method: 'reboot_instance', args: { instance: instance(uuid), block_device_info: null, reboot_type: 'HARD' }, version: v });
      cast({ method: 'attach_volume', args: { instance: instance(uuid), bdm: null }, version: v });

      // A CALL and its duplicate (same _unique_id): oslo answers the first and drops the second.
      const uniqueId = hex();
      const first = hex();
      expected.set(first, { kind: 'first of a duplicate pair (answered)', failure: null });
      publish(envelope({ ...context(), method: 'get_host_uptime', args: {}, version: v, _unique_id: uniqueId, _msg_id: first, _reply_q: replyQueue, _timeout: null }));
      const second = hex();
      publish(envelope({ ...context(), method: 'get_host_uptime', args: {}, version: v, _unique_id: uniqueId, _msg_id: second, _reply_q: replyQueue, _timeout: null }));
      duplicates++;
      await channel.waitForConfirms();
    }
    // Bodies over max_message_size_mb (16 MiB): refused before parsing; answered when the reply address shows.
    const huge = 'x'.repeat(16 * MIB + 1024);
    for (let i = 0; i < 2; i++) {
      call('over 16 MiB', { method: 'get_host_uptime', args: { huge }, version: v }, f('MessageTooLarge', 'berth'));
      drop(envelope({ ...context(), method: 'get_host_uptime', args: { huge }, version: v }));
    }
    await channel.waitForConfirms();
    const sent = expected.size + castIds.size + anonymousDrops + duplicates;
    assert.ok(sent >= 1000, `only ${sent} hostile messages`);

    await waitFor(
      `a reply to each of ${expected.size} CALLs`,
      async () => {
        const missing = [...expected.keys()].filter((id) => !replies.has(id));
        return missing.length === 0 ? { done: true, value: undefined } : { done: false, seen: `${missing.length} missing, e.g. ${expected.get(missing[0] ?? '')?.kind}` };
      },
      { timeoutMs: 240_000, intervalMs: 250 },
    );
    const seconds = (Date.now() - started) / 1000;
    printMeasure('hostile messages sent', sent, 'messages');
    printMeasure('CALL replies per second (send of the first to reply to the last)', expected.size / seconds, 'replies/s');

    for (const [id, want] of expected) {
      const got = replies.get(id) ?? [];
      assert.equal(got.length, 1, `one reply to ${want.kind}`);
      const reply = got[0] as Reply;
      if (want.failure === null) {
        assert.equal(reply.failure, null, `${want.kind}: ${String(reply.failure)}`);
        continue;
      }
      assert.equal(typeof reply.failure, 'string', `${want.kind} failed`);
      const failure = JSON.parse(reply.failure as string) as { class: string; module: string; message: string };
      assert.deepEqual({ class: failure.class, module: failure.module }, want.failure, `${want.kind}: ${failure.message}`);
      assert.equal(reply.result, null);
    }
    assert.equal(replies.size, expected.size, 'no reply to a cast, an undecodable message without address, or a duplicate');

    // Every dropped message left a warning that names it.
    const lines = (): typeof host.berth.logs => host.berth.logs.filter((l) => l.level === 'warn' || l.level === 'error');
    await waitFor(
      'a log line for every cast and every undecodable message',
      async () => {
        const named = new Set(lines().map((l) => String(l['message_id'])));
        const unnamed = lines().filter((l) => l.msg === 'undecodable RPC message without a reply address dropped').length;
        const unlogged = [...castIds].filter((id) => !named.has(id));
        return unlogged.length === 0 && unnamed >= anonymousDrops
          ? { done: true, value: undefined }
          : { done: false, seen: { unlogged_casts: unlogged.length, undecodable_logged: unnamed, undecodable_sent: anonymousDrops } };
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.equal(host.berth.logs.filter((l) => l.msg === 'ignoring duplicate message').length, duplicates);
    assert.ok(!JSON.stringify(host.berth.logs).includes(huge.slice(0, 4096)), 'no message body was logged');

    // Alive, up, and serving.
    assert.equal(host.berth.exit, null, 'Berth is still running');
    assert.deepEqual(host.berth.otherLines, [], 'nothing on stderr, every stdout line JSON');
    assert.equal(host.berth.logs.filter((l) => l.msg === 'unhandled promise rejection').length, 0);
    await waitForComputeService(host.host, 'up');
    await waitFor(
      'a heartbeat after the barrage',
      async () => {
        const [service] = await listComputeServices({ host: host.host, binary: 'nova-compute' });
        const updated = Date.parse(`${service?.['Updated At'] ?? ''}Z`);
        return updated > started ? { done: true, value: undefined } : { done: false, seen: service?.['Updated At'] };
      },
      { timeoutMs: 60_000, intervalMs: 2_000 },
    );
  });

  it('answers a good CALL afterwards: get_host_uptime through our reply queue and through nova-api', async function () {
    const roundTrips: number[] = [];
    for (let i = 0; i < 50; i++) {
      const msgId = hex();
      const startedAt = process.hrtime.bigint();
      const answered = new Promise<void>((resolve) => {
        onReply = () => {
          if (replies.has(msgId)) resolve();
        };
      });
      publish(envelope({ ...context(), method: 'get_host_uptime', args: {}, version: COMPUTE_RPC_VERSION, _unique_id: hex(), _msg_id: msgId, _reply_q: replyQueue, _timeout: null }));
      await answered;
      roundTrips.push(Number(process.hrtime.bigint() - startedAt) / 1e6);
      const [reply] = replies.get(msgId) ?? [];
      assert.equal(reply?.failure, null);
      assert.match(String(reply?.result), / up .* load average: /);
    }
    onReply = null;
    printMeasure('CALL round trip through Berth (get_host_uptime, amqplib client, median of 50)', median(roundTrips), 'ms');

    // os-hypervisors/{id}/uptime: nova-api CALLs get_host_uptime on the host (microversions before 2.88).
    const hypervisor = await openstackJson<Record<string, unknown>>(['--os-compute-api-version', '2.1', 'hypervisor', 'show', host.host]);
    assert.match(String(hypervisor['uptime'] ?? hypervisor['host_time'] ?? ''), /\d/);
    assert.equal(host.berth.exit, null);
  });
});
