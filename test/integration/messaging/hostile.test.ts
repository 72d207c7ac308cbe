// More than a thousand hostile messages at a running RpcServer: garbage bytes, bad JSON, wrong envelopes, missing
// or mistyped fields, unknown methods and versions, huge bodies, duplicates, handlers throwing odd values. Every CALL
// whose reply address can be recovered gets exactly one reply (a failure where Python would fail), every CAST is
// dropped with a log line, duplicates are dropped as oslo drops them, and the server still answers a good call.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import type { MessagingSession } from '../../../src/messaging/amqp-session';
import { adminContext } from '../../../src/messaging/context';
import { decodeBody, messageProperties } from '../../../src/messaging/envelope';
import { RemoteFailure } from '../../../src/messaging/failure';
import { RpcClient } from '../../../src/messaging/rpc-client';
import { DEFAULT_MAX_MESSAGE_BYTES, RpcServer } from '../../../src/messaging/rpc-server';
import type { RpcEndpoint } from '../../../src/messaging/types';
import { cleanup, collectingLogger, newSession, rawConnection, uniqueName, waitFor, type LogLine } from './helpers';

const hex = (): string => randomUUID().replace(/-/g, '');

interface Expectation {
  /** The failure class the reply must carry, or null for a successful result. */
  failure: string | null;
}

describe('messaging RpcServer under hostile input', function () {
  this.timeout(300_000);

  const exchange = uniqueName('berth_test_x');
  const topic = uniqueName('berth_hostile');
  const host = uniqueName('host');
  const replyQ = `reply_${hex()}`;
  let session: MessagingSession;
  let server: RpcServer;
  let lines: LogLine[];
  let raw: amqp.ChannelModel;
  let ch: amqp.Channel;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  const endpoint: RpcEndpoint = {
    namespace: null,
    version: '6.1',
    methods: {
      echo: async (call) => ({ args: call.args, request_id: call.context.request_id }),
      throwString: async () => {
        throw 'a string'; // eslint-disable-line no-throw-literal
      },
      throwNull: async () => {
        throw null; // eslint-disable-line no-throw-literal
      },
      throwObject: async () => {
        throw { weird: true }; // eslint-disable-line no-throw-literal
      },
      syncThrow: (() => {
        throw new TypeError('sync');
      }) as unknown as RpcEndpoint['methods'][string],
      badResult: async () => ({ n: 1n }),
    },
  };

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    const log = collectingLogger();
    lines = log.lines;
    session = newSession(log.logger);
    await session.start();
    server = new RpcServer({ session, topic, server: host, endpoints: [endpoint], logger: log.logger, exchange });
    await server.start();
    raw = await rawConnection();
    ch = await raw.createChannel();
    await ch.assertQueue(replyQ, { durable: false, autoDelete: false, arguments: { 'x-expires': 600_000 } });
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server?.close();
    await session?.close();
    await raw?.close().catch(() => undefined);
    await cleanup([topic, `${topic}.${host}`, replyQ], [exchange]);
  });

  it('answers every recoverable CALL once, drops every CAST with a log line, and keeps serving', async () => {
    const expected = new Map<string, Expectation>(); // _msg_id → what the reply must be
    const replies = new Map<string, Record<string, unknown>[]>();
    await ch.consume(
      replyQ,
      (m) => {
        if (!m) return;
        const body = decodeBody(m.content);
        const id = String(body['_msg_id']);
        replies.set(id, [...(replies.get(id) ?? []), body]);
      },
      { noAck: true },
    );
    const routingKey = `${topic}.${host}`;
    const send = (body: Buffer | string): void => {
      ch.publish(exchange, routingKey, Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), messageProperties());
    };
    const envelope = (inner: unknown): string => JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify(inner) });
    let casts = 0; // messages without a reply address: each must leave a warning
    let duplicates = 0;
    const call = (inner: Record<string, unknown>, failure: string | null): void => {
      const msgId = hex();
      expected.set(msgId, { failure });
      send(envelope({ _unique_id: hex(), ...inner, _msg_id: msgId, _reply_q: replyQ, _timeout: inner['_timeout'] ?? null }));
    };
    const cast = (inner: Record<string, unknown>): void => {
      casts++;
      send(envelope({ _unique_id: hex(), ...inner }));
    };

    // JSON text nested deeper than JSON.stringify can recurse (JSON.parse copes).
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const callDeep = (fields: string, failure: string | null): void => {
      const msgId = hex();
      expected.set(msgId, { failure });
      const inner = `{"method": "echo", "version": "6.0", ${fields}, "_msg_id": "${msgId}", "_reply_q": "${replyQ}"}`;
      send(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': inner }));
    };
    for (let round = 0; round < 40; round++) {
      // Garbage and bad JSON without an address: dropped.
      send(randomBytes(1 + (round % 200)));
      casts++;
      send('{"method": "echo", "args": {');
      casts++;
      send('[1, 2, 3]');
      casts++;
      send(envelope([1, 2]));
      casts++;
      // Bad JSON and wrong envelopes that still show their reply address: answered.
      let id = hex();
      expected.set(id, { failure: 'JSONDecodeError' });
      send(`{"method": "echo", "_msg_id": "${id}", "_reply_q": "${replyQ}", "args": {`);
      id = hex();
      expected.set(id, { failure: 'JSONDecodeError' });
      send(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': `{"method": "echo", "_msg_id": "${id}", "_reply_q": "${replyQ}", ` }));
      id = hex();
      expected.set(id, { failure: 'UnsupportedRpcEnvelopeVersion' });
      send(JSON.stringify({ 'oslo.version': '3.0', 'oslo.message': JSON.stringify({ method: 'echo', _msg_id: id, _reply_q: replyQ }) }));
      id = hex();
      expected.set(id, { failure: 'TypeError' });
      send(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': { method: 'echo', _msg_id: id, _reply_q: replyQ } }));
      // Missing or mistyped fields.
      call({ args: {}, version: '6.0' }, 'TypeError'); // no method
      call({ method: 42, args: {}, version: '6.0' }, 'TypeError');
      call({ method: 'echo', args: [], version: '6.0' }, 'AttributeError');
      call({ method: 'echo', args: 'x', version: '6.0' }, 'AttributeError');
      call({ method: 'echo', args: null, version: '6.0' }, 'AttributeError');
      call({ method: 'echo', version: '6.0' }, null); // args default to {}
      call({ method: 'no_such_method', args: {}, version: '6.0' }, 'NoSuchMethod');
      call({ method: 'echo', args: {}, version: '99.0' }, 'UnsupportedVersion');
      call({ method: 'echo', args: {}, version: '6.2' }, 'UnsupportedVersion');
      call({ method: 'echo', args: {}, version: null }, 'UnsupportedVersion');
      call({ method: 'echo', args: {}, version: 'abc' }, 'ValueError');
      call({ method: 'echo', args: {}, version: '6' }, 'IndexError');
      call({ method: 'echo', args: {}, version: 6 }, 'AttributeError');
      call({ method: 'echo', args: {}, version: '6.0', namespace: 'nope' }, 'UnsupportedVersion');
      call({ method: 'echo', args: {}, version: '6.0', namespace: ['x'] }, 'UnsupportedVersion');
      call({ method: 'constructor', args: {}, version: '6.0' }, 'NoSuchMethod');
      call({ method: '__proto__', args: {}, version: '6.0' }, 'NoSuchMethod');
      // Handlers that fail oddly.
      call({ method: 'throwString', args: {}, version: '6.0' }, 'Error');
      call({ method: 'throwNull', args: {}, version: '6.0' }, 'Error');
      call({ method: 'throwObject', args: {}, version: '6.0' }, 'Error');
      call({ method: 'syncThrow', args: {}, version: '6.0' }, 'TypeError');
      call({ method: 'badResult', args: {}, version: '6.0' }, 'TypeError');
      // Odd context and call-monitor values: handled normally.
      call({ method: 'echo', args: { a: [1, { b: 2 }] }, version: '6.0', _context_request_id: 7, _context_roles: 'x' }, null);
      call({ method: 'echo', args: {}, version: '6.0', _timeout: 'abc' }, null);
      call({ method: 'echo', args: {}, version: '6.0', _timeout: -5 }, null);
      call({ method: 'echo', args: {}, version: '6.0', _timeout: [1] }, null);
      // Values nested too deeply to print or serialise.
      if (round < 5) {
        callDeep(`"args": {}, "_unique_id": ${deep}`, null);
        callDeep(`"args": {}, "_timeout": ${deep}`, null);
        callDeep(`"args": {}, "namespace": ${deep}`, 'UnsupportedVersion');
        callDeep(`"args": {"deep": ${deep}}`, 'TypeError');
      }
      // CALLs whose reply address is unusable, and CASTs: nothing to answer.
      cast({ method: 'echo', args: {}, version: '6.0', _msg_id: 12, _reply_q: replyQ });
      cast({ method: 'echo', args: {}, version: '6.0', _msg_id: hex(), _reply_q: 'q'.repeat(300) });
      cast({ method: 'no_such_method', args: {}, version: '6.0' });
      cast({ method: 'echo', args: {}, version: '99.0' });
      cast({ args: {}, version: '6.0' });
      cast({ method: 'throwObject', args: {}, version: '6.0' });
      // Duplicates: the second copy of a _unique_id is dropped (no reply, a log line).
      const uniqueId = hex();
      const first = hex();
      expected.set(first, { failure: null });
      send(envelope({ method: 'echo', args: {}, version: '6.0', _msg_id: first, _reply_q: replyQ, _timeout: null, _unique_id: uniqueId }));
      send(envelope({ method: 'echo', args: {}, version: '6.0', _msg_id: hex(), _reply_q: replyQ, _timeout: null, _unique_id: uniqueId }));
      duplicates++;
    }
    // Huge bodies, refused before parsing: answered when the address is visible, dropped otherwise.
    const filler = 'x'.repeat(DEFAULT_MAX_MESSAGE_BYTES + 1024);
    for (let i = 0; i < 2; i++) {
      call({ method: 'echo', args: { filler }, version: '6.0' }, 'MessageTooLarge');
      cast({ method: 'echo', args: { filler }, version: '6.0' });
    }
    const total = expected.size + casts + duplicates;
    assert.ok(total >= 1000, `only ${total} hostile messages`);

    await waitFor(
      `${expected.size} replies`,
      () => ([...expected.keys()].every((id) => replies.has(id)) ? true : undefined),
      240_000,
    );
    for (const [id, expectation] of expected) {
      const got = replies.get(id) ?? [];
      const finals = got.filter((r) => r['ending'] === true);
      assert.equal(finals.length, 1, `one final reply for ${id}`);
      const reply = finals[0] as Record<string, unknown>;
      if (expectation.failure === null) {
        assert.equal(reply['failure'], null, `success for ${id}: ${String(reply['failure'])}`);
      } else {
        const failure = RemoteFailure.deserialize(reply['failure']);
        assert.equal(failure.className, expectation.failure, `${id}: ${failure.message}`);
        assert.equal(reply['result'], null);
      }
    }
    assert.equal(replies.size, expected.size, 'no reply for anything that was not an answerable CALL');

    await waitFor('a log line for every dropped message', () => {
      const dropped = lines.filter(
        (l) =>
          l.level === 'warn' &&
          (l.msg === 'undecodable RPC message without a reply address dropped' ||
            l.msg === 'RPC CAST failed; dropped (a CAST gets no reply)' ||
            l.msg === 'CALL without a usable _msg_id/_reply_q: handled, but no reply can be sent'),
      );
      return dropped.length >= casts ? true : undefined;
    });
    assert.equal(lines.filter((l) => l.msg === 'ignoring duplicate message').length, duplicates);
    for (const line of lines.filter((l) => l.level === 'warn' || l.level === 'error')) {
      assert.ok('request_id' in line && 'message_id' in line, `log line without ids: ${line.msg}`);
    }
    assert.equal(JSON.stringify(lines).includes(filler.slice(0, 1000)), false, 'a body was logged');

    // Still serving.
    assert.equal(server.state, 'running');
    const client = new RpcClient({ session, logger: collectingLogger().logger, exchange });
    const context = adminContext();
    assert.deepEqual(await client.call(context, { topic, server: host, version: '6.0', exchange }, 'echo', { ok: true }), {
      args: { ok: true },
      request_id: context.request_id,
    });
    await client.close();
    await cleanup([client.replyQueueName]);
    assert.deepEqual(unhandled, []);
  });
});
