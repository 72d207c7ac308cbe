// The session rides out a killed connection (`rabbitmqctl close_connection`, found by connection name) and deleted
// queues: it reconnects, re-declares, resumes consuming, and callers only see their calls work again.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { MessagingSession } from '../../../src/messaging/amqp-session';
import { adminContext } from '../../../src/messaging/context';
import { RpcClient } from '../../../src/messaging/rpc-client';
import { RpcServer } from '../../../src/messaging/rpc-server';
import type { IncomingCall, RpcEndpoint } from '../../../src/messaging/types';
import {
  cleanup,
  closeConnectionByName,
  collectingLogger,
  listConsumers,
  newSession,
  rawConnection,
  sleep,
  uniqueName,
  waitFor,
  type LogLine,
} from './helpers';

describe('messaging reconnection', function () {
  this.timeout(120_000);

  const exchange = uniqueName('berth_test_x');
  const topic = uniqueName('berth_reconnect');
  const host = uniqueName('host');
  const target = { topic, server: host, version: '6.0', exchange };
  const casts: IncomingCall[] = [];
  let serverSession: MessagingSession;
  let clientSession: MessagingSession;
  let server: RpcServer;
  let client: RpcClient;
  let serverLines: LogLine[];

  const endpoint: RpcEndpoint = {
    namespace: null,
    version: '6.0',
    methods: {
      echo: async (call) => call.args,
      slow: async (call) => {
        await sleep(Number(call.args['ms']));
        return 'slow done';
      },
      record: async (call) => {
        casts.push(call);
        return null;
      },
    },
  };

  before(async () => {
    const s = collectingLogger();
    serverLines = s.lines;
    const c = collectingLogger();
    serverSession = newSession(s.logger);
    clientSession = newSession(c.logger);
    await Promise.all([serverSession.start(), clientSession.start()]);
    server = new RpcServer({ session: serverSession, topic, server: host, endpoints: [endpoint], logger: s.logger, exchange });
    await server.start();
    client = new RpcClient({ session: clientSession, logger: c.logger, exchange, timeoutMs: 20_000 });
    assert.deepEqual(await client.call(adminContext(), target, 'echo', { n: 0 }), { n: 0 });
  });

  after(async () => {
    await server?.close();
    await client?.close();
    await serverSession?.close();
    await clientSession?.close();
    await cleanup([topic, `${topic}.${host}`, client?.replyQueueName ?? ''], [exchange]);
  });

  async function consumersOf(queue: string): Promise<number> {
    return (await listConsumers()).filter((c) => c.queue_name === queue).length;
  }

  it('the server resumes consuming after its connection is closed by the broker', async () => {
    const disconnected = once(serverSession, 'disconnected');
    const reconnected = once(serverSession, 'connected');
    assert.equal(await closeConnectionByName(serverSession.connectionName), 1);
    await disconnected;
    await reconnected;
    await waitFor('consumers back on all three queues', async () =>
      (await consumersOf(topic)) === 1 && (await consumersOf(`${topic}.${host}`)) === 1 && (await consumersOf(server.fanoutQueueName)) === 1
        ? true
        : undefined,
    );
    assert.deepEqual(await client.call(adminContext(), target, 'echo', { n: 1 }), { n: 1 });
    assert.equal(server.state, 'running');
  });

  it("the client's calls work again after its connection is closed (reply queue re-declared)", async () => {
    const reconnected = once(clientSession, 'connected');
    assert.equal(await closeConnectionByName(clientSession.connectionName), 1);
    await reconnected;
    await waitFor('the reply consumer back', async () => ((await consumersOf(client.replyQueueName)) === 1 ? true : undefined));
    assert.deepEqual(await client.call(adminContext(), target, 'echo', { n: 2 }), { n: 2 });
  });

  it('a CALL whose handler runs across a server reconnect still gets its reply', async () => {
    const call = client.call(adminContext(), target, 'slow', { ms: 1500 });
    await waitFor('the handler in flight', () => (server.inFlightMessages.length === 1 ? true : undefined));
    const reconnected = once(serverSession, 'connected');
    await closeConnectionByName(serverSession.connectionName);
    await reconnected;
    assert.equal(await call, 'slow done');
  });

  it('a CAST made while the client is disconnected is published once it is back', async () => {
    casts.length = 0;
    const disconnected = once(clientSession, 'disconnected');
    await closeConnectionByName(clientSession.connectionName);
    await disconnected;
    await client.cast(adminContext(), target, 'record', { n: 3 });
    await waitFor('the cast', () => (casts.length === 1 ? true : undefined));
    assert.equal(casts[0]?.args['n'], 3);
  });

  it('re-declares a queue deleted under a running server (consumer cancel notification)', async () => {
    const conn = await rawConnection();
    const ch = await conn.createChannel();
    await ch.deleteQueue(`${topic}.${host}`);
    await conn.close();
    await waitFor('the consumer cancel to be logged', () =>
      serverLines.some((l) => l.msg === 'consumer cancelled by the broker; re-declaring') ? true : undefined,
    );
    await waitFor('the queue consumed again', async () => ((await consumersOf(`${topic}.${host}`)) === 1 ? true : undefined));
    assert.deepEqual(await client.call(adminContext(), target, 'echo', { n: 4 }), { n: 4 });
  });

  it('re-declares a reply queue deleted under a running client', async () => {
    const conn = await rawConnection();
    const ch = await conn.createChannel();
    await ch.deleteQueue(client.replyQueueName);
    await conn.close();
    await waitFor('the reply queue consumed again', async () => ((await consumersOf(client.replyQueueName)) === 1 ? true : undefined));
    assert.deepEqual(await client.call(adminContext(), target, 'echo', { n: 5 }), { n: 5 });
  });
});
