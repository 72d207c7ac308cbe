// Where the machine's CPU went during a measurement: utime + stime of every process from /proc, grouped by what it
// is (nova-api, nova-conductor, RabbitMQ, dockerd, Berth, …), and the machine's busy time from /proc/stat, diffed
// between two snapshots. A process that started and exited in between is "unaccounted" (the machine total minus
// what the living processes explain), except runc and the like, which count with the Docker process that reaped them.
import { readdir, readFile } from 'node:fs/promises';

/** Linux USER_HZ. */
const TICKS_PER_S = 100;

export interface CpuSnapshot {
  readonly atMs: number;
  /** Busy ticks of all CPUs together (/proc/stat: everything but idle and iowait). */
  readonly busyTicks: number;
  /** Ticks per process, with its group. */
  readonly processes: ReadonlyMap<number, { readonly group: string; readonly ticks: number }>;
}

export interface CpuUsage {
  readonly wall_s: number;
  /** CPU seconds the whole machine was busy (all cores). */
  readonly busy_s: number;
  /** CPU seconds per group, largest first; `unaccounted` is busy time no listed process explains. */
  readonly groups: Record<string, number>;
}

/** Names a process by its command line; `names` maps pids to a name first (the compute hosts under test). */
export function groupOf(pid: number, cmdline: string, names: ReadonlyMap<number, string>): string {
  const named = names.get(pid);
  if (named) return named;
  const rules: Array<[RegExp, string]> = [
    [/nova-api/, 'nova-api'],
    [/nova-conductor/, 'nova-conductor'],
    [/nova-scheduler/, 'nova-scheduler'],
    [/nova-compute/, 'nova-compute (other hosts)'],
    [/placement/, 'placement'],
    [/keystone/, 'keystone'],
    [/glance/, 'glance'],
    [/beam\.smp|rabbitmq/, 'rabbitmq'],
    [/mariadbd|mysqld/, 'mariadb'],
    [/^dockerd/, 'dockerd'],
    [/containerd-shim/, 'containerd-shim'],
    [/containerd/, 'containerd'],
    [/fake-neutron/, 'fake-neutron'],
    [/cli\.js/, 'berth (other hosts)'],
    [/mocha|npm exec/, 'other test runs'],
    [/\bopenstack\b|nova-manage/, 'openstack CLI'],
  ];
  for (const [pattern, group] of rules) if (pattern.test(cmdline)) return group;
  return 'other processes';
}

/** Groups whose reaped children are counted with them: runc runs and exits under containerd's shims. */
const WITH_CHILDREN = new Set(['dockerd', 'containerd-shim', 'containerd']);

async function processTicks(pid: number, names: ReadonlyMap<number, string>): Promise<{ ticks: number; group: string } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
    if (!cmdline) return null; // a kernel thread
    const group = groupOf(pid, cmdline, names);
    // utime, stime, cutime, cstime: fields 14-17 of stat, i.e. 11-14 after the command name. cutime/cstime is what
    // the reaped children used, whenever they ran: counted only for the engine's own processes, not for, say, a
    // shell that reaps a test suite that ran for minutes.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    const children = WITH_CHILDREN.has(group) ? Number(fields[13]) + Number(fields[14]) : 0;
    return { ticks: own + children, group };
  } catch {
    return null; // exited meanwhile
  }
}

export async function snapshotCpu(names: ReadonlyMap<number, string>): Promise<CpuSnapshot> {
  const atMs = performance.now();
  const cpuLine = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpuLine.trim().split(/\s+/).map(Number);
  const processes = new Map<number, { group: string; ticks: number }>();
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  await Promise.all(
    pids.map(async (pid) => {
      const info = await processTicks(Number(pid), names);
      if (info) processes.set(Number(pid), info);
    }),
  );
  return { atMs, busyTicks: user + nice + system + irq + softirq + steal, processes };
}

export function cpuUsage(before: CpuSnapshot, after: CpuSnapshot): CpuUsage {
  const groups = new Map<string, number>();
  for (const [pid, now] of after.processes) {
    const then = before.processes.get(pid);
    const ticks = now.ticks - (then?.ticks ?? 0);
    if (ticks > 0) groups.set(now.group, (groups.get(now.group) ?? 0) + ticks);
  }
  const busy = after.busyTicks - before.busyTicks;
  const accounted = [...groups.values()].reduce((a, b) => a + b, 0);
  if (busy > accounted) groups.set('unaccounted', busy - accounted);
  const sorted = Object.fromEntries([...groups].sort((a, b) => b[1] - a[1]).map(([group, ticks]) => [group, ticks / TICKS_PER_S]));
  return { wall_s: Math.round(after.atMs - before.atMs) / 1000, busy_s: busy / TICKS_PER_S, groups: sorted };
}
