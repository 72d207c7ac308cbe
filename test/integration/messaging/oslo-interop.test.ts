// Berth and Python's oslo.messaging 14 (the real library, as nova-api and nova-conductor use it) talk to each other:
// a Python client calls our RpcServer, our RpcClient calls a Python RPC server, a Python notification listener
// receives our notifications. Skipped when /usr/bin/python3 cannot import oslo_messaging.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { MessagingSession } from '../../../src/messaging/amqp-session';
import { adminContext } from '../../../src/messaging/context';
import { RemoteFailure } from '../../../src/messaging/failure';
import { Notifier } from '../../../src/messaging/notifier';
import { RpcClient } from '../../../src/messaging/rpc-client';
import { RpcServer } from '../../../src/messaging/rpc-server';
import type { IncomingCall, RpcEndpoint } from '../../../src/messaging/types';
import { cleanup, collectingLogger, newSession, sleep, uniqueName, waitFor } from './helpers';

const run = promisify(execFile);

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const PEER = join(repoRoot(), 'test/integration/messaging/oslo_peer.py');

interface Outcome {
  ok?: unknown;
  error?: string;
  module?: string;
  exc_type?: string | null;
  text?: string;
  kwargs?: Record<string, unknown> | null;
}

async function pythonClient(spec: object): Promise<{ outcomes: Outcome[]; reply_q: string | null }> {
  const { stdout } = await run('/usr/bin/python3', [PEER, 'client', JSON.stringify(spec)], { timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { outcomes: Outcome[]; reply_q: string | null };
}

/** Starts a long-running peer (server or listener); resolves once it printed "ready". Stop it by ending stdin. */
async function pythonPeer(mode: 'server' | 'listen', spec: object): Promise<{ child: ChildProcessWithoutNullStreams; lines: string[] }> {
  const child = spawn('/usr/bin/python3', [PEER, mode, JSON.stringify(spec)], { stdio: 'pipe' });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  child.stderr.resume();
  await waitFor(`the python ${mode} to be ready`, () => (lines.includes('ready') ? true : undefined), 60_000);
  return { child, lines };
}

async function stopPeer(child: ChildProcessWithoutNullStreams | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin.end();
  const timer = setTimeout(() => child.kill('SIGTERM'), 15_000);
  await exited;
  clearTimeout(timer);
}

describe('messaging interoperates with Python oslo.messaging', function () {
  this.timeout(180_000);

  const exchange = uniqueName('berth_interop_x');
  let session: MessagingSession;
  const queues: string[] = [];

  before(async function () {
    try {
      await run('/usr/bin/python3', ['-c', 'import oslo_messaging, nova.exception'], { timeout: 60_000 });
    } catch {
      this.skip();
    }
    session = newSession(collectingLogger().logger);
    await session.start();
  });

  after(async () => {
    await session?.close();
    await cleanup(queues, [exchange]);
  });

  it('answers a Python oslo client: results, casts, namespaces, failures Nova can rebuild, call monitor', async () => {
    const topic = uniqueName('berth_interop');
    const host = uniqueName('host');
    queues.push(topic, `${topic}.${host}`);
    const casts: IncomingCall[] = [];
    const endpoints: RpcEndpoint[] = [
      {
        namespace: null,
        version: '6.1',
        methods: {
          echo: async (call) => ({ args: call.args, request_id: call.context.request_id, version: call.version }),
          record: async (call) => {
            casts.push(call);
            return null;
          },
          not_found: async (call) => {
            const id = String(call.args['instance_id']);
            throw new RemoteFailure('InstanceNotFound', 'nova.exception', `Instance ${id} could not be found.`, {
              kwargs: { instance_id: id, code: 404 },
            });
          },
          not_implemented: async () => {
            throw new RemoteFailure('NotImplementedError', 'builtins', 'not supported by Berth');
          },
          slow: async (call) => {
            await sleep(Number(call.args['ms']));
            return 'slept';
          },
        },
      },
      { namespace: 'baseapi', version: '1.1', methods: { ping: async (call) => ({ service: 'compute', arg: call.args['arg'] }) } },
    ];
    const { logger } = collectingLogger();
    const server = new RpcServer({ session, topic, server: host, endpoints, logger, exchange });
    await server.start();
    try {
      const { outcomes, reply_q: pythonReplyQueue } = await pythonClient({
        exchange,
        topic,
        server: host,
        calls: [
          { method: 'echo', args: { x: [1, 'two', { three: 3 }] }, context: { request_id: 'req-from-python', is_admin: true } },
          { method: 'ping', args: { arg: '1.21 GigaWatts' }, namespace: 'baseapi', version: '1.0' },
          { method: 'record', args: { n: 1 }, cast: true },
          { method: 'not_found', args: { instance_id: 'abc' } },
          { method: 'not_implemented', args: {} },
          { method: 'no_such_method', args: {} },
          { method: 'echo', args: {}, version: '99.0' },
          { method: 'slow', args: { ms: 3000 }, call_monitor_timeout: 2, timeout: 30 },
        ],
      });
      if (pythonReplyQueue) queues.push(pythonReplyQueue);
      const [echo, ping, cast, notFound, notImplemented, noSuchMethod, unsupported, slow] = outcomes;
      assert.deepEqual(echo, { ok: { args: { x: [1, 'two', { three: 3 }] }, request_id: 'req-from-python', version: '6.0' } });
      assert.deepEqual(ping, { ok: { service: 'compute', arg: '1.21 GigaWatts' } });
      assert.deepEqual(cast, { ok: null });
      // nova.exception is allowed: Python rebuilds the real InstanceNotFound with its kwargs.
      assert.equal(notFound?.error, 'InstanceNotFound_Remote');
      assert.equal(notFound?.module, 'nova.exception_Remote');
      assert.equal(notFound?.text, 'Instance abc could not be found.');
      assert.deepEqual(notFound?.kwargs, { instance_id: 'abc', code: 404 });
      // A builtins class cannot be re-classed to *_Remote, so Python raises the plain NotImplementedError (API 501).
      assert.equal(notImplemented?.error, 'NotImplementedError');
      assert.equal(notImplemented?.text, 'not supported by Berth');
      // oslo_messaging.rpc.dispatcher is not an allowed module: a RemoteError naming the class.
      assert.equal(noSuchMethod?.error, 'RemoteError');
      assert.equal(noSuchMethod?.exc_type, 'NoSuchMethod');
      assert.equal(unsupported?.exc_type, 'UnsupportedVersion');
      assert.deepEqual(slow, { ok: 'slept' });
      await waitFor('the cast', () => (casts.length === 1 ? true : undefined));
      assert.equal(casts[0]?.context.request_id, 'req-python-peer');
    } finally {
      await server.close();
    }
  });

  it('calls a Python oslo RPC server: results, failures, namespaces, its call-monitor heartbeats', async () => {
    const topic = uniqueName('berth_interop');
    const host = uniqueName('host');
    queues.push(topic, `${topic}.${host}`);
    const peer = await pythonPeer('server', { exchange, topic, server: host });
    const client = new RpcClient({ session, logger: collectingLogger().logger, exchange, timeoutMs: 20_000 });
    queues.push(client.replyQueueName);
    try {
      const target = { topic, server: host, version: '6.0', exchange };
      const context = adminContext();
      assert.deepEqual(await client.call(context, target, 'echo', { a: 1 }), { args: { a: 1 }, request_id: context.request_id });
      assert.deepEqual(await client.call(context, { ...target, namespace: 'baseapi', version: '1.0' }, 'ping', { arg: 'x' }), {
        service: 'python-peer',
        arg: 'x',
      });
      await assert.rejects(client.call(context, target, 'not_found', { instance_id: 'abc' }), (err: unknown) => {
        assert.ok(err instanceof RemoteFailure);
        assert.equal(err.className, 'InstanceNotFound');
        assert.equal(err.module, 'nova.exception');
        assert.equal(err.message, 'Instance abc could not be found.');
        assert.deepEqual(err.kwargs, { instance_id: 'abc', code: 404 });
        return true;
      });
      await assert.rejects(client.call(context, target, 'nope', {}), (err: unknown) => {
        assert.ok(err instanceof RemoteFailure);
        assert.equal(err.className, 'NoSuchMethod');
        assert.equal(err.message, 'Endpoint does not support RPC method nope');
        return true;
      });
      await assert.rejects(client.call(context, target, 'not_found', {}), (err: unknown) => {
        assert.ok(err instanceof RemoteFailure);
        assert.equal(err.className, 'TypeError');
        assert.equal(err.module, 'builtins');
        return true;
      });
      // Python's watchdog heartbeats every second; the 2 s call monitor survives a 3 s method.
      assert.equal(await client.call(context, target, 'slow', { seconds: 3 }, { callMonitorTimeoutSec: 2 }), 'slept');
    } finally {
      await client.close();
      await stopPeer(peer.child);
    }
  });

  it('delivers notifications a Python oslo notification listener understands', async () => {
    const topic = uniqueName('berth_notif');
    queues.push(...['audit', 'debug', 'info', 'warn', 'error', 'critical', 'sample'].map((p) => `${topic}.${p}`));
    const listener = await pythonPeer('listen', { exchange, topics: [topic] });
    const notifier = new Notifier({
      session,
      logger: collectingLogger().logger,
      driver: 'messagingv2',
      topics: [topic],
      publisherId: 'nova-compute:berth-host',
      exchange,
    });
    try {
      const context = { ...adminContext(), auth_token: 'secret-token', user_id: 'u1', project_id: 'p1' };
      await notifier.info(context, 'instance.create.start', { nova_object: 'payload' });
      await notifier.error(context, 'compute.instance.create.error', { code: 500 });
      const got = await waitFor('two notifications', () => {
        const events = listener.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
        return events.length >= 2 ? events : undefined;
      });
      const info = got.find((e) => e['priority'] === 'info');
      const error = got.find((e) => e['priority'] === 'error');
      assert.equal(info?.['event_type'], 'instance.create.start');
      assert.equal(info?.['publisher_id'], 'nova-compute:berth-host');
      assert.deepEqual(info?.['payload'], { nova_object: 'payload' });
      const ctxt = info?.['ctxt'] as Record<string, unknown>;
      assert.equal(ctxt['request_id'], context.request_id);
      assert.equal(ctxt['user_id'], 'u1');
      assert.equal(ctxt['auth_token'], null);
      const metadata = info?.['metadata'] as Record<string, unknown>;
      assert.match(String(metadata['message_id']), /^[0-9a-f-]{36}$/);
      assert.match(String(metadata['timestamp']), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$/);
      assert.equal(error?.['event_type'], 'compute.instance.create.error');
    } finally {
      await stopPeer(listener.child);
    }
  });
});
