// The compute host's only database path: remotable object methods called on nova-conductor over RPC
// (nova-compute-protocol.md §5), the baseapi ping, and the compute_task reschedule cast (§3.5).
import type { Logger } from '../log';
import { silentLogger } from '../log';
import { RemoteFailure } from '../messaging/failure';
import type { RequestContext, RpcCaller, Target } from '../messaging/types';
import {
  deserializeEntity,
  isNovaObject,
  newObject,
  NovaObject,
  serializeEntity,
  versionManifest,
  type BlockDeviceMapping,
  type ComputeNode,
  type Instance,
  type InstanceFault,
  type InstanceInfoCache,
  type Flavor,
  type Migration,
  type NetworkRequestList,
  type NovaObjectOf,
  type ObjectName,
  type RequestSpec,
  type Selection,
  type Service,
} from '../objects';
import { ConductorReplyError, isComputeHostNotFound } from './conductor-errors';

/** Object methods: topic `conductor`, no namespace, version 3.0. */
export const CONDUCTOR_TARGET: Target = { topic: 'conductor', version: '3.0' };
/** nova/baserpc.py: the liveness ping. */
export const BASEAPI_TARGET: Target = { topic: 'conductor', namespace: 'baseapi', version: '1.0' };
/** ComputeTaskAPI.build_instances at the Zed version (host_lists included). */
export const BUILD_INSTANCES_TARGET: Target = { topic: 'conductor', namespace: 'compute_task', version: '1.19' };
/** ComputeTaskAPI.migrate_server at the Zed version (host_list included): the reschedule of a resize. */
export const MIGRATE_SERVER_TARGET: Target = { topic: 'conductor', namespace: 'compute_task', version: '1.20' };

const PING_ARG = '1.21 GigaWatts';
/** wait_until_ready: this many attempts use the short timeout, later ones the RPC default. */
const EARLY_PING_ATTEMPTS = 10;
/** InstanceFault.message is a 255-character column (exception_to_dict truncates with safe_truncate). */
const FAULT_MESSAGE_BYTES = 255;

type CallOptions = Parameters<RpcCaller['call']>[4];

/** `expected_task_state` / `expected_vm_state`: a state, a list of states (null = "must be NULL"), or null = no check. */
export type ExpectedState = string | readonly (string | null)[] | null;

export interface InstanceSaveOptions {
  /** Omitted (undefined) means no check and nothing is sent; `[null]` requires the DB value to be NULL. */
  readonly expectedTaskState?: ExpectedState | undefined;
  readonly expectedVmState?: ExpectedState | undefined;
}

export interface InstanceFaultInput {
  readonly instanceUuid: string;
  /** The exception's `code` kwarg (500 when it has none). */
  readonly code: number;
  /** The formatted message (or the class name for non-Nova errors); cut to 255 UTF-8 bytes here. */
  readonly message: string;
  /** The traceback text when code is 500, else ''. */
  readonly details: string;
  readonly host: string;
}

/** Arguments of the reschedule cast, as received by build_and_run_instance (host_lists = [host_list]). */
export interface BuildInstancesArgs {
  readonly instances: readonly Instance[];
  readonly image: Readonly<Record<string, unknown>>;
  /** With `retry` updated by the caller (hosts tried, `exc`, `exc_reason`). */
  readonly filterProperties: Readonly<Record<string, unknown>>;
  readonly adminPassword: string | null;
  readonly injectedFiles: readonly unknown[];
  readonly requestedNetworks: NetworkRequestList | null;
  readonly securityGroups: unknown;
  readonly requestSpec: RequestSpec | null;
  readonly hostLists: readonly (readonly Selection[])[];
}

/** Arguments of the resize reschedule call (ComputeTaskAPI.resize_instance → migrate_server, live/rebuild false). */
export interface MigrateServerArgs {
  readonly instance: Instance;
  /** `{filter_properties: …}` with `retry` updated by the caller (`exc`). */
  readonly schedulerHint: Readonly<Record<string, unknown>>;
  readonly flavor: Flavor;
  readonly cleanShutdown: boolean;
  readonly requestSpec: NovaObject | null;
  readonly hostList: unknown;
}

export interface WaitForConductorOptions {
  /** Timeout of each of the first ten pings (Nova: 10 s); later pings use the RPC default timeout. */
  readonly attemptTimeoutMs?: number;
  /** Pause after a failed ping, so a transport that fails at once does not spin (default 1 s). */
  readonly retryDelayMs?: number;
  readonly signal?: AbortSignal;
}

export interface ConductorClientOptions {
  readonly logger?: Logger;
}

export class ConductorClient {
  readonly #rpc: RpcCaller;
  readonly #log: Logger;

  constructor(rpc: RpcCaller, options: ConductorClientOptions = {}) {
    this.#rpc = rpc;
    this.#log = options.logger ?? silentLogger();
  }

  // ---- generic -------------------------------------------------------------------------------------------------

  /** A remotable classmethod (`object_class_action_versions`): sends the manifest of `objName`, decodes the result. */
  async objectClassAction(
    ctx: RequestContext,
    objName: ObjectName,
    objMethod: string,
    args: readonly unknown[] = [],
    kwargs: Readonly<Record<string, unknown>> = {},
    options?: CallOptions,
  ): Promise<unknown> {
    const result = await this.#rpc.call(
      ctx,
      CONDUCTOR_TARGET,
      'object_class_action_versions',
      {
        objname: objName,
        objmethod: objMethod,
        object_versions: versionManifest(objName),
        args: serializeEntity(args),
        kwargs: serializeEntity(kwargs),
      },
      options,
    );
    return deserializeEntity(result, `${objName}.${objMethod} result`);
  }

  /**
   * A remotable method on `obj` (`object_action`): sends the primitive with its changes, applies the reply's
   * `[updates, result]` to `obj` (its changes become `obj_what_changed`) and returns the decoded result.
   */
  async objectAction(
    ctx: RequestContext,
    obj: NovaObject<object>,
    objMethod: string,
    args: readonly unknown[] = [],
    kwargs: Readonly<Record<string, unknown>> = {},
    options?: CallOptions,
  ): Promise<unknown> {
    const call = `${obj.name}.${objMethod}`;
    const reply = await this.#rpc.call(
      ctx,
      CONDUCTOR_TARGET,
      'object_action',
      { objinst: obj.toPrimitive(), objmethod: objMethod, args: serializeEntity(args), kwargs: serializeEntity(kwargs) },
      options,
    );
    if (!Array.isArray(reply) || reply.length !== 2) throw new ConductorReplyError(call, 'the reply is not [updates, result]');
    obj.applyUpdates(reply[0]);
    return deserializeEntity(reply[1], `${call} result`);
  }

  /** baseapi `ping`; resolves with the conductor's answer (`{service: "conductor", arg}`). */
  ping(ctx: RequestContext, options?: CallOptions): Promise<unknown> {
    return this.#rpc.call(ctx, BASEAPI_TARGET, 'ping', { arg: PING_ARG }, options);
  }

  /**
   * Pings until the conductor answers, forever (wait_until_ready), logging every failed attempt. Rejects only when
   * `signal` aborts, or with the RemoteFailure when the conductor answers with one.
   */
  async waitForConductor(ctx: RequestContext, options: WaitForConductorOptions = {}): Promise<void> {
    const { attemptTimeoutMs = 10_000, retryDelayMs = 1_000, signal } = options;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        const callOptions = attempt <= EARLY_PING_ATTEMPTS ? { timeoutMs: attemptTimeoutMs } : undefined;
        await untilAborted(this.ping(ctx, callOptions), signal);
        if (attempt > 1) this.#log.info({ request_id: ctx.request_id, attempt }, 'nova-conductor connection established successfully');
        return;
      } catch (err) {
        if (err instanceof RemoteFailure || signal?.aborted) throw err;
        this.#log.warn(
          { request_id: ctx.request_id, attempt, err },
          'Timed out waiting for nova-conductor. Is it running? Reattempting establishment of nova-conductor connection...',
        );
        await sleep(retryDelayMs, signal);
      }
    }
  }

  // ---- Service (§5.4–5.6) --------------------------------------------------------------------------------------

  /** null when there is no such service record (not an error). */
  async serviceGetByHostAndBinary(ctx: RequestContext, host: string, binary: string): Promise<Service | null> {
    const result = await this.objectClassAction(ctx, 'Service', 'get_by_host_and_binary', [host, binary]);
    return expectObjectOrNull(result, 'Service', 'Service.get_by_host_and_binary');
  }

  async serviceCreate(ctx: RequestContext, service: Service): Promise<void> {
    await this.objectAction(ctx, service, 'create');
  }

  /** The heartbeat (report_count + 1) and any other change; `disabled` etc. come back in the updates. */
  async serviceSave(ctx: RequestContext, service: Service): Promise<void> {
    await this.objectAction(ctx, service, 'save');
  }

  // ---- ComputeNode (§5.7) --------------------------------------------------------------------------------------

  /** null on ComputeHostNotFound (expected on the first start). */
  async computeNodeGetByHostAndNodename(ctx: RequestContext, host: string, nodename: string): Promise<ComputeNode | null> {
    try {
      const result = await this.objectClassAction(ctx, 'ComputeNode', 'get_by_host_and_nodename', [host, nodename]);
      return expectObject(result, 'ComputeNode', 'ComputeNode.get_by_host_and_nodename');
    } catch (err) {
      if (isComputeHostNotFound(err)) return null;
      throw err;
    }
  }

  /** [] on ComputeHostNotFound (the conductor raises it for a host without nodes). */
  async computeNodeListGetAllByHost(
    ctx: RequestContext,
    host: string,
    options: { readonly useSlave?: boolean } = {},
  ): Promise<ComputeNode[]> {
    try {
      const kwargs = options.useSlave === undefined ? {} : { use_slave: options.useSlave };
      const result = await this.objectClassAction(ctx, 'ComputeNodeList', 'get_all_by_host', [host], kwargs);
      return listObjects(result, 'ComputeNodeList', 'ComputeNode', 'ComputeNodeList.get_all_by_host');
    } catch (err) {
      if (isComputeHostNotFound(err)) return [];
      throw err;
    }
  }

  async computeNodeCreate(ctx: RequestContext, node: ComputeNode): Promise<void> {
    await this.objectAction(ctx, node, 'create');
  }

  async computeNodeSave(ctx: RequestContext, node: ComputeNode): Promise<void> {
    await this.objectAction(ctx, node, 'save');
  }

  async computeNodeDestroy(ctx: RequestContext, node: ComputeNode): Promise<void> {
    await this.objectAction(ctx, node, 'destroy');
  }

  // ---- Instance (§4.2, §5.3) -----------------------------------------------------------------------------------

  async instanceListGetByHost(
    ctx: RequestContext,
    host: string,
    expectedAttrs?: readonly string[],
    options: { readonly useSlave?: boolean } = {},
  ): Promise<Instance[]> {
    const kwargs: Record<string, unknown> = {};
    if (expectedAttrs !== undefined) kwargs['expected_attrs'] = expectedAttrs;
    if (options.useSlave !== undefined) kwargs['use_slave'] = options.useSlave;
    const result = await this.objectClassAction(ctx, 'InstanceList', 'get_by_host', [host], kwargs);
    return listObjects(result, 'InstanceList', 'Instance', 'InstanceList.get_by_host');
  }

  /** InstanceList.get_by_filters (e.g. `{vm_state: 'building', uuid: [...]}`), as init_host uses it. */
  async instanceListGetByFilters(
    ctx: RequestContext,
    filters: Readonly<Record<string, unknown>>,
    expectedAttrs: readonly string[] = [],
  ): Promise<Instance[]> {
    const result = await this.objectClassAction(ctx, 'InstanceList', 'get_by_filters', [filters], { expected_attrs: expectedAttrs });
    return listObjects(result, 'InstanceList', 'Instance', 'InstanceList.get_by_filters');
  }

  /** Rejects with InstanceNotFound (RemoteFailure); `readDeleted` also finds soft-deleted rows (read_deleted "yes"). */
  async instanceGetByUuid(
    ctx: RequestContext,
    uuid: string,
    expectedAttrs?: readonly string[],
    options: { readonly readDeleted?: boolean } = {},
  ): Promise<Instance> {
    const context = options.readDeleted ? { ...ctx, read_deleted: 'yes' } : ctx;
    const kwargs = expectedAttrs === undefined ? {} : { expected_attrs: expectedAttrs };
    const result = await this.objectClassAction(context, 'Instance', 'get_by_uuid', [uuid], kwargs);
    return expectObject(result, 'Instance', 'Instance.get_by_uuid');
  }

  /**
   * The compare-and-update of vm_state/task_state (§4.2). Rejects with UnexpectedTaskStateError,
   * UnexpectedDeletingTaskStateError, InstanceUpdateConflict or InstanceNotFound (see ./conductor-errors.ts).
   */
  async instanceSave(ctx: RequestContext, instance: Instance, options: InstanceSaveOptions = {}): Promise<void> {
    const kwargs: Record<string, unknown> = {};
    if (options.expectedTaskState !== undefined) kwargs['expected_task_state'] = options.expectedTaskState;
    if (options.expectedVmState !== undefined) kwargs['expected_vm_state'] = options.expectedVmState;
    await this.objectAction(ctx, instance, 'save', [], kwargs);
  }

  /** Reloads the instance's fields from the database (they come back as updates). */
  async instanceRefresh(ctx: RequestContext, instance: Instance): Promise<void> {
    await this.objectAction(ctx, instance, 'refresh');
  }

  /** Soft-deletes the row (or hard-deletes it with `hardDelete`). */
  async instanceDestroy(ctx: RequestContext, instance: Instance, options: { readonly hardDelete?: boolean } = {}): Promise<void> {
    await this.objectAction(ctx, instance, 'destroy', [], options.hardDelete === undefined ? {} : { hard_delete: options.hardDelete });
  }

  /** Writes `network_info` (and whatever else changed) of the cache. */
  async instanceInfoCacheSave(ctx: RequestContext, infoCache: InstanceInfoCache): Promise<void> {
    await this.objectAction(ctx, infoCache, 'save');
  }

  async blockDeviceMappingListGetByInstanceUuid(ctx: RequestContext, instanceUuid: string): Promise<BlockDeviceMapping[]> {
    const result = await this.objectClassAction(ctx, 'BlockDeviceMappingList', 'get_by_instance_uuid', [instanceUuid]);
    return listObjects(result, 'BlockDeviceMappingList', 'BlockDeviceMapping', 'BlockDeviceMappingList.get_by_instance_uuid');
  }

  // ---- actions and faults (§4.9, §4.10) ------------------------------------------------------------------------

  /**
   * Records an action (InstanceAction.action_start, as compute_api does for actions the compute starts itself, e.g.
   * the power-state sync's stop). Keyed by the context's request_id; its start time is the context's timestamp.
   */
  async instanceActionStart(ctx: RequestContext, instanceUuid: string, action: string): Promise<void> {
    await this.objectClassAction(ctx, 'InstanceAction', 'action_start', [instanceUuid, action], { want_result: false });
  }

  /**
   * Opens an action event. The conductor finds the action by the context's request_id, so pass the context of the
   * request that started the operation. Rejects with InstanceActionNotFound when there is none.
   */
  async instanceActionEventStart(ctx: RequestContext, instanceUuid: string, eventName: string, host: string): Promise<void> {
    await this.objectClassAction(ctx, 'InstanceActionEvent', 'event_start', [instanceUuid, eventName], {
      want_result: false,
      host,
    });
  }

  /** Closes an action event: result "Success" when `excTb` is null, else "Error" with the message and traceback. */
  async instanceActionEventFinishWithFailure(
    ctx: RequestContext,
    instanceUuid: string,
    eventName: string,
    failure: { readonly excVal: string | null; readonly excTb: string | null },
  ): Promise<void> {
    await this.objectClassAction(ctx, 'InstanceActionEvent', 'event_finish_with_failure', [instanceUuid, eventName], {
      exc_val: failure.excVal,
      exc_tb: failure.excTb,
      want_result: false,
    });
  }

  /** Records a fault (shown by nova-api for servers in ERROR); returns it as stored. */
  async instanceFaultCreate(ctx: RequestContext, fault: InstanceFaultInput): Promise<InstanceFault> {
    const obj = newObject('InstanceFault', {
      host: fault.host,
      instance_uuid: fault.instanceUuid,
      message: truncateUtf8(fault.message, FAULT_MESSAGE_BYTES),
      code: fault.code,
      details: fault.details,
    });
    await this.objectAction(ctx, obj, 'create');
    return obj;
  }

  // ---- Migration (resize) --------------------------------------------------------------------------------------

  /** Writes the migration's changed fields (status, dest_*); the reply refreshes updated_at. */
  async migrationSave(ctx: RequestContext, migration: Migration): Promise<void> {
    await this.objectAction(ctx, migration, 'save');
  }

  /** Rejects with MigrationNotFoundForInstance (RemoteFailure) when the instance has no such migration. */
  async migrationGetByIdAndInstance(ctx: RequestContext, migrationId: number, instanceUuid: string): Promise<Migration> {
    const result = await this.objectClassAction(ctx, 'Migration', 'get_by_id_and_instance', [migrationId, instanceUuid]);
    return expectObject(result, 'Migration', 'Migration.get_by_id_and_instance');
  }

  /**
   * MigrationList.get_by_filters (e.g. `{source_compute, migration_type: 'evacuation', status: [...]}`), as
   * _destroy_evacuated_instances queries them (with read_deleted "yes" in the context).
   */
  async migrationListGetByFilters(ctx: RequestContext, filters: Readonly<Record<string, unknown>>): Promise<Migration[]> {
    const result = await this.objectClassAction(ctx, 'MigrationList', 'get_by_filters', [filters]);
    return listObjects(result, 'MigrationList', 'Migration', 'MigrationList.get_by_filters');
  }

  /** Instance.drop_migration_context: clears the instance's migration context in the database and on the object. */
  async instanceDropMigrationContext(ctx: RequestContext, instance: Instance): Promise<void> {
    await this.objectAction(ctx, instance, 'drop_migration_context');
  }

  // ---- compute_task (§3.5) -------------------------------------------------------------------------------------

  /** The reschedule cast: the conductor picks an alternate host from host_lists or sets the instance to ERROR. */
  async buildInstances(ctx: RequestContext, args: BuildInstancesArgs): Promise<void> {
    await this.#rpc.cast(ctx, BUILD_INSTANCES_TARGET, 'build_instances', serializeEntity({
      instances: args.instances,
      image: args.image,
      filter_properties: args.filterProperties,
      admin_password: args.adminPassword,
      injected_files: args.injectedFiles,
      requested_networks: args.requestedNetworks,
      security_groups: args.securityGroups,
      request_spec: args.requestSpec,
      host_lists: args.hostLists,
    }) as Record<string, unknown>);
  }

  /**
   * The resize reschedule (a CALL that lasts while the conductor schedules again: Nova waits long_rpc_timeout with
   * call-monitor heartbeats every rpc_response_timeout). Rejects with the conductor's failure, e.g. MaxRetriesExceeded.
   */
  async migrateServer(ctx: RequestContext, args: MigrateServerArgs, options?: CallOptions): Promise<void> {
    await this.#rpc.call(ctx, MIGRATE_SERVER_TARGET, 'migrate_server', serializeEntity({
      instance: args.instance,
      scheduler_hint: args.schedulerHint,
      live: false,
      rebuild: false,
      flavor: args.flavor,
      block_migration: null,
      disk_over_commit: null,
      reservations: null,
      clean_shutdown: args.cleanShutdown,
      request_spec: args.requestSpec,
      host_list: args.hostList,
    }) as Record<string, unknown>, options);
  }
}

function expectObject<N extends ObjectName>(result: unknown, name: N, call: string): NovaObjectOf<N> {
  if (!isNovaObject(result, name)) throw new ConductorReplyError(call, `expected a ${name}, got ${describeResult(result)}`);
  return result;
}

function expectObjectOrNull<N extends ObjectName>(result: unknown, name: N, call: string): NovaObjectOf<N> | null {
  return result === null ? null : expectObject(result, name, call);
}

/** The elements of an ObjectList result (InstanceList → Instance[]). */
function listObjects<N extends ObjectName>(result: unknown, listName: ObjectName, name: N, call: string): NovaObjectOf<N>[] {
  if (!(result instanceof NovaObject) || result.name !== listName) {
    throw new ConductorReplyError(call, `expected a ${listName}, got ${describeResult(result)}`);
  }
  const objects = result.get('objects');
  if (!Array.isArray(objects) || !objects.every((o) => isNovaObject(o, name))) {
    throw new ConductorReplyError(call, `expected a ${listName} of ${name}`);
  }
  return objects as NovaObjectOf<N>[];
}

function describeResult(result: unknown): string {
  if (result instanceof NovaObject) return result.name;
  return result === null ? 'null' : Array.isArray(result) ? 'a list' : typeof result;
}

/** nova.utils.safe_truncate: at most `bytes` UTF-8 bytes, never cutting a character in half. */
export function truncateUtf8(value: string, bytes: number): string {
  const encoded = Buffer.from(value, 'utf8');
  if (encoded.length <= bytes) return value;
  let end = bytes;
  // Back up to the start of the character that the cut would split (continuation bytes are 10xxxxxx).
  while (end > 0 && ((encoded[end] ?? 0) & 0xc0) === 0x80) end--;
  return encoded.subarray(0, end).toString('utf8');
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
