// The service lifecycle: explicit states, Nova's start-up order, periodic tasks, graceful drain on SIGTERM.
//   INITIALIZED → STARTING → RUNNING → STOPPING → DRAINING → STOPPED   (any failure while starting → FAILED)
// Start-up follows nova/service.py + ComputeManager (nova-compute-protocol.md §5.4): connect, wait for the conductor,
// init the driver, init_host (reconcile instances), register the Service record, update resources (ComputeNode +
// Placement), then consume the bus, heartbeat and run the periodic tasks.
import { EventEmitter } from 'node:events';
import type { ComputeDriver, LifecycleEvent } from '../driver/driver';
import type { Logger } from './log';
import type { DrainReport, MessagingSession, RpcClient, RpcServer } from './messaging';
import { adminContext } from './messaging';
import type { ConductorClient } from './conductor';
import type { ComputeManager } from './compute/manager';
import type { ResourceTracker } from './compute/resource-tracker';
import type { ServiceRecord } from './compute/service-record';

export type ServiceState = 'INITIALIZED' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'DRAINING' | 'STOPPED' | 'FAILED';

export interface PeriodicIntervals {
  /** update_available_resource (Nova: every periodic tick, 60 s) */
  readonly updateResourcesSec: number;
  /** _sync_power_states (sync_power_state_interval; ≤ 0 disables) */
  readonly syncPowerStatesSec: number;
  /** _cleanup_running_deleted_instances (running_deleted_instance_poll_interval; ≤ 0 disables) */
  readonly reapOrphansSec: number;
  /** _sync_scheduler_instance_info (scheduler_instance_sync_interval; ≤ 0 disables) */
  readonly syncSchedulerSec: number;
  /** _run_image_cache_manager_pass ([image_cache] manager_interval; ≤ 0 disables, as does leaving it out) */
  readonly imageCacheManagerSec?: number;
  /** Random delay before the first run of each periodic task (periodic_fuzzy_delay), seconds. */
  readonly fuzzyDelaySec: number;
}

export interface ComputeServiceParts {
  readonly session: MessagingSession;
  readonly rpcClient: RpcClient;
  readonly rpcServer: RpcServer;
  readonly conductor: ConductorClient;
  readonly driver: ComputeDriver;
  readonly manager: ComputeManager;
  readonly resourceTracker: ResourceTracker;
  readonly serviceRecord: ServiceRecord;
  readonly intervals: PeriodicIntervals;
  /** graceful_shutdown_timeout: how long in-flight work may take after SIGTERM. */
  readonly graceMs: number;
  readonly logger: Logger;
}

export class ComputeService extends EventEmitter {
  private stateValue: ServiceState = 'INITIALIZED';
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();
  private unsubscribeEvents: (() => void) | null = null;
  private stopping: Promise<DrainReport | null> | null = null;
  private readonly abort = new AbortController();
  private readonly log: Logger;

  constructor(private readonly parts: ComputeServiceParts) {
    super();
    this.log = parts.logger.child({ component: 'service' });
  }

  get state(): ServiceState {
    return this.stateValue;
  }

  private setState(state: ServiceState): void {
    this.log.info({ from: this.stateValue, to: state }, 'service state %s', state);
    this.stateValue = state;
    this.emit('state', state);
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'INITIALIZED') throw new Error(`cannot start a service in state ${this.stateValue}`);
    this.setState('STARTING');
    const p = this.parts;
    const started = Date.now();
    try {
      await p.session.start();
      this.checkAborted();
      const context = adminContext();
      await p.conductor.waitForConductor(context, { signal: this.abort.signal });
      this.checkAborted();
      await this.retryUntilReady('container runtime', () => p.driver.init());
      this.unsubscribeEvents = p.driver.onLifecycleEvent((event) => this.onLifecycleEvent(event));
      await p.manager.initHost();
      this.checkAborted();
      await p.serviceRecord.register(context);
      p.resourceTracker.setServiceDisabled(p.serviceRecord.disabled);
      p.serviceRecord.onDisabledChange = (disabled) => {
        p.resourceTracker.setServiceDisabled(disabled);
        this.track(p.resourceTracker.updateAvailableResource().catch((err: unknown) => this.log.warn({ err }, 'could not update the COMPUTE_STATUS_DISABLED trait')));
      };
      try {
        await p.resourceTracker.updateAvailableResource(context, true);
      } catch (err) {
        // Nova starts anyway and retries on the next periodic run; the ComputeNode may exist without Placement.
        this.log.error({ err }, 'update_available_resource failed at start-up; retrying periodically');
      }
      this.checkAborted();
      await p.rpcServer.start();
      p.serviceRecord.start();
      this.startPeriodicTasks();
      this.setState('RUNNING');
      this.log.info({ seconds: (Date.now() - started) / 1000 }, 'berth-compute is up');
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.setState('FAILED');
      throw err;
    }
  }

  private checkAborted(): void {
    if (this.abort.signal.aborted) throw new Error('start-up aborted by shutdown');
  }

  /** The runtime may come up after us (dockerd restarting): retry with backoff, as we do for RabbitMQ. */
  private async retryUntilReady(what: string, fn: () => Promise<void>): Promise<void> {
    let delay = 1000;
    for (;;) {
      try {
        await fn();
        return;
      } catch (err) {
        this.checkAborted();
        this.log.error({ err, retry_in_s: delay / 1000 }, '%s is not available; retrying', what);
        await sleep(delay, this.abort.signal);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private onLifecycleEvent(event: LifecycleEvent): void {
    if (this.stateValue !== 'RUNNING' && this.stateValue !== 'STARTING') return;
    this.track(
      this.parts.manager.handleLifecycleEvent(event).catch((err: unknown) =>
        this.log.warn({ err, instance_uuid: event.uuid }, 'lifecycle event handling failed; the periodic sync will retry'),
      ),
    );
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private every(name: string, seconds: number, fn: () => Promise<void>): void {
    if (!(seconds > 0)) return;
    const fuzzy = Math.random() * Math.min(this.parts.intervals.fuzzyDelaySec, seconds) * 1000;
    let busy = false;
    const run = (): void => {
      if (busy || this.stateValue !== 'RUNNING') return;
      busy = true;
      const p = fn()
        .catch((err: unknown) => this.log.error({ err, task: name }, 'periodic task %s failed', name))
        .finally(() => {
          busy = false;
        });
      this.track(p);
    };
    const first = setTimeout(() => {
      run();
      const t = setInterval(run, seconds * 1000);
      t.unref();
      this.timers.push(t);
    }, fuzzy);
    first.unref();
    this.timers.push(first);
  }

  private startPeriodicTasks(): void {
    const p = this.parts;
    const i = p.intervals;
    this.every('update_available_resource', i.updateResourcesSec, async () => {
      p.resourceTracker.setFailedBuilds(p.manager.failedBuilds);
      await p.resourceTracker.updateAvailableResource();
    });
    this.every('_sync_power_states', i.syncPowerStatesSec, () => p.manager.syncPowerStates());
    this.every('_cleanup_running_deleted_instances', i.reapOrphansSec, () => p.manager.reapOrphans(adminContext()));
    this.every('_sync_scheduler_instance_info', i.syncSchedulerSec, () => p.manager.syncSchedulerInstanceInfo());
    this.every('_run_image_cache_manager_pass', i.imageCacheManagerSec ?? -1, async () => {
      await p.manager.imageCache.runPass();
    });
  }

  /**
   * SIGTERM: stop consuming (no new work), stop heartbeats and periodic tasks, let in-flight work finish within the
   * grace period, then close everything. Idempotent.
   */
  stop(): Promise<DrainReport | null> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<DrainReport | null> {
    const p = this.parts;
    const wasStarting = this.stateValue === 'STARTING' || this.stateValue === 'INITIALIZED';
    this.abort.abort();
    this.setState('STOPPING');
    for (const t of this.timers) clearTimeout(t);
    this.unsubscribeEvents?.();
    let report: DrainReport | null = null;
    await p.rpcServer.stopConsuming().catch((err: unknown) => this.log.warn({ err }, 'stop consuming failed'));
    await p.serviceRecord.stop();
    if (!wasStarting) {
      this.setState('DRAINING');
      report = await p.rpcServer.drain(p.graceMs);
      await Promise.race([Promise.allSettled([...this.running]), sleep(1000)]);
      if (!report.drained) {
        this.log.warn({ unfinished: report.unfinished }, 'graceful_shutdown_timeout expired with work in flight; init_host will reconcile it at next start');
      }
      await p.resourceTracker.flush().catch((err: unknown) => this.log.warn({ err }, 'could not flush compute node usage'));
    }
    p.resourceTracker.stop();
    await p.driver.close().catch((err: unknown) => this.log.warn({ err }, 'driver close failed'));
    await p.rpcServer.close().catch((err: unknown) => this.log.warn({ err }, 'rpc server close failed'));
    await p.rpcClient.close().catch((err: unknown) => this.log.warn({ err }, 'rpc client close failed'));
    await p.session.close().catch((err: unknown) => this.log.warn({ err }, 'session close failed'));
    this.setState('STOPPED');
    return report;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
