// The Service record (binary nova-compute, topic compute, version 64) and its heartbeat: nova/service.py,
// nova/servicegroup/drivers/db.py. nova-compute-protocol.md §5.4–§5.6.
import type { Logger } from '../log';
import type { RequestContext } from '../messaging/types';
import { adminContext } from '../messaging';
import { newObject, type Service } from '../objects';
import type { ConductorClient } from '../conductor';
import { isFailure } from './exceptions';

/** Nova's SERVICE_VERSION in Zed (26.x); the control plane caps compute RPC at 6.1 from it. */
export const SERVICE_VERSION = 64;
export const BINARY = 'nova-compute';
export const TOPIC = 'compute';

export interface ServiceRecordOptions {
  readonly host: string;
  /** [DEFAULT] report_interval, seconds */
  readonly reportIntervalSec: number;
  /** [DEFAULT] enable_new_services */
  readonly enableNewServices: boolean;
}

export class ServiceRecord {
  private service: Service | null = null;
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private lastDisabled: boolean | null = null;
  private readonly log: Logger;
  /** Called when an admin enables or disables the service (drives the COMPUTE_STATUS_DISABLED trait). */
  onDisabledChange: (disabled: boolean) => void = () => undefined;
  /** Time of the last successful heartbeat (ms since epoch), for health reporting. */
  lastHeartbeatAt: number | null = null;

  constructor(
    private readonly options: ServiceRecordOptions,
    private readonly conductor: ConductorClient,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'service-record' });
  }

  get disabled(): boolean {
    return this.service?.get('disabled') === true;
  }

  /** Service.get_by_host_and_binary, then create (version 64) or bring the version up to ours. */
  async register(context: RequestContext = adminContext()): Promise<void> {
    let service = await this.conductor.serviceGetByHostAndBinary(context, this.options.host, BINARY);
    if (!service) {
      const fresh = newObject('Service', {
        host: this.options.host,
        binary: BINARY,
        topic: TOPIC,
        report_count: 0,
        version: SERVICE_VERSION,
      }) as Service;
      if (!this.options.enableNewServices) {
        fresh.set('disabled', true);
        fresh.set('disabled_reason', 'New service disabled due to config option.');
      }
      try {
        await this.conductor.serviceCreate(context, fresh);
        service = fresh;
        this.log.info({ service_id: fresh.get('id') }, 'Created the nova-compute service record for %s', this.options.host);
      } catch (err) {
        // Another process created it between our read and our create (ServiceTopicExists / ServiceBinaryExists).
        if (!isFailure(err, 'ServiceTopicExists', 'ServiceBinaryExists')) throw err;
        service = await this.conductor.serviceGetByHostAndBinary(context, this.options.host, BINARY);
        if (!service) throw err;
      }
    } else if (service.get('version') !== SERVICE_VERSION) {
      this.log.info({ from: service.get('version'), to: SERVICE_VERSION }, 'Updating service version');
      service.set('version', SERVICE_VERSION);
      await this.conductor.serviceSave(context, service);
    }
    this.service = service;
    this.noticeDisabled();
  }

  /** Heartbeats every report_interval; the first one after 5 s as Nova does (or sooner when the interval is). */
  start(): void {
    if (this.timer) return;
    const intervalMs = this.options.reportIntervalSec * 1000;
    const tick = (): void => {
      this.beating = this.heartbeat().finally(() => {
        this.beating = null;
      });
    };
    this.timer = setTimeout(() => {
      tick();
      this.timer = setInterval(tick, intervalMs);
    }, Math.min(5000, intervalMs));
  }

  async stop(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      clearInterval(this.timer);
      this.timer = null;
    }
    if (this.beating) await this.beating;
  }

  /** One heartbeat: report_count + 1 and Service.save(); errors are logged and retried next interval. */
  async heartbeat(): Promise<void> {
    const service = this.service;
    if (!service) return;
    const context = adminContext();
    const count = Number(service.get('report_count') ?? 0);
    service.set('report_count', count + 1);
    try {
      await this.conductor.serviceSave(context, service);
      this.lastHeartbeatAt = Date.now();
      this.noticeDisabled();
    } catch (err) {
      // Keep the count we tried: the next save sends it again (Nova's db driver behaves the same).
      if (isFailure(err, 'ServiceNotFound')) {
        this.log.error('The nova-compute service record of this host was deleted; restart Berth to register again');
      } else if (isFailure(err, 'ServiceTooOld')) {
        this.log.error({ reason: (err as Error).message }, 'The conductor refuses our service version');
      } else {
        this.log.warn({ err }, 'heartbeat failed; retrying next interval');
      }
    }
  }

  private noticeDisabled(): void {
    const disabled = this.disabled;
    if (disabled !== this.lastDisabled) {
      this.lastDisabled = disabled;
      this.onDisabledChange(disabled);
    }
  }
}
