// The topology Berth declares is the one Python's oslo.messaging declares: checked against the captured listing of a
// real nova-compute (rabbit-topology.txt), and by letting oslo's own impl_rabbit declare the same names before and
// after us, for the default flags and for each non-default [oslo_messaging_rabbit] variant (a mismatch is a 406).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { adminContext } from '../../../src/messaging/context';
import { Notifier } from '../../../src/messaging/notifier';
import { RpcClient } from '../../../src/messaging/rpc-client';
import { RpcServer } from '../../../src/messaging/rpc-server';
import type { QueueFlags, RpcEndpoint } from '../../../src/messaging/types';
import {
  cleanup,
  collectingLogger,
  listBindings,
  listConsumers,
  listExchanges,
  listQueues,
  newSession,
  uniqueName,
  waitFor,
} from './helpers';

const run = promisify(execFile);

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const SCRIPT = join(repoRoot(), 'test/integration/messaging/oslo_declare.py');
const TOPOLOGY = join(repoRoot(), '../shared/lab/captures/rabbit-topology.txt');

interface DeclareSpec {
  exchange: string;
  topic: string;
  server: string;
  fanout_hex: string;
  reply_queue: string;
  notification_queues: string[];
  options: Record<string, unknown>;
}

async function osloDeclare(spec: DeclareSpec): Promise<{ ok: string[]; errors: string[] }> {
  const { stdout } = await run('/usr/bin/python3', [SCRIPT, JSON.stringify(spec)], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { ok: string[]; errors: string[] };
}

async function osloAvailable(): Promise<boolean> {
  try {
    await run('/usr/bin/python3', ['-c', 'import oslo_messaging, kombu'], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

const noop: RpcEndpoint = { namespace: null, version: '6.0', methods: { echo: async () => 'ok' } };

/** Declares everything Berth declares for one topic/server: RPC server, reply queue, a notification queue. */
async function berthDeclare(
  exchange: string,
  topic: string,
  server: string,
  flags: Partial<QueueFlags>,
  beforeStart: (names: { fanoutHex: string; replyQueue: string }) => Promise<void>,
): Promise<{ stop(): Promise<void>; fanoutQueue: string; replyQueue: string }> {
  const { logger, lines } = collectingLogger();
  const session = newSession(logger);
  await session.start();
  const rpcServer = new RpcServer({ session, topic, server, endpoints: [noop], logger, exchange, queueFlags: flags });
  const client = new RpcClient({ session, logger, exchange, queueFlags: flags });
  const names = { fanoutHex: rpcServer.fanoutQueueName.slice(`${topic}_fanout_`.length), replyQueue: client.replyQueueName };
  const stop = async (): Promise<void> => {
    await rpcServer.stopConsuming();
    await client.close();
    await session.close();
  };
  try {
    await beforeStart(names);
    await rpcServer.start();
    // A CALL declares the reply queue; the call itself goes to our own server.
    assert.equal(await client.call(adminContext(), { topic, server, version: '6.0', exchange }, 'echo', {}), 'ok');
    const notifier = new Notifier({
      session,
      logger,
      driver: 'messagingv2',
      topics: [`${topic}_notifications`],
      publisherId: 'test',
      exchange,
      queueFlags: flags,
    });
    await notifier.info(adminContext(), 'test.event', {});
    // The notifier logs instead of throwing: a 406 on its queue shows up here.
    assert.deepEqual(lines.filter((l) => l.level === 'error').map((l) => l.msg), []);
  } catch (err) {
    await stop();
    throw err;
  }
  return { fanoutQueue: rpcServer.fanoutQueueName, replyQueue: client.replyQueueName, stop };
}

describe('messaging topology equals oslo.messaging 14', function () {
  this.timeout(120_000);

  it('declares what the captured nova-compute declares (exchange nova, rabbit-topology.txt)', async () => {
    const topic = uniqueName('berth_topo');
    const server = uniqueName('host');
    const { logger } = collectingLogger();
    const session = newSession(logger);
    await session.start();
    const rpcServer = new RpcServer({ session, topic, server, endpoints: [noop], logger, exchange: 'nova' });
    const client = new RpcClient({ session, logger, exchange: 'nova' });
    try {
      await rpcServer.start();
      await client.call(adminContext(), { topic, server, version: '6.0' }, 'echo', {});
      const queues = new Map((await listQueues()).map((q) => [q.name, q]));
      const exchanges = new Map((await listExchanges()).map((x) => [x.name, x]));

      // The capture's lines for compute / compute.fake-1 / compute_fanout_<hex> / reply_<hex> and the exchanges.
      const capture = existsSync(TOPOLOGY) ? readFileSync(TOPOLOGY, 'utf8') : '';
      if (capture !== '') {
        assert.match(capture, /^nova\ttopic\tfalse\tfalse\tfalse\t\[\]$/m);
        assert.match(capture, /^compute_fanout\tfanout\tfalse\ttrue\tfalse\t\[\]$/m);
        assert.match(capture, /^compute\tfalse\tfalse\tfalse\t\[\]\t1\t0$/m);
        assert.match(capture, /^compute_fanout_[0-9a-f]{32}\tfalse\tfalse\tfalse\t\[\{"x-expires",1800000\}\]/m);
        assert.match(capture, /^reply_[0-9a-f]{32}\tfalse\tfalse\tfalse\t\[\{"x-expires",1800000\}\]/m);
      }
      const plainQueue = { durable: false, auto_delete: false, exclusive: false, arguments: [] as unknown[] };
      const transient = { durable: false, auto_delete: false, exclusive: false, arguments: [['x-expires', 'signedint', 1800000]] };
      const pick = (name: string): object | undefined => {
        const q = queues.get(name);
        return q && { durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive, arguments: q.arguments };
      };
      assert.deepEqual(pick(topic), plainQueue);
      assert.deepEqual(pick(`${topic}.${server}`), plainQueue);
      assert.match(rpcServer.fanoutQueueName, new RegExp(`^${topic}_fanout_[0-9a-f]{32}$`));
      assert.deepEqual(pick(rpcServer.fanoutQueueName), transient);
      assert.match(client.replyQueueName, /^reply_[0-9a-f]{32}$/);
      assert.deepEqual(pick(client.replyQueueName), transient);
      const ex = (name: string): object | undefined => {
        const x = exchanges.get(name);
        return x && { type: x.type, durable: x.durable, auto_delete: x.auto_delete, internal: x.internal, arguments: x.arguments };
      };
      assert.deepEqual(ex('nova'), { type: 'topic', durable: false, auto_delete: false, internal: false, arguments: [] });
      assert.deepEqual(ex(`${topic}_fanout`), { type: 'fanout', durable: false, auto_delete: true, internal: false, arguments: [] });

      const bindings = (await listBindings()).filter((b) => b.destination_name.startsWith(topic));
      const bound = bindings.filter((b) => b.source_name !== '').map((b) => `${b.source_name} -> ${b.destination_name} (${b.routing_key})`);
      assert.deepEqual(bound.sort(), [
        `${topic}_fanout -> ${rpcServer.fanoutQueueName} (${topic})`,
        `nova -> ${topic} (${topic})`,
        `nova -> ${topic}.${server} (${topic}.${server})`,
      ].sort());
      const replyBindings = (await listBindings()).filter((b) => b.destination_name === client.replyQueueName);
      assert.deepEqual(replyBindings.map((b) => b.source_name), ['']); // only the default exchange

      const consumers = (await listConsumers()).filter((c) => c.queue_name.startsWith(topic) || c.queue_name === client.replyQueueName);
      assert.deepEqual(
        consumers.map((c) => `${c.queue_name}:${c.consumer_tag}:${c.ack_required}:${c.prefetch_count}`).sort(),
        [
          `${topic}:1:true:0`,
          `${topic}.${server}:2:true:0`,
          `${rpcServer.fanoutQueueName}:3:true:0`,
          `${client.replyQueueName}:1:true:0`,
        ].sort(),
      );
    } finally {
      await rpcServer.close();
      await client.close();
      await session.close();
      await cleanup([topic, `${topic}.${server}`, client.replyQueueName]);
    }
  });

  const variants: { name: string; flags: Partial<QueueFlags>; options: Record<string, unknown> }[] = [
    { name: 'default flags', flags: {}, options: {} },
    { name: 'amqp_durable_queues', flags: { durable: true }, options: { amqp_durable_queues: true } },
    { name: 'amqp_auto_delete', flags: { autoDelete: true }, options: { amqp_auto_delete: true } },
    { name: 'rabbit_ha_queues', flags: { haQueues: true }, options: { rabbit_ha_queues: true } },
    { name: 'rabbit_transient_queues_ttl=60', flags: { transientQueuesTtlSec: 60 }, options: { rabbit_transient_queues_ttl: 60 } },
    {
      name: 'rabbit_quorum_queue with a delivery limit',
      flags: { quorumQueues: true, quorumDeliveryLimit: 5 },
      options: { rabbit_quorum_queue: true, rabbit_quorum_delivery_limit: 5 },
    },
  ];

  for (const variant of variants) {
    for (const order of ['oslo first', 'Berth first'] as const) {
      it(`matches oslo's declarations with ${variant.name} (${order})`, async function () {
        if (!(await osloAvailable())) this.skip();
        const exchange = uniqueName('berth_topo_x');
        const topic = uniqueName('berth_topo');
        const server = uniqueName('host');
        const notificationQueue = `${topic}_notifications.info`;
        let spec: DeclareSpec | null = null;
        const makeSpec = (names: { fanoutHex: string; replyQueue: string }): DeclareSpec => ({
          exchange,
          topic,
          server,
          fanout_hex: names.fanoutHex,
          reply_queue: names.replyQueue,
          notification_queues: [notificationQueue],
          options: variant.options,
        });
        let declared: Awaited<ReturnType<typeof berthDeclare>> | null = null;
        const created: string[] = [topic, `${topic}.${server}`, notificationQueue];
        try {
          declared = await berthDeclare(exchange, topic, server, variant.flags, async (names) => {
            spec = makeSpec(names);
            created.push(`${topic}_fanout_${names.fanoutHex}`, names.replyQueue);
            if (order === 'oslo first') {
              const result = await osloDeclare(spec);
              assert.deepEqual(result.errors, []);
            }
          });
          if (order === 'Berth first') {
            assert.ok(spec);
            const result = await osloDeclare(spec);
            assert.deepEqual(result.errors, []);
            assert.equal(result.ok.length, 5);
          }
          const queues = await listQueues();
          await waitFor('all five queues', () =>
            [topic, `${topic}.${server}`, declared?.fanoutQueue, declared?.replyQueue, notificationQueue].every((n) => queues.some((q) => q.name === n))
              ? true
              : undefined,
          );
        } finally {
          await declared?.stop();
          await cleanup(created, [exchange, `${topic}_fanout`]);
        }
      });
    }
  }
});
