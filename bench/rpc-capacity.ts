// RPC capacity of a compute service: `get_console_output` CALLs on `compute.<host>` for a fixed time with a fixed
// number in flight, from one RpcClient (Berth's own, the same for every host), against a real instance on that host.
import { adminContext } from '../src/messaging/context';
import type { RpcClient } from '../src/messaging/rpc-client';
import type { Target } from '../src/messaging/types';
import { percentile, round } from './stats';

/** What nova-api's compute rpcapi sends get_console_output as (Zed: 6.0). */
const COMPUTE_TARGET_VERSION = '6.0';
/** Lines asked for, as `openstack console log show --lines 10` would. */
const TAIL_LENGTH = 10;

export interface CapacityOptions {
  readonly host: string;
  /** The instance as a nova_object primitive (Instance.get_by_uuid through the conductor). */
  readonly instance: unknown;
  readonly concurrency: number;
  readonly durationMs: number;
  /** Calls before the clock starts (connections, JIT, caches). */
  readonly warmupMs: number;
}

export interface CapacityRun {
  readonly host: string;
  readonly concurrency: number;
  readonly duration_s: number;
  readonly calls: number;
  readonly calls_per_s: number;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly errors: number;
  readonly first_error: string | null;
}

export async function consoleOutputCapacity(client: RpcClient, options: CapacityOptions): Promise<CapacityRun> {
  const target: Target = { topic: 'compute', server: options.host, version: COMPUTE_TARGET_VERSION };
  const args = { instance: options.instance, tail_length: TAIL_LENGTH };
  const context = adminContext();
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let measuring = false;
  let stop = false;

  const worker = async (): Promise<void> => {
    while (!stop) {
      const started = performance.now();
      try {
        const output = await client.call(context, target, 'get_console_output', args);
        if (typeof output !== 'string') throw new Error(`get_console_output returned ${typeof output}`);
        if (measuring) latencies.push(performance.now() - started);
      } catch (err) {
        if (measuring) errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
  measuring = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, options.durationMs));
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(workers);
  const p50 = percentile(latencies, 0.5);
  const p99 = percentile(latencies, 0.99);
  return {
    host: options.host,
    concurrency: options.concurrency,
    duration_s: round(elapsed, 2),
    calls: latencies.length,
    calls_per_s: Math.round(latencies.length / elapsed),
    p50_ms: p50 === null ? null : round(p50, 2),
    p99_ms: p99 === null ? null : round(p99, 2),
    errors,
    first_error: firstError,
  };
}
