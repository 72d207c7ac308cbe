// The compute services under test, each its own Nova host on the one control plane: the Python peer (Debian's
// nova-compute with fake.FakeDriver, through control-plane.sh), Berth with driver/fake and Berth with driver/docker
// (its CLI from this build, with the e2e harness's config overlay). Their process ids, start times and memory.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { AIO, type ConfigOverrides, discoverHosts, nodeFlagsOf, overlayConfig, renderConfig, runControlPlaneScript } from '../test/e2e/support';

export type HostKind = 'nova-compute' | 'berth-fake' | 'berth-docker';

export interface ComputeHost {
  readonly name: string;
  readonly kind: HostKind;
  readonly pid: number;
  /** When the process started (epoch ms). */
  readonly startedAt: number;
  stop(): Promise<void>;
}

/** /proc/<pid>/status VmRSS, KiB. */
export async function vmRssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** Epoch ms at which `pid` started (/proc/<pid>/stat starttime after /proc/stat btime; USER_HZ is 100 on Linux). */
async function processStartMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  const btime = Number(/^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1]);
  return btime * 1000 + (ticks / 100) * 1000;
}

/** Debian's nova-compute with fake.FakeDriver as `host`, started and mapped to cell1 by control-plane.sh. */
export async function startPeer(host: string): Promise<ComputeHost> {
  await runControlPlaneScript(['fake-compute', host]);
  const pidFile = join('/run/berth-aio', `nova-compute-${host}.pid`);
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  if (!cmdline.includes('nova-compute')) throw new Error(`${pidFile} names pid ${pid}, which is not nova-compute: ${cmdline}`);
  return {
    name: host,
    kind: 'nova-compute',
    pid,
    startedAt: await processStartMs(pid),
    stop: async () => {
      await runControlPlaneScript(['stop-fake-compute', host]);
    },
  };
}

export interface BerthHostOptions {
  readonly host: string;
  readonly driver: 'fake' | 'docker';
  readonly config?: ConfigOverrides;
  /** Extra environment (NODE_OPTIONS with the timing hook or the CPU profiler). */
  readonly env?: Readonly<Record<string, string>>;
}

export class BerthStartError extends Error {
  override readonly name = 'BerthStartError';
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Berth's CLI from this build as `host`, up (service record, compute node, Placement) and mapped to cell1. Its
 * output goes straight to /var/log/berth-aio/berth-<host>.log, as nova-compute's goes to its log file: no pipe
 * into this process, whose CPU would otherwise be spent on Berth's log lines during the measurements.
 */
export async function startBerthHost(options: BerthHostOptions): Promise<ComputeHost> {
  const { docker: dockerSection, ...rest } = options.config ?? {};
  const sections = overlayConfig(options.host, { ...rest, docker: { ...dockerSection, driver: options.driver } });
  await mkdir(String(sections['DEFAULT']?.['state_path']), { recursive: true, mode: 0o700 });
  const overlay = join(AIO.stateDir, options.host, 'bench-overlay.conf');
  await writeFile(overlay, renderConfig(sections), { mode: 0o600 });
  const logFile = join(AIO.logDir, `berth-${options.host}.log`);
  const from = await stat(logFile).then((s) => s.size, () => 0);
  const out = openSync(logFile, 'a');
  const cli = process.env['BERTH_CLI'] ?? join(__dirname, '..', 'src', 'cli.js');
  const child = spawn(process.execPath, [...nodeFlagsOf(cli), cli, '--config-file', AIO.berthConf, '--config-file', overlay], {
    stdio: ['ignore', out, out],
    env: { ...process.env, ...options.env },
  });
  closeSync(out);
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new BerthStartError(`berth ${options.host} did not start`);
  const startedAt = await processStartMs(pid);

  const deadline = Date.now() + 120_000;
  let dead: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void exited.then((exit) => {
    dead = exit;
  });
  for (;;) {
    const text = (await readFile(logFile)).subarray(from).toString('utf8');
    if (text.includes('"msg":"berth-compute is up"')) break;
    if (dead !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      const why = dead === null ? 'did not come up in 120 s' : `exited (${JSON.stringify(dead)})`;
      throw new BerthStartError(`berth ${options.host} ${why}; last output:\n${text.split('\n').slice(-15).join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await discoverHosts();
  return {
    name: options.host,
    kind: options.driver === 'fake' ? 'berth-fake' : 'berth-docker',
    pid,
    startedAt,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const exit = await exited;
      clearTimeout(timer);
      if (exit.code !== 0) throw new BerthStartError(`berth ${options.host} exited with ${JSON.stringify(exit)} on SIGTERM`);
    },
  };
}

/** Berth's per-host state directory (startBerth's default state_path). */
export async function removeBerthState(host: string): Promise<void> {
  await rm(join(AIO.stateDir, host), { recursive: true, force: true });
}
