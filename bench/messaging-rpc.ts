// CALL round trip through RpcClient → RabbitMQ → RpcServer → reply, on the local broker (127.0.0.1:5672, guest):
// median latency over sequential calls and calls/s with concurrent callers. When /usr/bin/python3 has
// oslo.messaging, the same sequential measurement with Python peers gives ratios from the same run.
// Prints numbers; asserts nothing.  Run: node dist-<area>/bench/messaging-rpc.js [sequential] [concurrency] [total]
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';
import { silentLogger } from '../src/log';
import { adminContext } from '../src/messaging/context';
import { MessagingSession } from '../src/messaging/amqp-session';
import { RpcClient } from '../src/messaging/rpc-client';
import { RpcServer } from '../src/messaging/rpc-server';
import { parseTransportUrl } from '../src/messaging/transport-url';
import type { Target } from '../src/messaging/types';

const run = promisify(execFile);
const URL = 'rabbit://guest:guest@127.0.0.1:5672/';
const SEQUENTIAL = Number(process.argv[2] ?? 1000);
const CONCURRENCY = Number(process.argv[3] ?? 32);
const TOTAL = Number(process.argv[4] ?? 10_000);

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const PEER = join(repoRoot(), 'test/integration/messaging/oslo_peer.py');

const name = (prefix: string): string => `${prefix}_${randomBytes(5).toString('hex')}`;

function stats(latenciesMs: number[]): { median: number; p90: number; p99: number } {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { median: at(0.5), p90: at(0.9), p99: at(0.99) };
}

const ms = (n: number): string => `${n.toFixed(3)} ms`;

async function sequential(client: RpcClient, target: Target, calls: number): Promise<number[]> {
  const context = adminContext();
  for (let i = 0; i < 100; i++) await client.call(context, target, 'echo', { n: i }); // warm-up
  const latencies: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = process.hrtime.bigint();
    await client.call(context, target, 'echo', { n: i });
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return latencies;
}

async function concurrent(client: RpcClient, target: Target, callers: number, total: number): Promise<number> {
  const context = adminContext();
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < total) {
        next++;
        await client.call(context, target, 'echo', { n: next });
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return total / seconds;
}

async function pythonAvailable(): Promise<boolean> {
  try {
    await run('/usr/bin/python3', ['-c', 'import oslo_messaging'], { timeout: 60_000 });
    return existsSync(PEER);
  } catch {
    return false;
  }
}

/** Python oslo client → `topic.server` (served by whoever listens there); returns its latencies and reply queue. */
async function pythonClientLatencies(exchange: string, topic: string, server: string, calls: number): Promise<{ latencies: number[]; replyQ: string | null }> {
  const { stdout } = await run('/usr/bin/python3', [PEER, 'bench', JSON.stringify({ exchange, topic, server, calls })], {
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { latencies_ms: number[]; reply_q: string | null };
  return { latencies: out.latencies_ms, replyQ: out.reply_q };
}

async function main(): Promise<void> {
  const logger = silentLogger();
  const url = parseTransportUrl(URL);
  const serverSession = new MessagingSession({ url, logger, processName: 'berth-bench' });
  const clientSession = new MessagingSession({ url, logger, processName: 'berth-bench' });
  await Promise.all([serverSession.start(), clientSession.start()]);
  const exchange = name('berth_bench_x');
  const topic = name('berth_bench');
  const host = 'bench';
  const server = new RpcServer({
    session: serverSession,
    topic,
    server: host,
    logger,
    exchange,
    endpoints: [{ namespace: null, version: '6.1', methods: { echo: async (call) => call.args } }],
  });
  await server.start();
  const client = new RpcClient({ session: clientSession, logger, exchange });
  const target: Target = { topic, server: host, version: '6.0', exchange };
  const queues = [topic, `${topic}.${host}`, client.replyQueueName];

  console.log(`broker ${url.hosts[0]?.hostname}:${url.hosts[0]?.port}, node ${process.version}`);
  const tsLatency = stats(await sequential(client, target, SEQUENTIAL));
  console.log(`Berth → Berth   CALL round trip, ${SEQUENTIAL} sequential: median ${ms(tsLatency.median)}, p90 ${ms(tsLatency.p90)}, p99 ${ms(tsLatency.p99)}`);
  const rate = await concurrent(client, target, CONCURRENCY, TOTAL);
  console.log(`Berth → Berth   ${CONCURRENCY} concurrent callers, ${TOTAL} calls: ${rate.toFixed(0)} calls/s`);

  if (await pythonAvailable()) {
    // Python oslo client against our server, and Python client against a Python oslo server, same broker, same run.
    const py = await pythonClientLatencies(exchange, topic, host, SEQUENTIAL);
    if (py.replyQ) queues.push(py.replyQ);
    const pyToTs = stats(py.latencies);
    console.log(`oslo  → Berth   CALL round trip, ${SEQUENTIAL} sequential: median ${ms(pyToTs.median)}`);

    const pyTopic = name('berth_bench_py');
    queues.push(pyTopic, `${pyTopic}.${host}`);
    const peer = spawn('/usr/bin/python3', [PEER, 'server', JSON.stringify({ exchange, topic: pyTopic, server: host })], { stdio: 'pipe' });
    peer.stderr.resume();
    await new Promise<void>((resolve) => {
      createInterface({ input: peer.stdout }).on('line', (line) => line === 'ready' && resolve());
    });
    const pyToPy = await pythonClientLatencies(exchange, pyTopic, host, SEQUENTIAL);
    if (pyToPy.replyQ) queues.push(pyToPy.replyQ);
    const pyPy = stats(pyToPy.latencies);
    console.log(`oslo  → oslo    CALL round trip, ${SEQUENTIAL} sequential: median ${ms(pyPy.median)}`);
    const tsToPy = stats(await sequential(client, { topic: pyTopic, server: host, version: '6.0', exchange }, SEQUENTIAL));
    console.log(`Berth → oslo    CALL round trip, ${SEQUENTIAL} sequential: median ${ms(tsToPy.median)}`);
    console.log(`ratio: oslo→oslo median / Berth→Berth median = ${(pyPy.median / tsLatency.median).toFixed(2)}`);
    const exited = new Promise((resolve) => peer.once('exit', resolve));
    peer.stdin.end();
    await exited;
  } else {
    console.log('(no /usr/bin/python3 with oslo.messaging: no Python baseline)');
  }

  await server.close();
  await client.close();
  await serverSession.close();
  await clientSession.close();
  const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672/');
  for (const q of queues) {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.deleteQueue(q).catch(() => undefined);
    await ch.close().catch(() => undefined);
  }
  const ch = await conn.createChannel();
  await ch.deleteExchange(exchange).catch(() => undefined);
  await conn.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
