// Where one boot's time goes inside Berth, from the timing hook's events (timing-hook.ts): the span from the
// build_and_run_instance delivery to the conductor's answer to the ACTIVE Instance.save, cut at the end of the
// driver's spawn (container running), and split into Docker's time (Engine API requests), conductor round trips,
// other I/O (notification publishes, casts, HTTP) and what is left: Berth's own time (CPU, the event loop, queues).
import type { TimingEvent, TimingKind } from './timing-hook';
import { percentile, round } from './stats';

export interface BootBreakdown {
  readonly uuid: string;
  /** POST /servers sent → the delivery on Berth's queue (nova-api, scheduler, conductor, RabbitMQ); null if unknown. */
  readonly before_rpc_ms: number | null;
  readonly received_to_running_ms: number;
  readonly running_to_active_ms: number;
  /** received → ACTIVE saved */
  readonly total_ms: number;
  readonly docker_ms: number;
  readonly conductor_ms: number;
  readonly other_io_ms: number;
  readonly berth_ms: number;
  readonly conductor_calls: number;
  readonly docker_calls: number;
  /** Every timed call of the boot, in order: ms from the delivery to its start, and its duration. */
  readonly calls: ReadonlyArray<{ readonly k: TimingKind; readonly name: string; readonly at_ms: number; readonly ms: number }>;
}

type Category = 'docker' | 'conductor' | 'other_io';
/** When intervals overlap, the time goes to the first category that covers it. */
const PRIORITY: readonly Category[] = ['docker', 'conductor', 'other_io'];
const CATEGORY: Partial<Record<TimingKind, Category>> = { docker: 'docker', conductor: 'conductor', notify: 'other_io', cast: 'other_io', http: 'other_io' };

interface Interval {
  readonly s: number;
  readonly e: number;
  readonly category: Category;
}

/** Milliseconds of [from, to] covered by each category, overlaps counted once (by PRIORITY). */
function attribute(intervals: readonly Interval[], from: number, to: number): Record<Category, number> {
  const out: Record<Category, number> = { docker: 0, conductor: 0, other_io: 0 };
  const clipped = intervals.map((i) => ({ ...i, s: Math.max(i.s, from), e: Math.min(i.e, to) })).filter((i) => i.e > i.s);
  const cuts = [...new Set(clipped.flatMap((i) => [i.s, i.e]))].sort((a, b) => a - b);
  for (let k = 0; k + 1 < cuts.length; k++) {
    const a = cuts[k] as number;
    const b = cuts[k + 1] as number;
    const mid = (a + b) / 2;
    const covering = PRIORITY.find((category) => clipped.some((i) => i.category === category && i.s <= mid && mid <= i.e));
    if (covering) out[covering] += b - a;
  }
  return out;
}

/** The breakdown of the boot of `uuid`; null when its events are incomplete (the build failed, a hook missed). */
export function breakdownBoot(events: readonly TimingEvent[], uuid: string, postSentAt: number | null): BootBreakdown | null {
  const delivery = events.find((e) => e.k === 'rpc' && e.name === 'build_and_run_instance' && e.uuid === uuid);
  if (!delivery || delivery.t === undefined) return null;
  const store = delivery.store;
  const mine = events.filter((e) => e.store === store && e.s !== undefined && e.e !== undefined);
  const spawn = mine.find((e) => e.k === 'driver' && e.name === 'spawn');
  const activeSave = mine.find((e) => e.k === 'conductor' && e.name === 'Instance.save' && e.vm_state === 'active');
  if (!spawn?.e || !activeSave?.e) return null;
  const from = delivery.t;
  const to = activeSave.e;
  const intervals: Interval[] = mine.flatMap((e) => {
    const category = CATEGORY[e.k];
    return category && e.s !== undefined && e.e !== undefined ? [{ s: e.s, e: e.e, category }] : [];
  });
  const split = attribute(intervals, from, to);
  const total = to - from;
  const within = (e: TimingEvent): boolean => e.s !== undefined && e.s >= from && e.s <= to;
  return {
    uuid,
    before_rpc_ms: postSentAt === null ? null : round(from - postSentAt, 1),
    received_to_running_ms: round(spawn.e - from, 1),
    running_to_active_ms: round(to - spawn.e, 1),
    total_ms: round(total, 1),
    docker_ms: round(split.docker, 1),
    conductor_ms: round(split.conductor, 1),
    other_io_ms: round(split.other_io, 1),
    berth_ms: round(total - split.docker - split.conductor - split.other_io, 1),
    conductor_calls: mine.filter((e) => e.k === 'conductor' && within(e)).length,
    docker_calls: mine.filter((e) => e.k === 'docker' && within(e)).length,
    calls: mine
      .filter(within)
      .sort((a, b) => (a.s as number) - (b.s as number))
      .map((e) => ({ k: e.k, name: e.name ?? '', at_ms: round((e.s as number) - from, 1), ms: round((e.e as number) - (e.s as number), 1) })),
  };
}

type NumericKey = Exclude<keyof BootBreakdown, 'uuid' | 'calls'>;
const KEYS: readonly NumericKey[] = [
  'before_rpc_ms',
  'received_to_running_ms',
  'running_to_active_ms',
  'total_ms',
  'docker_ms',
  'conductor_ms',
  'other_io_ms',
  'berth_ms',
  'conductor_calls',
  'docker_calls',
];

/** Median and p95 of every column over the boots. */
export function summariseBreakdowns(boots: readonly BootBreakdown[]): { median: Record<string, number | null>; p95: Record<string, number | null> } {
  const column = (key: NumericKey): number[] => boots.flatMap((b) => (b[key] === null ? [] : [b[key] as number]));
  const median: Record<string, number | null> = {};
  const p95: Record<string, number | null> = {};
  for (const key of KEYS) {
    median[key] = percentile(column(key), 0.5);
    p95[key] = percentile(column(key), 0.95);
  }
  return { median, p95 };
}
