// RpcServer + RpcClient against the real broker: CALL, CAST, fanout, failures, timeouts, call-monitor heartbeats,
// duplicates, vanished reply queues, the legacy reply form, concurrency and shutdown.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import { adminContext } from '../../../src/messaging/context';
import { decodeBody, encodeEnvelope, messageProperties } from '../../../src/messaging/envelope';
import { MessagingTimeout } from '../../../src/messaging/errors';
import { RemoteFailure } from '../../../src/messaging/failure';
import { RpcClient } from '../../../src/messaging/rpc-client';
import { RpcServer } from '../../../src/messaging/rpc-server';
import type { MessagingSession } from '../../../src/messaging/amqp-session';
import type { IncomingCall, RpcEndpoint } from '../../../src/messaging/types';
import {
  cleanup,
  brokerView,
  collectingLogger,
  listQueues,
  newSession,
  rawConnection,
  sleep,
  uniqueName,
  waitFor,
  type LogLine,
} from './helpers';

const hex = (): string => randomUUID().replace(/-/g, '');

describe('messaging RPC over RabbitMQ', function () {
  this.timeout(60_000);

  const exchange = uniqueName('berth_test_x');
  const topic = uniqueName('berth_test_compute');
  const host = uniqueName('host');
  const received: IncomingCall[] = [];
  let serverLines: LogLine[];
  let clientLines: LogLine[];
  let serverSession: MessagingSession;
  let clientSession: MessagingSession;
  let server: RpcServer;
  let client: RpcClient;
  let raw: amqp.ChannelModel;
  const createdQueues: string[] = [];

  const compute: RpcEndpoint = {
    namespace: null,
    version: '6.1',
    methods: {
      echo: async (call) => ({ args: call.args, version: call.version, request_id: call.context.request_id, is_call: call.isCall }),
      record: async (call) => {
        received.push(call);
        return null;
      },
      fail: async () => {
        throw new RemoteFailure('InstanceNotFound', 'nova.exception', 'Instance abc could not be found.', {
          kwargs: { instance_id: 'abc', code: 404 },
        });
      },
      boom: async () => {
        throw new Error('kaput');
      },
      slow: async (call) => {
        await sleep(Number(call.args['ms']));
        return 'done';
      },
      notJson: async () => ({ big: 10n }),
      falsy: async () => 0,
    },
  };
  const baseapi: RpcEndpoint = {
    namespace: 'baseapi',
    version: '1.1',
    methods: { ping: async (call) => ({ service: 'compute', arg: call.args['arg'] }) },
  };
  const target = { topic, server: host, version: '6.0', exchange };

  before(async () => {
    const s = collectingLogger();
    const c = collectingLogger();
    serverLines = s.lines;
    clientLines = c.lines;
    serverSession = newSession(s.logger);
    clientSession = newSession(c.logger);
    await Promise.all([serverSession.start(), clientSession.start()]);
    server = new RpcServer({
      session: serverSession,
      topic,
      server: host,
      endpoints: [compute, baseapi],
      logger: s.logger,
      exchange,
      missingReplyQueueRetryTimeoutSec: 1,
    });
    await server.start();
    client = new RpcClient({ session: clientSession, logger: c.logger, exchange, timeoutMs: 10_000 });
    raw = await rawConnection();
    createdQueues.push(topic, `${topic}.${host}`, client.replyQueueName);
  });

  after(async () => {
    await server?.close();
    await client?.close();
    await serverSession?.close();
    await clientSession?.close();
    await raw?.close().catch(() => undefined);
    await cleanup(createdQueues, [exchange, `${topic}_fanout`]);
  });

  it('sends the oslo client properties and connection name and negotiates the 60 s heartbeat', async () => {
    const view = await waitFor('our connection', () => brokerView(serverSession.connectionName).then((v) => v ?? undefined));
    assert.match(serverSession.connectionName, /^berth-test:\d+:[0-9a-f-]{36}$/);
    assert.equal(view.heartbeatSec, 60);
    assert.deepEqual(view.properties.get('capabilities'), [
      ['authentication_failure_close', 'bool', true],
      ['connection.blocked', 'bool', true],
      ['consumer_cancel_notify', 'bool', true],
    ]);
  });

  it('answers a CALL with the handler result and passes the context through', async () => {
    const context = adminContext();
    const result = await client.call(context, target, 'echo', { a: 1, nested: { b: [1, 2] } });
    assert.deepEqual(result, { args: { a: 1, nested: { b: [1, 2] } }, version: '6.0', request_id: context.request_id, is_call: true });
  });

  it('returns falsy results as they are', async () => {
    assert.equal(await client.call(adminContext(), target, 'falsy', {}), 0);
  });

  it('dispatches by namespace (baseapi ping)', async () => {
    const result = await client.call(adminContext(), { topic, server: host, version: '1.0', namespace: 'baseapi', exchange }, 'ping', {
      arg: '1.21 GigaWatts',
    });
    assert.deepEqual(result, { service: 'compute', arg: '1.21 GigaWatts' });
  });

  it('delivers a CAST and a fanout CAST', async () => {
    received.length = 0;
    const ctx = adminContext();
    await client.cast(ctx, target, 'record', { n: 1 });
    await client.cast(ctx, { topic, version: '6.0', fanout: true }, 'record', { n: 2 });
    await client.cast(ctx, { topic, version: '6.0', exchange }, 'record', { n: 3 }); // the shared topic queue
    await waitFor('three casts', () => (received.length >= 3 ? true : undefined));
    assert.deepEqual(received.map((c) => c.args['n']).sort(), [1, 2, 3]);
    assert.ok(received.every((c) => !c.isCall && c.context.request_id === ctx.request_id));
  });

  it('replies with the failure a handler throws (RemoteFailure as is, other errors wrapped)', async () => {
    await assert.rejects(client.call(adminContext(), target, 'fail', {}), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.equal(err.className, 'InstanceNotFound');
      assert.equal(err.module, 'nova.exception');
      assert.deepEqual(err.kwargs, { instance_id: 'abc', code: 404 });
      return true;
    });
    await assert.rejects(client.call(adminContext(), target, 'boom', {}), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.equal(err.className, 'Error');
      assert.equal(err.message, 'kaput');
      return true;
    });
    await assert.rejects(client.call(adminContext(), target, 'notJson', {}), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.equal(err.className, 'TypeError');
      return true;
    });
  });

  it('answers unknown methods and versions like oslo (NoSuchMethod, UnsupportedVersion)', async () => {
    await assert.rejects(client.call(adminContext(), target, 'no_such_method', {}), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.equal(err.className, 'NoSuchMethod');
      assert.equal(err.module, 'oslo_messaging.rpc.dispatcher');
      assert.equal(err.message, 'Endpoint does not support RPC method no_such_method');
      return true;
    });
    await assert.rejects(client.call(adminContext(), { ...target, version: '99.0' }, 'get_console_output', {}), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.equal(err.className, 'UnsupportedVersion');
      assert.equal(err.message, 'Endpoint does not support RPC version 99.0. Attempted method: get_console_output');
      return true;
    });
  });

  it('times out with MessagingTimeout when nobody answers, and drops the late reply', async () => {
    await assert.rejects(client.call(adminContext(), { topic: uniqueName('nobody'), version: '1.0', exchange }, 'x', {}, { timeoutMs: 300 }), MessagingTimeout);
    await assert.rejects(client.call(adminContext(), target, 'slow', { ms: 800 }, { timeoutMs: 200 }), (err: unknown) => {
      assert.ok(err instanceof MessagingTimeout);
      return true;
    });
    await waitFor('the late reply to be dropped', () =>
      clientLines.some((l) => l.msg === 'No calling threads waiting for msg_id') ? true : undefined,
    );
    assert.equal(client.pendingCalls, 0);
  });

  it('keeps a call-monitored CALL alive with heartbeats while the handler runs', async () => {
    // Without heartbeats the 2 s call monitor would expire before the 3 s handler ends.
    const result = await client.call(adminContext(), target, 'slow', { ms: 3000 }, { callMonitorTimeoutSec: 2 });
    assert.equal(result, 'done');
    assert.ok(serverLines.some((l) => l.msg === 'sent call-monitor heartbeat'));
  });

  it('sends heartbeats with ending false every _timeout/2 seconds, then the final reply', async () => {
    const ch = await raw.createChannel();
    const replyQ = `reply_${hex()}`;
    createdQueues.push(replyQ);
    await ch.assertQueue(replyQ, { durable: false, autoDelete: false, arguments: { 'x-expires': 60000 } });
    const replies: Record<string, unknown>[] = [];
    await ch.consume(replyQ, (m) => m && replies.push(decodeBody(m.content)), { noAck: true });
    const msgId = hex();
    ch.publish(
      exchange,
      `${topic}.${host}`,
      encodeEnvelope({ method: 'slow', args: { ms: 2500 }, version: '6.0', _msg_id: msgId, _reply_q: replyQ, _timeout: 2, _unique_id: hex() }),
      messageProperties(60000),
    );
    await waitFor('the final reply', () => (replies.some((r) => r['ending'] === true) ? true : undefined));
    const beats = replies.filter((r) => r['ending'] === false);
    assert.ok(beats.length >= 1, 'at least one heartbeat');
    for (const beat of beats) {
      assert.deepEqual(Object.keys(beat).sort(), ['_msg_id', '_unique_id', 'ending', 'failure', 'result']);
      assert.equal(beat['result'], null);
      assert.equal(beat['failure'], null);
      assert.equal(beat['_msg_id'], msgId);
    }
    assert.equal(replies.at(-1)?.['result'], 'done');
    await ch.close();
  });

  it('fails a call-monitored CALL whose server stops sending heartbeats', async () => {
    const silentTopic = uniqueName('silent');
    createdQueues.push(silentTopic);
    const ch = await raw.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await ch.assertQueue(silentTopic, { durable: false, autoDelete: false });
    await ch.bindQueue(silentTopic, exchange, silentTopic);
    await ch.consume(silentTopic, () => undefined, { noAck: true }); // swallows the request
    await assert.rejects(
      client.call(adminContext(), { topic: silentTopic, version: '1.0', exchange }, 'x', {}, { timeoutMs: 30_000, callMonitorTimeoutSec: 1 }),
      MessagingTimeout,
    );
    await ch.close();
  });

  it('drops a duplicate (same _unique_id) and logs it', async () => {
    const ch = await raw.createChannel();
    const replyQ = `reply_${hex()}`;
    createdQueues.push(replyQ);
    await ch.assertQueue(replyQ, { durable: false, autoDelete: false });
    const replies: Record<string, unknown>[] = [];
    await ch.consume(replyQ, (m) => m && replies.push(decodeBody(m.content)), { noAck: true });
    const uniqueId = hex();
    for (const msgId of [hex(), hex()]) {
      ch.publish(
        exchange,
        `${topic}.${host}`,
        encodeEnvelope({ method: 'echo', args: {}, version: '6.0', _msg_id: msgId, _reply_q: replyQ, _timeout: null, _unique_id: uniqueId }),
        messageProperties(),
      );
    }
    await waitFor('the duplicate log line', () =>
      serverLines.some((l) => l.msg === 'ignoring duplicate message' && l['unique_id'] === uniqueId) ? true : undefined,
    );
    await waitFor('one reply', () => (replies.length >= 1 ? true : undefined));
    // A good call afterwards is answered, so the one reply above is all the duplicate pair produced.
    await client.call(adminContext(), target, 'echo', {});
    assert.equal(replies.length, 1);
    await ch.close();
  });

  it('gives up on a reply queue that does not exist, without harm, and remembers it', async () => {
    const ch = await raw.createChannel();
    const replyQ = `reply_${hex()}`;
    const msgId = hex();
    const request = (id: string): Buffer =>
      encodeEnvelope({ method: 'echo', args: {}, version: '6.0', _msg_id: id, _reply_q: replyQ, _timeout: null, _unique_id: hex() });
    ch.publish(exchange, `${topic}.${host}`, request(msgId), messageProperties());
    await waitFor('the abandoned reply', () =>
      serverLines.some((l) => l.level === 'error' && l.msg.startsWith(`The reply ${msgId} failed to send after 1 seconds due to a missing queue`))
        ? true
        : undefined,
    );
    ch.publish(exchange, `${topic}.${host}`, request(hex()), messageProperties());
    await waitFor('the immediate drop', () => (serverLines.some((l) => l.msg === `${replyQ} doesn't exist, drop reply to ${l['message_id']}`) ? true : undefined));
    assert.deepEqual(await client.call(adminContext(), target, 'falsy', {}), 0);
    await ch.close();
  });

  it('retries a reply until its reply queue appears', async () => {
    const ch = await raw.createChannel();
    const replyQ = `reply_${hex()}`;
    createdQueues.push(replyQ);
    const msgId = hex();
    ch.publish(
      exchange,
      `${topic}.${host}`,
      encodeEnvelope({ method: 'echo', args: { late: true }, version: '6.0', _msg_id: msgId, _reply_q: replyQ, _timeout: null, _unique_id: hex() }),
      messageProperties(),
    );
    await waitFor('a retry', () => (serverLines.some((l) => l.msg.startsWith(`The reply ${msgId} could not be sent`)) ? true : undefined));
    await ch.assertQueue(replyQ, { durable: false, autoDelete: false });
    const got = await waitFor('the reply', async () => {
      const m = await ch.get(replyQ, { noAck: true });
      return m ? decodeBody(m.content) : undefined;
    });
    assert.equal(got['_msg_id'], msgId);
    assert.equal(got['ending'], true);
    await ch.close();
  });

  it('accepts the legacy two-message reply and ignores heartbeats and unknown msg ids', async () => {
    const legacyTopic = uniqueName('legacy');
    createdQueues.push(legacyTopic);
    const ch = await raw.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await ch.assertQueue(legacyTopic, { durable: false, autoDelete: false });
    await ch.bindQueue(legacyTopic, exchange, legacyTopic);
    await ch.consume(
      legacyTopic,
      (m) => {
        if (!m) return;
        const req = decodeBody(m.content);
        const send = (body: Record<string, unknown>): void => {
          ch.publish('', String(req['_reply_q']), encodeEnvelope({ ...body, _unique_id: hex() }), messageProperties());
        };
        send({ result: null, failure: null, ending: false, _msg_id: hex() }); // someone else's
        send({ result: null, failure: null, ending: false, _msg_id: req['_msg_id'] }); // heartbeat
        send({ result: { legacy: true }, failure: null, ending: false, _msg_id: req['_msg_id'] });
        send({ result: null, failure: null, ending: true, _msg_id: req['_msg_id'] });
      },
      { noAck: true },
    );
    const result = await client.call(adminContext(), { topic: legacyTopic, version: '1.0', exchange }, 'x', {});
    assert.deepEqual(result, { legacy: true });
    await ch.close();
  });

  it('runs handlers concurrently and tracks each one in flight', async () => {
    const calls = [1, 2, 3].map(() => client.call(adminContext(), target, 'slow', { ms: 1500 }));
    await waitFor('three handlers in flight', () => (server.inFlightMessages.filter((m) => m.method === 'slow').length === 3 ? true : undefined));
    assert.deepEqual(await Promise.all(calls), ['done', 'done', 'done']);
    // A message stays in flight until its reply is confirmed by the broker, which may come after the caller has it.
    await waitFor('nothing in flight', () => (server.inFlightMessages.length === 0 ? true : undefined));
  });

  it('stops consuming, drains with a report, and deletes its fanout queue on close', async () => {
    const s = collectingLogger();
    const session = newSession(s.logger);
    await session.start();
    const drainTopic = uniqueName('drain');
    createdQueues.push(drainTopic, `${drainTopic}.${host}`);
    const drainServer = new RpcServer({ session, topic: drainTopic, server: host, endpoints: [compute], logger: s.logger, exchange });
    await drainServer.start();
    const fanoutQ = drainServer.fanoutQueueName;
    assert.ok((await listQueues()).some((q) => q.name === fanoutQ));
    const slowCall = client.call(adminContext(), { topic: drainTopic, server: host, version: '6.0', exchange }, 'slow', { ms: 1500 });
    await waitFor('the slow call in flight', () => (drainServer.inFlightMessages.length === 1 ? true : undefined));
    await drainServer.stopConsuming();
    const short = await drainServer.drain(10);
    assert.equal(short.drained, false);
    assert.equal(short.unfinished[0]?.method, 'slow');
    const full = await drainServer.drain(10_000);
    assert.equal(full.drained, true);
    assert.equal(await slowCall, 'done');
    // No consumer any more: a new CALL is not taken.
    await assert.rejects(
      client.call(adminContext(), { topic: drainTopic, server: host, version: '6.0', exchange }, 'echo', {}, { timeoutMs: 300 }),
      MessagingTimeout,
    );
    await drainServer.close();
    assert.ok(!(await listQueues()).some((q) => q.name === fanoutQ));
    await session.close();
  });
});
