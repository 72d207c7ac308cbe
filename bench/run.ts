// `npm run bench` (bench/run.sh starts what it needs and builds, then runs this): Berth against raw Docker and
// against Python nova-compute, side by side, in one run on this machine. Prints a table of ratios on stdout (progress
// goes to stderr) and writes bench/results/<date>.json. It asserts nothing about speed.
//
// Env: BERTH_BENCH_SCALE=quick (tiny N, short runs: for developing the bench itself, never for results),
//      BERTH_BENCH_CPU_PROF=<dir> (every Berth process is CPU-profiled; <dir>/berth-<pid>.cpuprofile at its exit),
//      BERTH_BENCH_OUT=<file> (instead of bench/results/<date>.json).
import { hostname, loadavg, cpus, release, tmpdir } from 'node:os';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type Docker from 'dockerode';

import { LABEL } from '../driver/docker/container-config';
import { CACHE_REPOSITORY } from '../driver/docker/image-cache';
import type { FlavorSpec } from '../driver/driver';
import { ConductorClient } from '../src/conductor/conductor-client';
import { loadConfig } from '../src/config';
import { silentLogger } from '../src/log';
import { adminContext, MessagingSession, parseTransportUrl, RpcClient } from '../src/messaging';
import { AIO, readOpenrc, repoRoot, runControlPlaneScript } from '../test/e2e/support';
import { dockerClient } from '../test/support/docker';
import { buildBusyboxImage } from '../test/support/images';
import { breakdownBoot, summariseBreakdowns, type BootBreakdown } from './boot-breakdown';
import { bootAndDelete, deleteAll, POLL_MS, type BootRun } from './boot-throughput';
import { type ComputeHost, removeBerthState, startBerthHost, startPeer, vmRssKiB } from './compute-hosts';
import { dockerFloor, removeFloorContainers, type FloorRun } from './docker-floor';
import { NotificationClock } from './notification-clock';
import { OpenStackApi } from './openstack-api';
import { consoleOutputCapacity, type CapacityRun } from './rpc-capacity';
import { cpuUsage, snapshotCpu, type CpuUsage } from './cpu-accounting';
import { median, ratio, round } from './stats';
import type { TimingEvent } from './timing-hook';

const QUICK = process.env['BERTH_BENCH_SCALE'] === 'quick';
const HOSTS = { peer: 'bench-peer', fake: 'bench-berth-fake', docker: 'bench-berth-docker' } as const;
type Target = keyof typeof HOSTS;
const LABELS: Record<Target | 'floor', string> = {
  peer: 'a: nova-compute + FakeDriver',
  fake: 'b: Berth + driver/fake',
  docker: 'c: Berth + driver/docker',
  floor: 'd: raw Docker (dockerode)',
};
const FLAVOR = { name: 'berth-bench', vcpus: 1, ram: 64, disk: 0 };
const IMAGE_NAME = 'berth-bench-busybox';
const THROUGHPUT_N = QUICK ? [2, 3] : [20, 50];
/** Rounds of the throughput comparison at N (the headline N = 20 three times: a shared machine is noisy). */
const ROUNDS = (n: number): number => (n === THROUGHPUT_N[0] ? 3 : 1);
const SCALING_N = QUICK ? [1, 2, 3, 4] : [10, 20, 50, 100];
/** The instance count at which memory is read ("after 50 instances"). */
const MEMORY_N = QUICK ? 3 : 50;
const BREAKDOWN_BOOTS = QUICK ? 2 : 10;
const RPC_CONCURRENCY = [16, 64];
const RPC_DURATION_MS = QUICK ? 2_000 : 10_000;
const RPC_WARMUP_MS = QUICK ? 500 : 2_000;
const IDLE_MS = QUICK ? 5_000 : 30_000;
const BOOT_TIMEOUT_MS = (n: number): number => 120_000 + n * 5_000;
/** Berth+Docker needs room for 100 one-vCPU instances on 2 cores: an operator's cpu_allocation_ratio does that. */
const DOCKER_HOST_CONFIG = { DEFAULT: { cpu_allocation_ratio: 64 } };

const say = (text: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Context {
  readonly api: OpenStackApi;
  readonly docker: Docker;
  imageId: string;
  flavorId: string;
  readonly hosts: Partial<Record<Target, ComputeHost>>;
  rpc: { session: MessagingSession; client: RpcClient; conductor: ConductorClient } | null;
  clock: NotificationClock | null;
}

/** A boot run with the CPU seconds each process spent while the servers came up and while they went away. */
type MeasuredBoot = BootRun & { cpu: { boot: CpuUsage; delete: CpuUsage }; load_1m: number };
type MeasuredFloor = FloorRun & { cpu: CpuUsage; load_1m: number };

interface Results {
  date: string;
  machine: Record<string, unknown>;
  settings: Record<string, unknown>;
  boot: Record<
    string,
    Partial<Record<Target, MeasuredBoot>> & {
      floor?: MeasuredFloor;
      rounds?: Record<string, Array<{ boot_s: number | null; delete_s: number | null; create_end_s: number | null }>>;
    }
  >;
  scaling: Array<{ n: number; docker: MeasuredBoot; floor: MeasuredFloor }>;
  memory_kib: Partial<Record<Target, { idle: number; after_n: number | null }>>;
  rpc: Array<CapacityRun & { cpu: CpuUsage; load_1m: number }>;
  breakdown: { boots: BootBreakdown[]; api_boot_s: number[]; median: Record<string, number | null>; p95: Record<string, number | null> } | null;
  ratios: Record<string, number | null>;
  targets: Array<{ what: string; target: string; value: number | null; met: boolean | null }>;
  errors: string[];
  duration_s: number;
}

/** Preloads for Berth (NODE_OPTIONS takes --require, not --cpu-prof): the CPU profiler when asked for, plus `extra`. */
function berthEnv(preloads: readonly string[] = [], extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { ...extra };
  const modules = [...preloads];
  const profDir = process.env['BERTH_BENCH_CPU_PROF'];
  if (profDir) {
    modules.push(join(__dirname, 'cpu-profile-hook.js'));
    env['BERTH_BENCH_CPU_PROF'] = profDir;
  }
  if (modules.length > 0) env['NODE_OPTIONS'] = modules.map((m) => `--require ${m}`).join(' ');
  return env;
}

async function startHost(target: Target, env: Record<string, string> = berthEnv()): Promise<ComputeHost> {
  const host = HOSTS[target];
  say(`starting ${LABELS[target]} as host ${host}`);
  if (target === 'peer') return startPeer(host);
  return startBerthHost({
    host,
    driver: target === 'fake' ? 'fake' : 'docker',
    ...(target === 'docker' ? { config: DOCKER_HOST_CONFIG } : {}),
    env,
  });
}

/** Leftovers of an interrupted run: servers, the hosts' service records, floor containers, the image and flavor. */
async function clearLeftovers(ctx: Context, stopPeer: boolean): Promise<void> {
  await deleteAll(ctx.api, 'bench-', 300_000);
  if (stopPeer) await runControlPlaneScript(['stop-fake-compute', HOSTS.peer]).catch(() => undefined);
  for (const host of Object.values(HOSTS)) {
    for (const service of await ctx.api.computeServices(host)) await ctx.api.deleteService(service.id);
    await removeBerthState(host);
  }
  await removeFloorContainers(ctx.docker);
  for (const c of await ctx.docker.listContainers({ all: true, filters: { label: [`${LABEL.computeHost}=${HOSTS.docker}`] } })) {
    await ctx.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
  }
}

async function instanceCount(api: OpenStackApi): Promise<number> {
  return (await api.listServers('bench-')).length;
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg();
  const results: Results = {
    date: new Date().toISOString(),
    machine: {
      hostname: hostname(),
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? null,
      kernel: release(),
      node: process.version,
      load_before: loadBefore.map((l) => round(l, 2)),
    },
    settings: {
      scale: QUICK ? 'quick' : 'full',
      poll_ms: POLL_MS,
      flavor: FLAVOR,
      forced_host: 'availability_zone nova:<host>',
      rpc_duration_s: RPC_DURATION_MS / 1000,
      idle_wait_s: IDLE_MS / 1000,
      docker_host_config: DOCKER_HOST_CONFIG,
      control_plane_debug: process.env['BERTH_AIO_DEBUG'] ?? 'false',
      cpu_prof: process.env['BERTH_BENCH_CPU_PROF'] ?? null,
    },
    boot: {},
    scaling: [],
    memory_kib: {},
    rpc: [],
    breakdown: null,
    ratios: {},
    targets: [],
    errors: [],
    duration_s: 0,
  };

  const api = await OpenStackApi.connect(readOpenrc());
  const ctx: Context = { api, docker: dockerClient(), imageId: '', flavorId: '', hosts: {}, rpc: null, clock: null };
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    say('cleaning up: servers, compute hosts and their service records, containers, image, flavor');
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['servers', () => deleteAll(api, 'bench-', 300_000)],
      ['rpc client', async () => {
        await ctx.rpc?.client.close();
        await ctx.rpc?.session.close();
        await ctx.clock?.close();
      }],
      ...Object.entries(ctx.hosts).map(([target, host]): [string, () => Promise<unknown>] => [`stop ${target}`, () => host.stop()]),
      ['leftovers', () => clearLeftovers(ctx, false)],
      ['flavor', () => (ctx.flavorId ? api.deleteFlavor(ctx.flavorId) : Promise.resolve())],
      ['image', () => (ctx.imageId ? api.deleteImage(ctx.imageId) : Promise.resolve())],
      ['cached image', () => (ctx.imageId ? ctx.docker.getImage(`${CACHE_REPOSITORY}:${ctx.imageId}`).remove().catch(() => undefined) : Promise.resolve())],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        say(`cleanup of ${what} failed: ${(err as Error).message}`);
        results.errors.push(`cleanup ${what}: ${(err as Error).message}`);
      }
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    say('clearing what an interrupted run may have left');
    await clearLeftovers(ctx, true);
    await setup(ctx);
    await measure(ctx, results);
  } catch (err) {
    results.errors.push(`aborted: ${(err as Error).stack ?? String(err)}`);
    say(`ABORTED: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }

  results.machine['load_after'] = loadavg().map((l) => round(l, 2));
  results.duration_s = round((performance.now() - started) / 1000, 1);
  computeRatios(results);
  const out = process.env['BERTH_BENCH_OUT'] ?? join(repoRoot(), 'bench', 'results', `${results.date.slice(0, 19).replace(/:/g, '-')}.json`);
  await mkdir(join(out, '..'), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(renderTable(results, out));
}

async function setup(ctx: Context): Promise<void> {
  say('image and flavor');
  const image = await buildBusyboxImage('berth-bench/busybox:1');
  for (const id of await ctx.api.findImages(IMAGE_NAME)) await ctx.api.deleteImage(id);
  ctx.imageId = await ctx.api.uploadImage(IMAGE_NAME, image.tarPath);
  const existing = await ctx.api.findFlavor(FLAVOR.name);
  if (existing) await ctx.api.deleteFlavor(existing);
  ctx.flavorId = await ctx.api.createFlavor(FLAVOR);

  const config = loadConfig([AIO.berthConf], { logger: silentLogger() });
  const url = parseTransportUrl(config.DEFAULT.transport_url);
  ctx.clock = await NotificationClock.start(url, config.DEFAULT.control_exchange);
  const session = new MessagingSession({ url, logger: silentLogger(), processName: 'berth-bench' });
  await session.start();
  const client = new RpcClient({ session, logger: silentLogger(), exchange: config.DEFAULT.control_exchange });
  ctx.rpc = { session, client, conductor: new ConductorClient(client) };
}

function bootOptions(ctx: Context, target: Target, n: number, label: string) {
  const clock = ctx.clock ? { clock: ctx.clock } : {};
  return { host: HOSTS[target], count: n, imageRef: ctx.imageId, flavorRef: ctx.flavorId, label, timeoutMs: BOOT_TIMEOUT_MS(n), ...clock };
}

function floorFlavor(ctx: Context): FlavorSpec {
  return { name: FLAVOR.name, flavorId: ctx.flavorId, vcpus: FLAVOR.vcpus, memoryMb: FLAVOR.ram, rootGb: FLAVOR.disk, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
}

async function floor(ctx: Context, n: number): Promise<MeasuredFloor> {
  const load = round(loadavg()[0] ?? 0, 2);
  const names = processNames(ctx);
  const before = await snapshotCpu(names);
  const run = await dockerFloor(ctx.docker, {
    count: n,
    imageRef: `${CACHE_REPOSITORY}:${ctx.imageId}`,
    glanceImageId: ctx.imageId,
    flavor: floorFlavor(ctx),
    stateDir: join(tmpdir(), 'berth-bench-floor'),
  });
  say(`  ${LABELS.floor}, N=${n}: up ${run.boot_s} s, removed ${run.delete_s} s${run.errors.length ? ` (${run.errors.length} errors: ${run.errors[0]})` : ''}`);
  return { ...run, cpu: cpuUsage(before, await snapshotCpu(names)), load_1m: load };
}

/** The run with the median boot time (a failed run counts as slowest). */
function medianRun<T extends { boot_s: number | null }>(runs: readonly T[]): T {
  const sorted = [...runs].sort((a, b) => (a.boot_s ?? Number.POSITIVE_INFINITY) - (b.boot_s ?? Number.POSITIVE_INFINITY));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!median) throw new Error('no runs');
  return median;
}

/** The processes under test by name, for the CPU accounting; everything else is grouped by its command line. */
function processNames(ctx: Context): Map<number, string> {
  const names = new Map<number, string>([[process.pid, 'bench (API polling, RPC client)']]);
  for (const [target, host] of Object.entries(ctx.hosts)) names.set(host.pid, LABELS[target as Target]);
  return names;
}

async function boot(ctx: Context, results: Results, target: Target, n: number): Promise<MeasuredBoot> {
  const host = ctx.hosts[target];
  const load = round(loadavg()[0] ?? 0, 2);
  const names = processNames(ctx);
  const before = await snapshotCpu(names);
  let up = before;
  const run = await bootAndDelete(ctx.api, {
    ...bootOptions(ctx, target, n, target),
    whileActive: async () => {
      up = await snapshotCpu(names);
      if (n === MEMORY_N && host) {
        const entry = results.memory_kib[target];
        if (entry) entry.after_n = await vmRssKiB(host.pid);
      }
    },
  });
  const cpu = { boot: cpuUsage(before, up), delete: cpuUsage(up, await snapshotCpu(names)) };
  say(`  ${LABELS[target]}, N=${n}: ACTIVE ${run.boot_s} s (POST ${run.post_s} s), deleted ${run.delete_s} s${run.errors.length ? ` (errors: ${run.errors.slice(0, 2).join('; ')})` : ''}`);
  for (const error of run.errors) results.errors.push(`${target} N=${n}: ${error}`);
  return { ...run, cpu, load_1m: load };
}

async function measure(ctx: Context, results: Results): Promise<void> {
  // 4. Memory, idle: each process 30 s after its own start.
  for (const target of ['peer', 'fake', 'docker'] as const) ctx.hosts[target] = await startHost(target);
  for (const target of ['peer', 'fake', 'docker'] as const) {
    const host = ctx.hosts[target] as ComputeHost;
    await sleep(Math.max(0, host.startedAt + IDLE_MS - Date.now()));
    results.memory_kib[target] = { idle: await vmRssKiB(host.pid), after_n: null };
  }
  say(`idle RSS (KiB): ${JSON.stringify(results.memory_kib)}`);

  // Warm-up: one boot per host (Berth+Docker loads the image into its cache here; the floor reuses it).
  say('warm-up: one boot and delete per host');
  for (const target of ['peer', 'fake', 'docker'] as const) await bootAndDelete(ctx.api, bootOptions(ctx, target, 1, `warm-${target}`));
  await floor(ctx, 1);

  // 1. Boot throughput, the targets interleaved in each round so that drift hits all of them alike; the row keeps
  // each target's median round (by boot time), `rounds` every round's times.
  for (const n of THROUGHPUT_N) {
    const runs: { [T in Target]: MeasuredBoot[] } & { floor: MeasuredFloor[] } = { peer: [], fake: [], docker: [], floor: [] };
    for (let round = 1; round <= ROUNDS(n); round++) {
      say(`boot throughput, N=${n}, round ${round} of ${ROUNDS(n)}`);
      for (const target of ['peer', 'fake', 'docker'] as const) runs[target].push(await boot(ctx, results, target, n));
      runs.floor.push(await floor(ctx, n));
    }
    results.boot[String(n)] = {
      peer: medianRun(runs.peer),
      fake: medianRun(runs.fake),
      docker: medianRun(runs.docker),
      floor: medianRun(runs.floor),
      rounds: Object.fromEntries(
        Object.entries(runs).map(([target, list]) => [
          target,
          list.map((r) => ({ boot_s: r.boot_s, delete_s: r.delete_s, create_end_s: 'create_end_s' in r ? r.create_end_s : null })),
        ]),
      ),
    };
  }

  // 5. Scaling of Berth+Docker against the floor at the same N (N measured above is reused).
  for (const n of SCALING_N) {
    const measured = results.boot[String(n)];
    if (measured?.docker && measured.floor) {
      results.scaling.push({ n, docker: measured.docker, floor: measured.floor });
      continue;
    }
    say(`scaling, N=${n}`);
    const docker = await boot(ctx, results, 'docker', n);
    results.scaling.push({ n, docker, floor: await floor(ctx, n) });
  }

  // 3. RPC capacity against one real instance per host.
  for (const target of ['peer', 'fake', 'docker'] as const) {
    say(`RPC capacity: get_console_output on ${HOSTS[target]}`);
    await bootAndDelete(ctx.api, {
      ...bootOptions(ctx, target, 1, `rpc-${target}`),
      whileActive: async (servers) => {
        const server = servers[0];
        const rpc = ctx.rpc;
        if (!server || server.status !== 'ACTIVE' || !rpc) {
          results.errors.push(`rpc ${target}: no ACTIVE instance on ${HOSTS[target]}, no RPC run`);
          return;
        }
        const instance = (await rpc.conductor.instanceGetByUuid(adminContext(), server.id)).toPrimitive();
        for (const concurrency of RPC_CONCURRENCY) {
          const load = round(loadavg()[0] ?? 0, 2);
          const names = processNames(ctx);
          const before = await snapshotCpu(names);
          const capacity = await consoleOutputCapacity(rpc.client, { host: HOSTS[target], instance, concurrency, durationMs: RPC_DURATION_MS, warmupMs: RPC_WARMUP_MS });
          const run = { ...capacity, cpu: cpuUsage(before, await snapshotCpu(names)), load_1m: load };
          say(`  ${LABELS[target]}, ${concurrency} in flight: ${run.calls_per_s} calls/s, p50 ${run.p50_ms} ms, p99 ${run.p99_ms} ms, ${run.errors} errors`);
          if (run.first_error) results.errors.push(`rpc ${target} c=${concurrency}: ${run.first_error}`);
          results.rpc.push(run);
        }
      },
    });
  }

  // 2. Per-boot latency breakdown: Berth+Docker again, now with the timing hook, N sequential single boots.
  say(`latency breakdown: ${BREAKDOWN_BOOTS} sequential boots on ${HOSTS.docker} with the timing hook`);
  await ctx.hosts.docker?.stop();
  delete ctx.hosts.docker;
  const timings = join(tmpdir(), `berth-bench-timings-${process.pid}.jsonl`);
  await rm(timings, { force: true });
  const hook = join(__dirname, 'timing-hook.js');
  const timed = (await startHost('docker', berthEnv([hook], { BERTH_BENCH_TIMINGS: timings })));
  ctx.hosts.docker = timed;
  // One boot first, unmeasured: the restarted process's first request (connections, caches) is not a typical boot.
  await bootAndDelete(ctx.api, bootOptions(ctx, 'docker', 1, 'bd-warm'));
  const posts: Array<{ uuid: string; sentAt: number; apiBootS: number | null }> = [];
  for (let i = 0; i < BREAKDOWN_BOOTS; i++) {
    let uuid: string | null = null;
    const run = await bootAndDelete(ctx.api, {
      ...bootOptions(ctx, 'docker', 1, `bd${i}`),
      whileActive: async (servers) => {
        uuid = servers[0]?.id ?? null;
      },
    });
    if (uuid !== null) posts.push({ uuid, sentAt: run.sent_at_ms, apiBootS: run.boot_s });
    for (const error of run.errors) results.errors.push(`breakdown boot ${i}: ${error}`);
  }
  await timed.stop();
  delete ctx.hosts.docker;
  const events = (await readFile(timings, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as TimingEvent);
  await rm(timings, { force: true });
  const boots = posts.flatMap((p) => {
    const b = breakdownBoot(events, p.uuid, p.sentAt);
    if (!b) results.errors.push(`breakdown: incomplete timing events for ${p.uuid}`);
    return b ? [b] : [];
  });
  results.breakdown = { boots, api_boot_s: posts.flatMap((p) => (p.apiBootS === null ? [] : [p.apiBootS])), ...summariseBreakdowns(boots) };
  say(`  median: ${JSON.stringify(results.breakdown.median)}`);
  if ((await instanceCount(ctx.api)) > 0) results.errors.push('servers were left after the runs');
}

function computeRatios(results: Results): void {
  const r = results.ratios;
  for (const [n, row] of Object.entries(results.boot)) {
    r[`boot_c_d_n${n}`] = ratio(row.docker?.boot_s, row.floor?.boot_s);
    r[`boot_c_a_n${n}`] = ratio(row.docker?.boot_s, row.peer?.boot_s);
    r[`boot_b_a_n${n}`] = ratio(row.fake?.boot_s, row.peer?.boot_s);
    r[`delete_c_d_n${n}`] = ratio(row.docker?.delete_s, row.floor?.delete_s);
    r[`delete_c_a_n${n}`] = ratio(row.docker?.delete_s, row.peer?.delete_s);
    r[`delete_b_a_n${n}`] = ratio(row.fake?.delete_s, row.peer?.delete_s);
    r[`create_end_c_d_n${n}`] = ratio(row.docker?.create_end_s, row.floor?.boot_s);
    r[`create_end_c_a_n${n}`] = ratio(row.docker?.create_end_s, row.peer?.create_end_s);
    r[`create_end_b_a_n${n}`] = ratio(row.fake?.create_end_s, row.peer?.create_end_s);
  }
  for (const s of results.scaling) r[`scaling_c_d_n${s.n}`] = ratio(s.docker.boot_s, s.floor.boot_s);
  const rate = (host: string, c: number): number | null => results.rpc.find((x) => x.host === host && x.concurrency === c)?.calls_per_s ?? null;
  for (const c of RPC_CONCURRENCY) {
    r[`rpc_berth_docker_vs_peer_c${c}`] = ratio(rate(HOSTS.docker, c), rate(HOSTS.peer, c));
    r[`rpc_berth_fake_vs_peer_c${c}`] = ratio(rate(HOSTS.fake, c), rate(HOSTS.peer, c));
  }
  const m = results.memory_kib;
  r['rss_idle_berth_fake_vs_peer'] = ratio(m.fake?.idle, m.peer?.idle);
  r['rss_idle_berth_docker_vs_peer'] = ratio(m.docker?.idle, m.peer?.idle);
  r[`rss_n${MEMORY_N}_berth_fake_vs_peer`] = ratio(m.fake?.after_n, m.peer?.after_n);
  r[`rss_n${MEMORY_N}_berth_docker_vs_peer`] = ratio(m.docker?.after_n, m.peer?.after_n);

  const n20 = THROUGHPUT_N[0];
  const worst = (keys: string[]): number | null => {
    const values = keys.map((k) => r[k]).filter((v): v is number => typeof v === 'number');
    return values.length === keys.length ? Math.max(...values) : null;
  };
  const berthRate = Math.max(...RPC_CONCURRENCY.map((c) => rate(HOSTS.docker, c) ?? 0));
  const target = (what: string, text: string, value: number | null, ok: (v: number) => boolean): void => {
    results.targets.push({ what, target: text, value, met: value === null ? null : ok(value) });
  };
  target(`boot c/d at N=${n20}`, '<= 1.15', r[`boot_c_d_n${n20}`] ?? null, (v) => v <= 1.15);
  target('boot c/a (worst N)', '<= 1.0', worst(THROUGHPUT_N.map((n) => `boot_c_a_n${n}`)), (v) => v <= 1.0);
  target('boot b/a (worst N)', '<= 0.33', worst(THROUGHPUT_N.map((n) => `boot_b_a_n${n}`)), (v) => v <= 0.33);
  target('RSS Berth/nova-compute (worst)', '<= 0.33', worst(Object.keys(r).filter((k) => k.startsWith('rss_'))), (v) => v <= 0.33);
  target('CALLs/s Berth+Docker (best concurrency)', '>= 2000', berthRate || null, (v) => v >= 2000);
}

function topGroups(cpu: CpuUsage, count = 5): string {
  return Object.entries(cpu.groups)
    .slice(0, count)
    .map(([group, seconds]) => `${group.replace(/ \(.*\)$/, '').replace(/^[a-d]: /, '')} ${seconds.toFixed(1)}`)
    .join(', ');
}

function renderTable(results: Results, out: string): string {
  const lines: string[] = [];
  const f = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));
  const pad = (text: string, width: number): string => text.padEnd(width);
  lines.push('', `Berth benchmark ${results.date} (${results.settings['scale']}), load before ${JSON.stringify(results.machine['load_before'])} after ${JSON.stringify(results.machine['load_after'])}`);
  const apiRuns = Object.values(results.boot).flatMap((row) => [row.peer, row.fake, row.docker]).filter((r): r is MeasuredBoot => r?.boot_s != null);
  const pollGap = apiRuns.reduce((a, r) => a + (r.boot_s ?? 0), 0) / Math.max(1, apiRuns.reduce((a, r) => a + r.polls, 0));
  lines.push('', `Boot N servers through nova-api until all ACTIVE / delete until gone (seconds; API clock: a poll every ${f(pollGap)} s on average):`);
  lines.push(`  ${pad('N', 5)}${pad('a peer', 16)}${pad('b Berth fake', 16)}${pad('c Berth docker', 16)}${pad('d raw docker', 16)}${pad('c/d', 7)}${pad('c/a', 7)}b/a`);
  for (const [n, row] of Object.entries(results.boot)) {
    const cell = (run: { boot_s: number | null; delete_s: number | null } | undefined): string => pad(`${f(run?.boot_s)} / ${f(run?.delete_s)}`, 16);
    lines.push(
      `  ${pad(n, 5)}${cell(row.peer)}${cell(row.fake)}${cell(row.docker)}${cell(row.floor)}` +
        `${pad(f(results.ratios[`boot_c_d_n${n}`]), 7)}${pad(f(results.ratios[`boot_c_a_n${n}`]), 7)}${f(results.ratios[`boot_b_a_n${n}`])}`,
    );
  }
  for (const [n, row] of Object.entries(results.boot)) {
    if (!row.rounds || (row.rounds['peer']?.length ?? 0) < 2) continue;
    const list = (target: string): string => (row.rounds?.[target] ?? []).map((r) => f(r.boot_s)).join(' ');
    lines.push(`  N=${n}, each round's boot seconds (the row above is the median): a ${list('peer')} | b ${list('fake')} | c ${list('docker')} | d ${list('floor')}`);
  }
  lines.push('', 'The same runs by the notification clock: POST → last instance.create.end (seconds; the floor as above):');
  lines.push(`  ${pad('N', 5)}${pad('a peer', 16)}${pad('b Berth fake', 16)}${pad('c Berth docker', 16)}${pad('d raw docker', 16)}${pad('c/d', 7)}${pad('c/a', 7)}b/a`);
  for (const [n, row] of Object.entries(results.boot)) {
    lines.push(
      `  ${pad(n, 5)}${pad(f(row.peer?.create_end_s), 16)}${pad(f(row.fake?.create_end_s), 16)}${pad(f(row.docker?.create_end_s), 16)}${pad(f(row.floor?.boot_s), 16)}` +
        `${pad(f(results.ratios[`create_end_c_d_n${n}`]), 7)}${pad(f(results.ratios[`create_end_c_a_n${n}`]), 7)}${f(results.ratios[`create_end_b_a_n${n}`])}`,
    );
  }
  const first = results.boot[String(THROUGHPUT_N[0])];
  if (first) {
    lines.push('', `CPU seconds while the N=${THROUGHPUT_N[0]} servers came up (all cores; top 5 of /proc):`);
    for (const target of ['peer', 'fake', 'docker'] as const) {
      const cpu = first[target]?.cpu.boot;
      if (cpu) lines.push(`  ${pad(target, 8)}${f(cpu.busy_s, 1)} busy in ${f(cpu.wall_s, 1)} s: ${topGroups(cpu)}`);
    }
    if (first.floor) lines.push(`  ${pad('floor', 8)}${f(first.floor.cpu.busy_s, 1)} busy in ${f(first.floor.cpu.wall_s, 1)} s: ${topGroups(first.floor.cpu)}`);
  }
  lines.push('', 'Scaling, Berth+Docker vs raw Docker (boot seconds):');
  lines.push(`  ${results.scaling.map((s) => `N=${s.n}: ${f(s.docker.boot_s)} vs ${f(s.floor.boot_s)} (c/d ${f(ratio(s.docker.boot_s, s.floor.boot_s))})`).join('; ')}`);
  const bd = results.breakdown;
  if (bd) {
    lines.push('', `Per-boot breakdown, Berth+Docker, ${bd.boots.length} sequential boots (median / p95, ms):`);
    const row = (label: string, key: string): string => `  ${pad(label, 40)}${f(bd.median[key], 1)} / ${f(bd.p95[key], 1)}`;
    lines.push(row('POST → RPC received (control plane)', 'before_rpc_ms'));
    lines.push(row('RPC received → container running', 'received_to_running_ms'));
    lines.push(row('container running → ACTIVE saved', 'running_to_active_ms'));
    lines.push(row('received → ACTIVE saved', 'total_ms'));
    lines.push(row('  of which Docker', 'docker_ms'));
    lines.push(row('  of which conductor round trips', 'conductor_ms'));
    lines.push(row('  of which other I/O (notify, cast)', 'other_io_ms'));
    lines.push(row("  of which Berth's own", 'berth_ms'));
    lines.push(`  ${pad('POST → ACTIVE seen by the API (s)', 40)}${f(median(bd.api_boot_s))}`);
  }
  lines.push('', 'get_console_output CALLs (calls/s, p50 / p99 ms):');
  for (const run of results.rpc) {
    lines.push(`  ${pad(run.host, 22)}${pad(`${run.concurrency} in flight`, 14)}${pad(String(run.calls_per_s), 8)}${pad(`${f(run.p50_ms)} / ${f(run.p99_ms)}`, 18)}${run.errors ? `(${run.errors} errors) ` : ''}CPU: ${topGroups(run.cpu, 4)}`);
  }
  lines.push('', `RSS (MiB), idle 30 s after start / with ${MEMORY_N} instances:`);
  for (const [target, m] of Object.entries(results.memory_kib)) {
    lines.push(`  ${pad(LABELS[target as Target], 32)}${f(m.idle / 1024, 1)} / ${f(m.after_n === null ? null : m.after_n / 1024, 1)}`);
  }
  lines.push('', 'Targets:');
  for (const t of results.targets) {
    lines.push(`  ${pad(t.what, 42)}${pad(t.target, 10)}${pad(f(t.value), 10)}${t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED'}`);
  }
  if (results.errors.length) lines.push('', `Errors (${results.errors.length}):`, ...results.errors.slice(0, 10).map((e) => `  ${e.split('\n')[0]}`));
  lines.push('', `${results.duration_s} s in all; results in ${out}`, '');
  return lines.join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
