// Boot throughput through the real Nova API: one POST /servers for N servers forced onto one host, clocked until
// GET /servers/detail shows all N ACTIVE; then N DELETEs, clocked until the list is empty.
import { randomBytes } from 'node:crypto';

import type { NotificationClock } from './notification-clock';
import type { OpenStackApi, ServerSummary } from './openstack-api';

/** How often GET /servers/detail is polled, start to start (the lab's bench.py: 0.25 s). */
export const POLL_MS = 250;
/** DELETE calls in flight (nova-api runs 2 uwsgi workers; more would only queue there). */
const DELETE_CONCURRENCY = 4;

export interface BootRunOptions {
  readonly host: string;
  readonly count: number;
  readonly imageRef: string;
  readonly flavorRef: string;
  /** A short label that goes into the server names: `bench-<label>-<count>-<random>`, Nova appends `-<i>` when N > 1. */
  readonly label: string;
  readonly timeoutMs: number;
  /** Times the same runs by the computes' instance.create.end / instance.delete.end notifications as well. */
  readonly clock?: NotificationClock;
  /** Runs once all are ACTIVE (or failed), before the delete; not part of any clock. */
  readonly whileActive?: (servers: readonly ServerSummary[]) => Promise<void>;
}

export interface BootRun {
  readonly host: string;
  readonly n: number;
  /** When the POST was sent (epoch ms), to line up with Berth's own timestamps. */
  readonly sent_at_ms: number;
  /** POST /servers until it answered. */
  readonly post_s: number;
  /** POST sent until the poll that saw all N ACTIVE; null when not all became ACTIVE in time. */
  readonly boot_s: number | null;
  /** First DELETE sent until the poll that saw none left; null when some were left at the timeout. */
  readonly delete_s: number | null;
  /** POST sent until the last instance.create.end arrived (the notification clock); null without one. */
  readonly create_end_s: number | null;
  /** First DELETE sent until the last instance.delete.end arrived; null without one. */
  readonly delete_end_s: number | null;
  readonly active: number;
  /** ERROR servers with their fault, and a note when the run timed out. */
  readonly errors: readonly string[];
  readonly polls: number;
}

const seconds = (fromMs: number): number => Math.round((performance.now() - fromMs)) / 1000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `probe` every POLL_MS (start to start) until it returns a value, or null at the deadline. */
async function pollUntil<T>(deadline: number, probe: () => Promise<T | null>): Promise<{ value: T | null; polls: number }> {
  let polls = 0;
  while (performance.now() < deadline) {
    const started = performance.now();
    polls++;
    const value = await probe();
    if (value !== null) return { value, polls };
    await sleep(Math.max(0, POLL_MS - (performance.now() - started)));
  }
  return { value: null, polls };
}

export async function bootAndDelete(api: OpenStackApi, options: BootRunOptions): Promise<BootRun> {
  const prefix = `bench-${options.label}-${options.count}-${randomBytes(3).toString('hex')}`;
  const errors: string[] = [];
  const sentAt = performance.timeOrigin + performance.now();
  const started = performance.now();
  await api.bootServers({ name: prefix, imageRef: options.imageRef, flavorRef: options.flavorRef, host: options.host, count: options.count });
  const post = seconds(started);

  let last: ServerSummary[] = [];
  const booted = await pollUntil(started + options.timeoutMs, async () => {
    last = await api.listServers(prefix);
    const settled = last.filter((s) => s.status === 'ACTIVE' || s.status === 'ERROR');
    return last.length === options.count && settled.length === options.count ? seconds(started) : null;
  });
  const active = last.filter((s) => s.status === 'ACTIVE').length;
  const ids = last.map((s) => s.id);
  const createEnd = booted.value !== null && active === options.count ? await options.clock?.waitForLast('instance.create.end', ids, 10_000) : null;
  for (const s of last.filter((s) => s.status === 'ERROR')) errors.push(`${s.name}: ERROR: ${s.fault?.message ?? 'no fault'}`);
  if (booted.value === null) {
    errors.push(`timed out after ${options.timeoutMs / 1000} s: ${last.length} listed, ${active} ACTIVE (${summarise(last)})`);
  }
  if (options.whileActive) await options.whileActive(last);

  // The listing already holds every id when all were listed; otherwise the delete lists them itself.
  const deleted = await deleteAll(api, prefix, options.timeoutMs, last.length === options.count ? ids : undefined);
  const deleteEnd = deleted.value !== null && ids.length > 0 ? await options.clock?.waitForLast('instance.delete.end', ids, 10_000) : null;
  if (deleted.value === null) errors.push(`delete timed out after ${options.timeoutMs / 1000} s`);
  return {
    host: options.host,
    n: options.count,
    sent_at_ms: Math.round(sentAt * 1000) / 1000,
    post_s: post,
    boot_s: errors.length === 0 ? booted.value : null,
    delete_s: deleted.value,
    create_end_s: createEnd ? Math.round(createEnd - sentAt) / 1000 : null,
    delete_end_s: deleteEnd ? Math.round(deleteEnd - deleted.sentAt) / 1000 : null,
    active,
    errors,
    polls: booted.polls,
  };
}

/** Deletes every server named `<prefix>…` (DELETE_CONCURRENCY at a time) and clocks until none is listed. */
export async function deleteAll(
  api: OpenStackApi,
  prefix: string,
  timeoutMs: number,
  knownIds?: readonly string[],
): Promise<{ value: number | null; polls: number; sentAt: number }> {
  const sentAt = performance.timeOrigin + performance.now();
  const started = performance.now();
  const ids = knownIds ?? (await api.listServers(prefix)).map((s) => s.id);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(DELETE_CONCURRENCY, ids.length) }, async () => {
      while (next < ids.length) {
        const id = ids[next++];
        if (id !== undefined) await api.deleteServer(id);
      }
    }),
  );
  const gone = await pollUntil(started + timeoutMs, async () => ((await api.listServers(prefix)).length === 0 ? seconds(started) : null));
  return { ...gone, sentAt };
}

function summarise(servers: readonly ServerSummary[]): string {
  const counts = new Map<string, number>();
  for (const s of servers) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ') || 'none';
}
