// MessagingSession on its own: host failover and backoff, publisher confirms and basic.return, 406 mismatches that
// say what is wrong (at start, on publish, and after a reconnect), close(), and TLS through a local TLS terminator.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { adminContext } from '../../../src/messaging/context';
import { encodeEnvelope, messageProperties } from '../../../src/messaging/envelope';
import { NoRouteError, SessionClosedError, TopologyMismatchError } from '../../../src/messaging/errors';
import { RpcClient } from '../../../src/messaging/rpc-client';
import { RpcServer } from '../../../src/messaging/rpc-server';
import { parseTransportUrl } from '../../../src/messaging/transport-url';
import type { RpcEndpoint } from '../../../src/messaging/types';
import { cleanup, collectingLogger, listConsumers, newSession, rawConnection, uniqueName, waitFor } from './helpers';

const run = promisify(execFile);
const echo: RpcEndpoint = { namespace: null, version: '1.0', methods: { echo: async (call) => call.args } };

/** A TCP port on 127.0.0.1 where nothing listens. */
async function deadPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

describe('messaging session', function () {
  this.timeout(120_000);

  it('fails over to the next host when the first is down', async () => {
    const port = await deadPort();
    const { logger, lines } = collectingLogger();
    const session = newSession(logger, {
      url: parseTransportUrl(`rabbit://guest:guest@127.0.0.1:${port},guest:guest@127.0.0.1:5672/`),
      shuffleHosts: false,
    });
    try {
      await session.start();
      assert.equal(session.connectedHost, '127.0.0.1:5672');
      assert.ok(lines.some((l) => l.level === 'warn' && l.msg.includes(`127.0.0.1:${port} is unreachable; trying the next host`)));
    } finally {
      await session.close();
    }
  });

  it('retries an unreachable broker with oslo backoff (1 s, 3 s, …) until closed', async () => {
    const port = await deadPort();
    const { logger, lines } = collectingLogger();
    const session = newSession(logger, { url: parseTransportUrl(`rabbit://guest:guest@127.0.0.1:${port}/`) });
    const started = session.start();
    const publish = session.publish({ exchange: null, routingKey: 'x', body: Buffer.from('{}'), properties: messageProperties() });
    await waitFor('two failed attempts', () => (lines.filter((l) => l.msg.includes('Trying again in')).length >= 2 ? true : undefined));
    const delays = lines.filter((l) => l.msg.includes('Trying again in')).map((l) => l['retry_in_sec']);
    assert.deepEqual(delays.slice(0, 2), [1, 3]);
    assert.equal(session.state, 'connecting');
    await session.close();
    await assert.rejects(started, SessionClosedError);
    await assert.rejects(publish, SessionClosedError);
    assert.equal(session.state, 'closed');
  });

  it('resolves a publish on the broker ack and turns basic.return of a mandatory publish into NoRouteError', async () => {
    const { logger } = collectingLogger();
    const session = newSession(logger);
    await session.start();
    const queue = uniqueName('berth_confirm');
    try {
      const body = encodeEnvelope({ hello: 'world' });
      await assert.rejects(
        session.publish({ exchange: null, routingKey: queue, body, properties: messageProperties(), mandatory: true }),
        (err: unknown) => err instanceof NoRouteError && err.routingKey === queue && err.replyCode === 312,
      );
      await session.publish({ exchange: null, routingKey: queue, body, properties: messageProperties() }); // dropped silently
      const conn = await rawConnection();
      const ch = await conn.createChannel();
      await ch.assertQueue(queue, { durable: false, autoDelete: false });
      // Many mandatory publishes in flight at once: each is matched to its own confirm.
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          session.publish({ exchange: null, routingKey: queue, body: encodeEnvelope({ i }), properties: messageProperties(), mandatory: true }),
        ),
      );
      assert.equal((await ch.checkQueue(queue)).messageCount, 50);
      const got = await ch.get(queue, { noAck: true });
      assert.ok(got);
      assert.equal(got.properties.contentType, 'application/json');
      assert.equal(got.properties.contentEncoding, 'utf-8');
      assert.equal(got.properties.deliveryMode, 2);
      assert.equal(got.properties.priority, 0);
      assert.deepEqual(got.properties.headers, {});
      await conn.close();
    } finally {
      await session.close();
      await cleanup([queue]);
    }
  });

  it('refuses to start an RPC server whose queue exists with other flags, naming the queue, flag and option', async () => {
    const { logger, lines } = collectingLogger();
    const session = newSession(logger);
    await session.start();
    const exchange = uniqueName('berth_test_x');
    const topic = uniqueName('berth_mismatch');
    const conn = await rawConnection();
    const ch = await conn.createChannel();
    await ch.assertQueue(topic, { durable: true, autoDelete: false });
    try {
      const server = new RpcServer({ session, topic, server: 'h', endpoints: [echo], logger, exchange });
      await assert.rejects(server.start(), (err: unknown) => {
        assert.ok(err instanceof TopologyMismatchError);
        assert.equal(err.entity, 'queue');
        assert.equal(err.entityName, topic);
        assert.equal(err.argument, 'durable');
        assert.match(err.message, new RegExp(`queue '${topic}' already exists with different flags`));
        assert.match(err.message, /inequivalent arg 'durable'/);
        assert.match(err.message, /\[oslo_messaging_rabbit\] amqp_durable_queues/);
        return true;
      });
      assert.ok(lines.some((l) => l.level === 'error' && String(l.msg).includes('amqp_durable_queues')));
      // The session itself is fine.
      await session.publish({ exchange: null, routingKey: 'nowhere', body: Buffer.from('{}'), properties: messageProperties() });
    } finally {
      await session.close();
      await conn.close();
      await cleanup([topic, `${topic}.h`], [exchange]);
    }
  });

  it('rejects a publish to an exchange declared with another type instead of retrying forever', async () => {
    const { logger } = collectingLogger();
    const session = newSession(logger);
    await session.start();
    const exchange = uniqueName('berth_test_x');
    const conn = await rawConnection();
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'fanout', { durable: false, autoDelete: false });
    const client = new RpcClient({ session, logger, exchange });
    try {
      await assert.rejects(client.cast(adminContext(), { topic: 't', version: '1.0' }, 'm', {}), (err: unknown) => {
        assert.ok(err instanceof TopologyMismatchError);
        assert.equal(err.entity, 'exchange');
        assert.equal(err.argument, 'type');
        return true;
      });
    } finally {
      await client.close();
      await session.close();
      await conn.close();
      await cleanup([], [exchange]);
    }
  });

  it('reports a mismatch that appears after start as setup-error, keeps retrying, and recovers when fixed', async () => {
    const { logger, lines } = collectingLogger();
    const session = newSession(logger);
    await session.start();
    const exchange = uniqueName('berth_test_x');
    const topic = uniqueName('berth_mismatch');
    const serverQueue = `${topic}.h`;
    const server = new RpcServer({ session, topic, server: 'h', endpoints: [echo], logger, exchange });
    const conn = await rawConnection();
    try {
      await server.start();
      const setupError = once(session, 'setup-error');
      const ch = await conn.createChannel();
      await ch.deleteQueue(serverQueue);
      await ch.assertQueue(serverQueue, { durable: true, autoDelete: false });
      const [name, error] = (await setupError) as [string, Error];
      assert.match(name, /^rpc-server /);
      assert.ok(error instanceof TopologyMismatchError);
      assert.ok(lines.some((l) => l.level === 'error' && String(l.msg).includes('setup failed') && String(l.msg).includes('amqp_durable_queues')));
      await ch.deleteQueue(serverQueue);
      await waitFor('the server consuming again', async () =>
        (await listConsumers()).some((c) => c.queue_name === serverQueue) ? true : undefined,
      );
    } finally {
      await server.close();
      await session.close();
      await conn.close();
      await cleanup([topic, serverQueue], [exchange]);
    }
  });

  describe('over TLS (a local TLS terminator in front of the broker)', () => {
    let dir: string;
    let proxy: Server;
    let port: number;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'berth-tls-'));
      const subj = ['-subj', '/CN=berth-test-broker'];
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), ...subj, '-addext', 'subjectAltName=DNS:berth-test-broker']);
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', join(dir, 'other-key.pem'), '-out', join(dir, 'other.pem'), '-subj', '/CN=other']);
      proxy = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (tlsSocket) => {
        const upstream = netConnect(5672, '127.0.0.1');
        tlsSocket.pipe(upstream).pipe(tlsSocket);
        upstream.on('error', () => tlsSocket.destroy());
        tlsSocket.on('error', () => upstream.destroy());
      });
      proxy.listen(0, '127.0.0.1');
      await once(proxy, 'listening');
      port = (proxy.address() as AddressInfo).port;
    });

    after(() => {
      proxy?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('connects when the broker certificate is signed by ssl_ca_file', async () => {
      const { logger } = collectingLogger();
      const session = newSession(logger, {
        url: parseTransportUrl(`rabbit://guest:guest@127.0.0.1:${port}/`),
        ssl: { caFile: join(dir, 'cert.pem') },
      });
      try {
        await session.start();
        assert.equal(session.state, 'connected');
        await session.publish({ exchange: null, routingKey: 'nowhere', body: Buffer.from('{}'), properties: messageProperties() });
      } finally {
        await session.close();
      }
    });

    it('refuses a broker certificate it cannot verify', async () => {
      const { logger, lines } = collectingLogger();
      const session = newSession(logger, {
        url: parseTransportUrl(`rabbit://guest:guest@127.0.0.1:${port}/`),
        ssl: { caFile: join(dir, 'other.pem') },
      });
      const started = session.start();
      await waitFor('a refused handshake', () => (lines.some((l) => /self[- ]signed|unable to verify/i.test(String(l['err']))) ? true : undefined));
      assert.notEqual(session.state, 'connected');
      await session.close();
      await assert.rejects(started, SessionClosedError);
    });

    it('checks the host name only when ssl_enforce_hostname_verification is set', async () => {
      const { logger, lines } = collectingLogger();
      const session = newSession(logger, {
        url: parseTransportUrl(`rabbit://guest:guest@127.0.0.1:${port}/`),
        ssl: { caFile: join(dir, 'cert.pem'), enforceHostnameVerification: true },
      });
      const started = session.start();
      await waitFor('a host name mismatch', () => (lines.some((l) => /IP: 127\.0\.0\.1 is not in the cert|altnames/i.test(String(l['err']))) ? true : undefined));
      await session.close();
      await assert.rejects(started, SessionClosedError);
    });
  });
});
