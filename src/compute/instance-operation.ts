// Nova's decorator stack around instance RPC handlers, as one function:
//   @wrap_exception  @reverts_task_state  @wrap_instance_event(prefix='compute')  @wrap_instance_fault
// Order matters and follows nova/compute/manager.py: the event is started before the body; a failure writes an
// instance fault (unless InstanceNotFound), finishes the event with the error, reverts task_state to None (unless
// UnexpectedTaskStateError: the task was preempted), emits the exception notification and re-raises.
import type { Logger } from '../log';
import type { RequestContext } from '../messaging/types';
import { RemoteFailure } from '../messaging/failure';
import type { Instance } from '../objects';
import type { ConductorClient } from '../conductor';
import type { InstanceNotifier } from '../notifications/types';
import { faultCode, fromDriverError, isFailure } from './exceptions';

export interface OperationDeps {
  readonly host: string;
  readonly conductor: ConductorClient;
  readonly notifier: InstanceNotifier;
  readonly logger: Logger;
}

export interface OperationOptions {
  /** The RPC method name; the event is `compute_<method>` (Nova's wrapped function name). */
  readonly method: string;
  /** The RPC arguments, for the exception notification. */
  readonly args?: Record<string, unknown>;
  /** @wrap_instance_event (default true). */
  readonly event?: boolean;
  /** @wrap_instance_fault (default true). */
  readonly fault?: boolean;
  /** @reverts_task_state (default true). */
  readonly revertTaskState?: boolean;
}

/** The error as Nova would see it: a RemoteFailure with a Nova class. */
export function asFailure(err: unknown, instanceUuid: string): RemoteFailure {
  return fromDriverError(err, instanceUuid);
}

/** The traceback text Nova stores in event and fault details. */
export function tracebackText(err: RemoteFailure): string {
  const cause = err.cause instanceof Error ? err.cause : undefined;
  const stack = cause?.stack ?? err.stack ?? '';
  const tb = err.tb.length > 0 ? err.tb.join('') : '';
  return `${tb}${stack}\n${err.module}.${err.className}: ${err.message}\n`;
}

export async function addInstanceFault(
  deps: OperationDeps,
  context: RequestContext,
  instanceUuid: string,
  err: RemoteFailure,
  message?: string,
): Promise<void> {
  const code = faultCode(err);
  try {
    await deps.conductor.instanceFaultCreate(context, {
      instanceUuid,
      code,
      // exception_to_dict: the Nova message, truncated to 255 characters by the conductor client.
      message: message ?? err.message,
      // _get_fault_details: the traceback only for code 500.
      details: code === 500 ? tracebackText(err) : '',
      host: deps.host,
    });
  } catch (faultErr) {
    deps.logger.warn({ err: faultErr, instance_uuid: instanceUuid }, 'could not record the instance fault');
  }
}

export async function runInstanceOperation<T>(
  deps: OperationDeps,
  context: RequestContext,
  instance: Instance,
  options: OperationOptions,
  body: () => Promise<T>,
): Promise<T> {
  const uuid = instance.get('uuid') as string;
  const eventName = `compute_${options.method}`;
  const log = deps.logger.child({ request_id: context.request_id, instance_uuid: uuid, method: options.method });
  try {
    if (options.event !== false) {
      await deps.conductor.instanceActionEventStart(context, uuid, eventName, deps.host);
    }
    let result: T;
    try {
      result = await body();
    } catch (raw) {
      const err = asFailure(raw, uuid);
      if (options.fault !== false && !err.is('InstanceNotFound')) {
        await addInstanceFault(deps, context, uuid, err);
      }
      if (options.event !== false) await finishEvent(deps, context, uuid, eventName, err, log);
      throw err;
    }
    if (options.event !== false) await finishEvent(deps, context, uuid, eventName, null, log);
    return result;
  } catch (raw) {
    const err = asFailure(raw, uuid);
    if (options.revertTaskState !== false) {
      if (isFailure(err, 'UnexpectedTaskStateError', 'UnexpectedDeletingTaskStateError')) {
        log.info({ reason: err.message }, 'Task possibly preempted');
      } else {
        await revertTaskState(deps, context, instance, log);
      }
    }
    await deps.notifier.exception(context, options.method, err, options.args ?? {});
    throw err;
  }
}

async function finishEvent(
  deps: OperationDeps,
  context: RequestContext,
  uuid: string,
  eventName: string,
  err: RemoteFailure | null,
  log: Logger,
): Promise<void> {
  try {
    await deps.conductor.instanceActionEventFinishWithFailure(context, uuid, eventName, {
      excVal: err ? err.message : null,
      excTb: err ? tracebackText(err) : null,
    });
  } catch (finishErr) {
    // EventReporter re-raises InstanceActionNotFound; anything else must not mask the operation's own outcome.
    if (err === null && isFailure(finishErr, 'InstanceActionNotFound')) throw finishErr;
    log.warn({ err: finishErr, event: eventName }, 'could not finish the instance action event');
  }
}

async function revertTaskState(deps: OperationDeps, context: RequestContext, instance: Instance, log: Logger): Promise<void> {
  const original = instance.get('task_state');
  try {
    instance.set('task_state', null);
    await deps.conductor.instanceSave(context, instance);
    log.info({ task_state: original }, 'Successfully reverted task state on failure');
  } catch (err) {
    if (!isFailure(err, 'InstanceNotFound')) log.warn({ err }, 'Failed to revert task state for instance');
  }
}
