// A fake nova-conductor behind the real ConductorClient: it answers object_action / object_class_action_versions
// from an in-memory database the way Nova's conductor and DB layer do (nova/conductor/manager.py object_action,
// nova/db/main/api.py _instance_update, action_event_start/finish), and records every request exactly as it went
// on the wire, so tests can compare what Berth sent with what Python's nova-compute sent in the lab capture.
import { randomUUID } from 'node:crypto';
import { RemoteFailure } from '../../../src/messaging/failure';
import type { RequestContext, RpcCaller, Target } from '../../../src/messaging/types';
import { OBJECT_VERSIONS, type ObjectName } from '../../../src/objects';

type Row = Record<string, unknown>;

/** One request the compute sent, as JSON on the wire. */
export interface ConductorRequest {
  readonly kind: 'call' | 'cast';
  readonly method: string;
  readonly namespace: string | null;
  /** `objname` (class actions) or the objinst's class (object_action). */
  readonly objName: string | null;
  readonly objMethod: string | null;
  readonly args: Record<string, unknown>;
  readonly requestId: string;
  readonly context: RequestContext;
}

export interface InstanceActionRecord {
  readonly instanceUuid: string;
  readonly requestId: string;
  readonly action: string;
  message: string | null;
  readonly events: InstanceActionEventRecord[];
}

export interface InstanceActionEventRecord {
  readonly event: string;
  readonly host: unknown;
  finished: boolean;
  result: 'Success' | 'Error' | null;
  excVal: unknown;
  traceback: unknown;
}

export interface FaultRecord {
  readonly instance_uuid: string;
  readonly code: number;
  readonly message: string;
  readonly details: string;
  readonly host: string;
}

/** Instance fields that are objects: Instance.save writes them through their own handlers, not as columns. */
const INSTANCE_OBJECT_FIELDS = new Set([
  'info_cache', 'security_groups', 'numa_topology', 'pci_requests', 'device_metadata', 'tags', 'flavor',
  'old_flavor', 'new_flavor', 'vcpu_model', 'ec2_ids', 'keypairs', 'trusted_certs', 'resources',
  'migration_context', 'pci_devices', 'fault', 'services',
]);

/** Python's repr() of the values a conflict message holds. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Row).map(([k, v]) => `'${k}': ${pyRepr(v)}`).join(', ')}}`;
  }
  return String(value);
}

/** A nova.exception failure as the RPC client hands it over (module, message and kwargs as Nova serialises them). */
export function novaFailure(className: string, message: string, kwargs: Row): RemoteFailure {
  return new RemoteFailure(className, 'nova.exception', message, { args: [], kwargs });
}

export function instanceNotFound(uuid: string): RemoteFailure {
  return novaFailure('InstanceNotFound', `Instance ${uuid} could not be found.`, { instance_id: uuid, code: 404 });
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function primitive(name: ObjectName, data: Row): Row {
  return { 'nova_object.name': name, 'nova_object.namespace': 'nova', 'nova_object.version': OBJECT_VERSIONS[name], 'nova_object.data': clone(data) };
}

const isPrimitive = (v: unknown): boolean => typeof v === 'object' && v !== null && 'nova_object.name' in v;

/**
 * object_action's `updates`: every field of the row that differs from what the compute sent (_from_db_object), and
 * every object field whatever its value — the conductor compares objects by identity, so they always come back,
 * with their own `changes` (the capture shows PciDevicePoolList returned as changed on every ComputeNode.save).
 */
function diff(row: Row, sent: Row): Row {
  const updates: Row = {};
  for (const [field, value] of Object.entries(row)) {
    const isObjectField = isPrimitive(value) || (Array.isArray(value) && value.some(isPrimitive));
    if (isObjectField || !same(value, sent[field])) updates[field] = clone(value);
  }
  updates['obj_what_changed'] = [];
  return updates;
}

export class FakeConductor implements RpcCaller {
  readonly requests: ConductorRequest[] = [];
  readonly instances = new Map<string, Row>();
  readonly actions: InstanceActionRecord[] = [];
  readonly faults: FaultRecord[] = [];
  readonly services: Row[] = [];
  readonly computeNodes: Row[] = [];
  readonly casts: ConductorRequest[] = [];
  /** Migration rows by id, as the conductor's MigrationTask created them. */
  readonly migrations = new Map<number, Row>();
  /** What compute_task migrate_server (a resize reschedule) answers: null, or the failure it raises. */
  migrateServerFailure: Error | null = null;
  /** Runs before every request is answered (tests use it to change the database mid-operation). */
  readonly beforeAnswer: Array<(request: ConductorRequest) => void | Promise<void>> = [];
  readonly #failures: Array<{ objName: string; objMethod: string; error: Error }> = [];
  #nextId = 100;

  /** The next request for `objName.objMethod` fails with `error` (before it changes anything). */
  failNext(objName: string, objMethod: string, error: Error): void {
    this.#failures.push({ objName, objMethod, error });
  }

  // ---- the database, as nova-api and nova-conductor would change it ----------------------------------------------

  /** Inserts an instance row (wire-form `nova_object.data`), as schedule_and_build_instances does. */
  addInstance(data: Row): void {
    const row = clone(data);
    if (row['deleted'] === undefined) row['deleted'] = false;
    this.instances.set(String(row['uuid']), row);
  }

  /** Inserts a migration row (wire-form `nova_object.data`), as MigrationTask._preallocate_migration does. */
  addMigration(data: Row): Row {
    const row: Row = { id: this.#nextId++, created_at: now(), updated_at: null, deleted_at: null, deleted: false, hidden: false, cross_cell_move: false, ...clone(data) };
    this.migrations.set(Number(row['id']), row);
    return row;
  }

  migration(id: number): Row {
    const row = this.migrations.get(id);
    if (!row) throw new Error(`fake conductor: no migration ${id}`);
    return row;
  }

  migrationPrimitive(id: number): Row {
    return primitive('Migration', this.migration(id));
  }

  row(uuid: string): Row {
    const row = this.instances.get(uuid);
    if (!row) throw new Error(`fake conductor: no instance ${uuid}`);
    return row;
  }

  /** The Instance primitive nova-api would send in a compute RPC (the row as it is now, no changes). */
  instancePrimitive(uuid: string): Row {
    return primitive('Instance', this.row(uuid));
  }

  /** InstanceAction.action_start as nova-api (or the conductor for `create`) records it before casting. */
  recordAction(instanceUuid: string, requestId: string, action: string): void {
    this.actions.push({ instanceUuid, requestId, action, message: null, events: [] });
  }

  actionFor(instanceUuid: string, requestId: string): InstanceActionRecord | undefined {
    return this.actions.filter((a) => a.instanceUuid === instanceUuid && a.requestId === requestId).at(-1);
  }

  /** Requests of one class and method (e.g. `Instance`, `save`), optionally for one request id. */
  requestsFor(objName: string, objMethod: string, requestId?: string): ConductorRequest[] {
    return this.requests.filter(
      (r) => r.objName === objName && r.objMethod === objMethod && (requestId === undefined || r.requestId === requestId),
    );
  }

  // ---- RpcCaller -------------------------------------------------------------------------------------------------

  async call(context: RequestContext, target: Target, method: string, args: Record<string, unknown>): Promise<unknown> {
    const request = this.#record('call', context, target, method, args);
    for (const hook of this.beforeAnswer) await hook(request);
    const failure = this.#failures.findIndex((f) => f.objName === request.objName && f.objMethod === request.objMethod);
    if (failure >= 0) {
      const [f] = this.#failures.splice(failure, 1);
      throw (f as { error: Error }).error;
    }
    // The answer crosses the wire too.
    return clone(this.#answer(request));
  }

  async cast(context: RequestContext, target: Target, method: string, args: Record<string, unknown>): Promise<void> {
    const request = this.#record('cast', context, target, method, args);
    this.casts.push(request);
    for (const hook of this.beforeAnswer) await hook(request);
  }

  #record(kind: 'call' | 'cast', context: RequestContext, target: Target, method: string, args: Record<string, unknown>): ConductorRequest {
    const wire = clone(args);
    const objinst = wire['objinst'] as Row | undefined;
    const request: ConductorRequest = {
      kind,
      method,
      namespace: target.namespace ?? null,
      objName: (wire['objname'] as string | undefined) ?? (objinst?.['nova_object.name'] as string | undefined) ?? null,
      objMethod: (wire['objmethod'] as string | undefined) ?? null,
      args: wire,
      requestId: context.request_id,
      context: clone(context),
    };
    this.requests.push(request);
    return request;
  }

  #answer(request: ConductorRequest): unknown {
    if (request.method === 'ping') return { service: 'conductor', arg: request.args['arg'] };
    if (request.method === 'migrate_server') {
      if (this.migrateServerFailure) throw this.migrateServerFailure;
      return null;
    }
    const key = `${request.objName}.${request.objMethod}`;
    const a = request.args;
    const ctx = request.context;
    const args = (a['args'] as unknown[] | undefined) ?? [];
    const kwargs = (a['kwargs'] as Row | undefined) ?? {};
    if (request.method === 'object_action') {
      const objinst = a['objinst'] as Row;
      const data = objinst['nova_object.data'] as Row;
      const changes = (objinst['nova_object.changes'] as string[] | undefined) ?? [];
      switch (key) {
        case 'Instance.save':
          return [this.#instanceSave(ctx, data, changes, kwargs), null];
        case 'Instance.refresh':
          return [diff(this.#instance(ctx, String(data['uuid'])), data), null];
        case 'Instance.destroy':
          return [this.#instanceDestroy(ctx, data), null];
        case 'Instance.drop_migration_context': {
          const row = this.#instance(ctx, String(data['uuid']));
          row['migration_context'] = null;
          return [diff(row, data), null];
        }
        case 'Migration.save': {
          const row = this.migrations.get(Number(data['id']));
          if (!row) throw novaFailure('MigrationNotFound', `Migration ${String(data['id'])} could not be found.`, { migration_id: data['id'], code: 404 });
          for (const field of changes) if (field !== 'id') row[field] = clone(data[field]);
          row['updated_at'] = now();
          return [diff(row, data), null];
        }
        case 'InstanceFault.create':
          return [this.#faultCreate(data), null];
        case 'Service.create':
          return [this.#serviceCreate(data), null];
        case 'Service.save':
          return [this.#serviceSave(data, changes), null];
        case 'ComputeNode.create':
          return [this.#computeNodeCreate(data), null];
        case 'ComputeNode.save':
          return [this.#computeNodeSave(data, changes), null];
      }
    } else {
      switch (key) {
        case 'Instance.get_by_uuid': {
          const uuid = String(args[0] ?? kwargs['uuid']);
          return primitive('Instance', this.#instance(ctx, uuid));
        }
        case 'InstanceList.get_by_host': {
          const rows = [...this.instances.values()].filter((r) => r['host'] === args[0] && r['deleted'] !== true);
          return primitive('InstanceList', { objects: rows.map((r) => primitive('Instance', r)) });
        }
        case 'InstanceList.get_by_filters': {
          // The filters init_host uses: exact values, or a list of accepted values.
          const filters = (args[0] ?? {}) as Record<string, unknown>;
          const rows = [...this.instances.values()].filter(
            (r) =>
              r['deleted'] !== true &&
              Object.entries(filters).every(([k, v]) => (Array.isArray(v) ? v.includes(r[k]) : r[k] === v)),
          );
          return primitive('InstanceList', { objects: rows.map((r) => primitive('Instance', r)) });
        }
        case 'MigrationList.get_by_filters': {
          // The filters _destroy_evacuated_instances uses: exact values, or a list of accepted values.
          const filters = (args[0] ?? {}) as Record<string, unknown>;
          const rows = [...this.migrations.values()].filter(
            (r) =>
              (r['deleted'] !== true || ctx.read_deleted === 'yes') &&
              Object.entries(filters).every(([k, v]) => (Array.isArray(v) ? v.includes(r[k]) : r[k] === v)),
          );
          return primitive('MigrationList', { objects: rows.map((r) => primitive('Migration', r)) });
        }
        case 'Migration.get_by_id_and_instance': {
          const row = this.migrations.get(Number(args[0]));
          if (!row || row['instance_uuid'] !== args[1]) {
            throw novaFailure('MigrationNotFoundForInstance', `Migration ${String(args[0])} not found for instance ${String(args[1])}`, { migration_id: args[0], instance_id: args[1], code: 404 });
          }
          return primitive('Migration', row);
        }
        case 'InstanceAction.action_start':
          this.recordAction(String(args[0]), ctx.request_id, String(args[1]));
          return null;
        case 'InstanceActionEvent.event_start':
          this.#eventStart(ctx, String(args[0]), String(args[1]), kwargs['host']);
          return null;
        case 'InstanceActionEvent.event_finish_with_failure':
          this.#eventFinish(ctx, String(args[0]), String(args[1]), kwargs['exc_val'], kwargs['exc_tb']);
          return null;
        case 'Service.get_by_host_and_binary': {
          const row = this.services.find((s) => s['host'] === args[0] && s['binary'] === args[1] && s['deleted'] !== true);
          return row ? primitive('Service', row) : null;
        }
        case 'ComputeNode.get_by_host_and_nodename': {
          const row = this.computeNodes.find((n) => n['host'] === args[0] && n['hypervisor_hostname'] === args[1]);
          if (!row) {
            throw novaFailure('ComputeHostNotFound', `Compute host ${String(args[0])} could not be found.`, { host: args[0], code: 404 });
          }
          return primitive('ComputeNode', row);
        }
      }
    }
    throw new Error(`fake conductor: ${request.method} ${key} is not implemented`);
  }

  /** _instance_get_by_uuid: soft-deleted rows only with read_deleted "yes". */
  #instance(ctx: RequestContext, uuid: string): Row {
    const row = this.instances.get(uuid);
    if (!row || (row['deleted'] === true && ctx.read_deleted !== 'yes')) throw instanceNotFound(uuid);
    return row;
  }

  /** Instance.save → instance_update_and_get_original: compare-and-update of the changed columns. */
  #instanceSave(ctx: RequestContext, data: Row, changes: readonly string[], kwargs: Row): Row {
    const uuid = String(data['uuid']);
    const row = this.#instance(ctx, uuid);
    const columns = changes.filter((f) => !INSTANCE_OBJECT_FIELDS.has(f));
    // Instance.save returns before touching the row (and before any expected-state check) when no column changed.
    if (columns.length > 0) {
      const expected: Record<string, unknown[]> = {};
      for (const field of ['task_state', 'vm_state']) {
        const value = kwargs[`expected_${field}`];
        if (value !== undefined && value !== null) expected[field] = Array.isArray(value) ? value : [value];
      }
      const conflictsExpected: Row = {};
      const conflictsActual: Row = {};
      for (const [field, values] of Object.entries(expected)) {
        if (!values.includes(row[field] ?? null)) {
          conflictsExpected[field] = values;
          conflictsActual[field] = row[field] ?? null;
        }
      }
      if (Object.keys(conflictsActual).length > 0) {
        const className =
          'task_state' in conflictsActual
            ? conflictsActual['task_state'] === 'deleting'
              ? 'UnexpectedDeletingTaskStateError'
              : 'UnexpectedTaskStateError'
            : 'InstanceUpdateConflict';
        throw novaFailure(
          className,
          `Conflict updating instance ${uuid}. Expected: ${pyRepr(conflictsExpected)}. Actual: ${pyRepr(conflictsActual)}`,
          { instance_uuid: uuid, expected: conflictsExpected, actual: conflictsActual, code: 500 },
        );
      }
      for (const field of columns) row[field] = clone(data[field]);
      row['updated_at'] = now();
    }
    for (const field of changes) if (INSTANCE_OBJECT_FIELDS.has(field)) row[field] = clone(data[field]);
    return diff(row, data);
  }

  #instanceDestroy(ctx: RequestContext, data: Row): Row {
    const row = this.#instance(ctx, String(data['uuid']));
    if (row['deleted'] === true) throw instanceNotFound(String(data['uuid']));
    row['deleted'] = true;
    row['deleted_at'] = now();
    return diff(row, data);
  }

  #faultCreate(data: Row): Row {
    this.faults.push({
      instance_uuid: String(data['instance_uuid']),
      code: Number(data['code']),
      message: String(data['message']),
      details: String(data['details']),
      host: String(data['host']),
    });
    return { id: this.#nextId++, created_at: now(), obj_what_changed: [] };
  }

  #serviceCreate(data: Row): Row {
    if (this.services.some((s) => s['host'] === data['host'] && s['binary'] === data['binary'] && s['deleted'] !== true)) {
      throw novaFailure('ServiceBinaryExists', `Service with host ${String(data['host'])} binary ${String(data['binary'])} exists.`, { code: 409 });
    }
    const row: Row = {
      id: this.#nextId++,
      uuid: randomUUID(),
      disabled: false,
      disabled_reason: null,
      last_seen_up: null,
      forced_down: false,
      created_at: now(),
      updated_at: null,
      deleted_at: null,
      deleted: false,
      ...clone(data),
    };
    this.services.push(row);
    return diff(row, data);
  }

  #serviceSave(data: Row, changes: readonly string[]): Row {
    const row = this.services.find((s) => s['id'] === data['id'] && s['deleted'] !== true);
    if (!row) throw novaFailure('ServiceNotFound', `Service ${String(data['id'])} could not be found.`, { service_id: data['id'], code: 404 });
    for (const field of changes) {
      // The servicegroup db driver: a higher report_count is a heartbeat.
      if (field === 'report_count' && Number(data[field]) > Number(row[field])) row['last_seen_up'] = now();
      row[field] = clone(data[field]);
    }
    row['updated_at'] = now();
    return diff(row, data);
  }

  #computeNodeCreate(data: Row): Row {
    const row: Row = { id: this.#nextId++, created_at: now(), updated_at: null, deleted_at: null, deleted: false, ...clone(data) };
    this.computeNodes.push(row);
    return diff(row, data);
  }

  #computeNodeSave(data: Row, changes: readonly string[]): Row {
    const row = this.computeNodes.find((n) => n['id'] === data['id']);
    if (!row) throw novaFailure('ComputeHostNotFound', `Compute host ${String(data['host'])} could not be found.`, { code: 404 });
    for (const field of changes) row[field] = clone(data[field]);
    row['updated_at'] = now();
    return diff(row, data);
  }

  /** action_event_start / action_event_finish: the action by (uuid, request_id), else the latest one for admins. */
  #findAction(ctx: RequestContext, instanceUuid: string): InstanceActionRecord {
    const action =
      this.actionFor(instanceUuid, ctx.request_id) ??
      (ctx.project_id ? undefined : this.actions.filter((a) => a.instanceUuid === instanceUuid).at(-1));
    if (!action) {
      throw novaFailure(
        'InstanceActionNotFound',
        `Action for request_id ${ctx.request_id} on instance ${instanceUuid} not found`,
        { request_id: ctx.request_id, instance_uuid: instanceUuid, code: 500 },
      );
    }
    return action;
  }

  #eventStart(ctx: RequestContext, instanceUuid: string, event: string, host: unknown): void {
    this.#findAction(ctx, instanceUuid).events.push({ event, host, finished: false, result: null, excVal: null, traceback: null });
  }

  #eventFinish(ctx: RequestContext, instanceUuid: string, event: string, excVal: unknown, excTb: unknown): void {
    const action = this.#findAction(ctx, instanceUuid);
    const record = action.events.find((e) => e.event === event);
    if (!record) {
      throw novaFailure('InstanceActionEventNotFound', `Event ${event} not found for action id ${action.requestId}`, { code: 500 });
    }
    record.finished = true;
    record.excVal = excVal;
    record.traceback = excTb;
    record.result = excTb === null || excTb === undefined ? 'Success' : 'Error';
    if (record.result === 'Error' && action.requestId === ctx.request_id) action.message = 'Error';
  }
}
