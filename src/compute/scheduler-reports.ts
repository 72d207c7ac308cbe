// The scheduler's instance-info fanout casts (nova/scheduler/rpcapi.py, version 4.2), sent when
// [filter_scheduler] track_instance_changes is on. Informational: a failed cast is logged, never fatal
// (the scheduler falls back to the database, and the periodic sync repairs it).
import type { Logger } from '../log';
import type { RequestContext, RpcCaller, Target } from '../messaging/types';
import { newObject, serializeEntity, type Instance } from '../objects';
import type { SchedulerPort } from './ports';

const SCHEDULER_FANOUT: Target = { topic: 'scheduler', version: '4.2', fanout: true };

export class SchedulerReports implements SchedulerPort {
  constructor(
    private readonly rpc: RpcCaller,
    private readonly host: string,
    private readonly enabled: boolean,
    private readonly logger: Logger,
  ) {}

  private async cast(context: RequestContext, method: string, args: Record<string, unknown>): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.rpc.cast({ ...context, is_admin: true }, SCHEDULER_FANOUT, method, args);
    } catch (err) {
      this.logger.warn({ err, request_id: context.request_id, method }, 'could not send %s to the scheduler', method);
    }
  }

  updateInstanceInfo(context: RequestContext, instances: readonly Instance[]): Promise<void> {
    const list = newObject('InstanceList', { objects: [...instances] });
    return this.cast(context, 'update_instance_info', { host_name: this.host, instance_info: serializeEntity(list) });
  }

  deleteInstanceInfo(context: RequestContext, instanceUuid: string): Promise<void> {
    return this.cast(context, 'delete_instance_info', { host_name: this.host, instance_uuid: instanceUuid });
  }

  syncInstanceInfo(context: RequestContext, instanceUuids: readonly string[]): Promise<void> {
    return this.cast(context, 'sync_instance_info', { host_name: this.host, instance_uuids: [...instanceUuids] });
  }
}
