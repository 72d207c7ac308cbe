// The compute manager wired to in-memory neighbours: the fake conductor (behind the real ConductorClient), the real
// FakeDriver, the real ResourceTracker, fake Placement / Glance / scheduler and a recording notifier. Operations are
// driven through the real RPC endpoint with the arguments nova-api sent in the lab capture.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeDriver, type FakeDriverOptions } from '../../../driver/fake/fake-driver';
import { ComputeManager, type ComputeManagerOptions } from '../../../src/compute/manager';
import { ComputeRpcApi } from '../../../src/compute/compute-rpcapi';
import { ResourceTracker, type ResourceTrackerOptions } from '../../../src/compute/resource-tracker';
import { computeEndpoints } from '../../../src/compute/rpc-endpoint';
import { ConductorClient } from '../../../src/conductor';
import { silentLogger, type Logger } from '../../../src/log';
import type { IncomingCall, RequestContext, RpcCaller, RpcHandler, Target } from '../../../src/messaging/types';
import { FakeConductor } from './fake-conductor';
import { FakeImages, FakePlacement, FakeScheduler, RecordingNotifier } from './fakes';
import { CAPTURE_HOST, CAPTURE_INSTANCE_UUID, capturedCompute } from './lifecycle-capture';

export interface HarnessOptions {
  readonly manager?: Partial<ComputeManagerOptions>;
  readonly driver?: FakeDriverOptions;
  readonly tracker?: Partial<ResourceTrackerOptions>;
  /** Where the manager, driver and tracker log (default: nowhere). */
  readonly logger?: Logger;
}

export interface ApiRequest {
  /** The task_state nova-api sets before it casts (null: it sets none, e.g. a CALL). */
  readonly taskState: string | null;
  /** The InstanceAction nova-api records (none for CALLs). */
  readonly action?: string;
  readonly requestId?: string;
}

/** A cast one compute sent another (here: to itself), as it went on the wire. */
export interface ComputeCast {
  readonly method: string;
  readonly target: Target;
  readonly args: Record<string, unknown>;
  readonly context: RequestContext;
}

/**
 * compute.<host> as a loopback: every cast is recorded, then delivered to the harness's own endpoint after the
 * sender's cast has returned (as the broker would), never inside it. `drain()` waits for the chain to end.
 */
export class LoopbackComputeBus implements Pick<RpcCaller, 'cast'> {
  readonly casts: ComputeCast[] = [];
  /** Failures of delivered casts (a cast's failure reaches nobody; the RPC server logs it). */
  readonly failures: Array<{ method: string; error: unknown }> = [];
  /** When false, casts are only recorded (a test delivers them itself, or drops them). */
  deliver = true;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly dispatch: (method: string, args: Record<string, unknown>, context: RequestContext) => Promise<unknown>) {}

  async cast(context: RequestContext, target: Target, method: string, args: Record<string, unknown>): Promise<void> {
    const wire = JSON.parse(JSON.stringify({ args, context })) as { args: Record<string, unknown>; context: RequestContext };
    this.casts.push({ method, target, args: wire.args, context: wire.context });
    if (!this.deliver) return;
    const delivery = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.dispatch(method, wire.args, wire.context))
      .then(
        () => undefined,
        (error: unknown) => {
          this.failures.push({ method, error });
        },
      );
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }

  /** Waits until every delivered cast, and every cast those sent, has been handled. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}

let requestCounter = 0;
let instanceIds = 100;

/** A request context like nova-api's for the demo user (project-scoped, so event lookups are by request_id). */
export function userContext(requestId = `req-${randomUUID()}`): RequestContext {
  const base = capturedCompute('stop_instance').context;
  requestCounter++;
  return { ...structuredClone(base), request_id: requestId };
}

export class Harness {
  readonly conductor = new FakeConductor();
  readonly client = new ConductorClient(this.conductor);
  readonly placement = new FakePlacement();
  readonly images = new FakeImages();
  readonly scheduler = new FakeScheduler();
  readonly notifier = new RecordingNotifier();
  readonly computeBus = new LoopbackComputeBus((method, args, context) => this.rpc(method, args, context));
  readonly driver: FakeDriver;
  readonly tracker: ResourceTracker;
  readonly manager: ComputeManager;
  readonly methods: Readonly<Record<string, RpcHandler>>;
  readonly baseapi: Readonly<Record<string, RpcHandler>>;

  private constructor(readonly statePath: string, options: HarnessOptions) {
    const logger = options.logger ?? silentLogger();
    this.driver = new FakeDriver({ logger, ...options.driver });
    this.tracker = new ResourceTracker(
      {
        host: CAPTURE_HOST,
        nodename: CAPTURE_HOST,
        statePath,
        myIp: '127.0.0.1',
        reservedHostMemoryMb: 512,
        reservedHostCpus: 0,
        reservedHostDiskMb: 0,
        cpuAllocationRatio: null,
        ramAllocationRatio: null,
        diskAllocationRatio: null,
        initialCpuAllocationRatio: 16,
        initialRamAllocationRatio: 1.5,
        initialDiskAllocationRatio: 1,
        ...options.tracker,
      },
      this.client,
      this.driver,
      this.placement,
      logger,
    );
    const managerOptions: ComputeManagerOptions = {
      host: CAPTURE_HOST,
      nodename: CAPTURE_HOST,
      instanceNameTemplate: 'instance-%08x',
      maxConcurrentBuilds: 10,
      shutdownTimeoutSec: 60,
      resumeGuestsStateOnHostBoot: false,
      runningDeletedInstanceAction: 'reap',
      ...options.manager,
    };
    this.manager = new ComputeManager({
      options: managerOptions,
      conductor: this.client,
      driver: this.driver,
      placement: this.placement,
      images: this.images,
      scheduler: this.scheduler,
      resourceTracker: this.tracker,
      notifier: this.notifier,
      logger,
      computeRpc: new ComputeRpcApi(this.computeBus),
    });
    const [compute, base] = computeEndpoints(this.manager);
    this.methods = compute?.methods ?? {};
    this.baseapi = base?.methods ?? {};
  }

  static async create(options: HarnessOptions = {}): Promise<Harness> {
    const statePath = await mkdtemp(join(tmpdir(), 'berth-compute-test-'));
    const harness = new Harness(statePath, options);
    await harness.driver.init();
    return harness;
  }

  async close(): Promise<void> {
    this.tracker.stop();
    await this.driver.close();
    await rm(this.statePath, { recursive: true, force: true });
  }

  /** Delivers an RPC to the compute endpoint, as the RPC server would (the handler's promise is the whole work). */
  rpc(method: string, args: Record<string, unknown>, context: RequestContext, isCall = false): Promise<unknown> {
    const handler = this.methods[method];
    if (!handler) throw new Error(`no compute method ${method}`);
    const call: IncomingCall = {
      method,
      namespace: null,
      version: '6.0',
      args: structuredClone(args),
      context: structuredClone(context),
      isCall,
      messageId: `msg-${requestCounter}`,
    };
    return handler(call);
  }

  /** The captured build_and_run_instance for a new instance `uuid` (docker image, since the FakeDriver runs only those). */
  buildArgs(uuid: string): { args: Record<string, unknown>; instanceData: Record<string, unknown> } {
    const captured = capturedCompute('build_and_run_instance');
    const args = JSON.parse(JSON.stringify(captured.args).replaceAll(CAPTURE_INSTANCE_UUID, uuid)) as Record<string, unknown>;
    (args['image'] as Record<string, unknown>)['container_format'] = 'docker';
    const instance = args['instance'] as Record<string, unknown>;
    return { args, instanceData: structuredClone(instance['nova_object.data'] as Record<string, unknown>) };
  }

  /**
   * What the conductor does before casting build_and_run_instance: the instance row (building / scheduling, no host)
   * and the `create` action. Returns the context and arguments of the cast.
   */
  scheduleBuild(uuid: string = randomUUID(), requestId = `req-${randomUUID()}`): { context: RequestContext; args: Record<string, unknown> } {
    const { args, instanceData } = this.buildArgs(uuid);
    // Instance.id names the container (instance_name_template); every instance gets its own.
    instanceData['id'] = ++instanceIds;
    ((args['instance'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>)['id'] = instanceData['id'];
    this.conductor.addInstance(instanceData);
    this.conductor.recordAction(uuid, requestId, 'create');
    return { context: userContext(requestId), args };
  }

  /** A built, ACTIVE instance (through the real build path). */
  async activeInstance(uuid: string = randomUUID()): Promise<string> {
    const { context, args } = this.scheduleBuild(uuid);
    await this.rpc('build_and_run_instance', args, context);
    const row = this.conductor.row(uuid);
    if (row['vm_state'] !== 'active') throw new Error(`build of ${uuid} ended in ${String(row['vm_state'])}`);
    return uuid;
  }

  /**
   * What nova-api does before it casts an instance operation: set task_state (expecting None, as the API's
   * instance.save(expected_task_state=[None]) does) and record the action. Returns the context for the cast and the
   * instance primitive nova-api sends.
   */
  api(uuid: string, request: ApiRequest): { context: RequestContext; instance: Record<string, unknown> } {
    const requestId = request.requestId ?? `req-${randomUUID()}`;
    const row = this.conductor.row(uuid);
    if (request.taskState !== null) {
      if (row['task_state'] !== null) throw new Error(`nova-api would refuse: task_state is ${String(row['task_state'])}`);
      row['task_state'] = request.taskState;
    }
    if (request.action) this.conductor.recordAction(uuid, requestId, request.action);
    return { context: userContext(requestId), instance: this.conductor.instancePrimitive(uuid) };
  }

  /**
   * What nova-api and the conductor do before prep_resize reaches this host (compute_api.resize, MigrationTask):
   * task_state resize_prep and the `resize` (or `migrate`) action; a Migration row (pre-migrating, source this host);
   * the instance's allocation moved to the migration and the new flavor claimed for the instance on our provider
   * (the scheduler). Returns the context and the arguments of the prep_resize cast.
   */
  scheduleResize(uuid: string, flavor: Record<string, unknown>, options: ResizeRequest = {}): ScheduledResize {
    const row = this.conductor.row(uuid);
    const oldFlavor = (row['flavor'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
    const sameFlavor = oldFlavor['id'] === flavor['id'];
    const { context } = this.api(uuid, { taskState: 'resize_prep', action: sameFlavor ? 'migrate' : 'resize', ...(options.requestId ? { requestId: options.requestId } : {}) });
    const migration = this.conductor.addMigration({
      uuid: randomUUID(),
      source_compute: row['host'],
      source_node: row['node'],
      dest_compute: null,
      dest_node: null,
      dest_host: null,
      old_instance_type_id: oldFlavor['id'],
      new_instance_type_id: flavor['id'],
      instance_uuid: uuid,
      status: 'pre-migrating',
      migration_type: sameFlavor ? 'migration' : 'resize',
      user_id: row['user_id'],
      project_id: row['project_id'],
    });
    const provider = this.tracker.nodeUuid;
    if (!provider) throw new Error('scheduleResize: run the resource tracker first (no compute node yet)');
    const owner = { project_id: String(row['project_id']), user_id: String(row['user_id']) };
    // replace_allocation_with_migration, then the scheduler's claim for the new flavor.
    const held = this.placement.consumers.get(uuid);
    if (held) {
      this.placement.consumers.set(String(migration['uuid']), structuredClone(held));
      this.placement.consumers.delete(uuid);
    }
    this.placement.allocate(uuid, provider, flavorResources(flavor), owner);
    const captured = capturedCompute('build_and_run_instance').args;
    const args = {
      image: { id: row['image_ref'], name: 'tiny', container_format: 'docker', disk_format: 'raw', properties: {} },
      instance: this.conductor.instancePrimitive(uuid),
      flavor: { 'nova_object.name': 'Flavor', 'nova_object.namespace': 'nova', 'nova_object.version': '1.2', 'nova_object.data': structuredClone(flavor) },
      request_spec: structuredClone(captured['request_spec']),
      filter_properties: options.retry ? { limits: {}, retry: { num_attempts: 1, hosts: [[CAPTURE_HOST, CAPTURE_HOST]] } } : { limits: {} },
      node: row['node'] ?? CAPTURE_HOST,
      clean_shutdown: true,
      migration: this.conductor.migrationPrimitive(Number(migration['id'])),
      host_list: [],
    };
    return { context, args, migrationId: Number(migration['id']), migrationUuid: String(migration['uuid']) };
  }

  /** The instance row as the database has it now. */
  row(uuid: string): Record<string, unknown> {
    return this.conductor.row(uuid);
  }

  faultsOf(uuid: string): Array<{ code: number; message: string; details: string }> {
    return this.conductor.faults.filter((f) => f.instance_uuid === uuid);
  }
}

export interface ResizeRequest {
  /** filter_properties carry `retry` (max_attempts > 1): a failed prep_resize reschedules through the conductor. */
  readonly retry?: boolean;
  readonly requestId?: string;
}

export interface ScheduledResize {
  readonly context: RequestContext;
  readonly args: Record<string, unknown>;
  readonly migrationId: number;
  readonly migrationUuid: string;
}

/** What the scheduler claims in placement for a flavor (root + ephemeral + swap as DISK_GB). */
export function flavorResources(flavor: Record<string, unknown>): Record<string, number> {
  const n = (k: string): number => Number(flavor[k] ?? 0);
  return { VCPU: n('vcpus'), MEMORY_MB: n('memory_mb'), DISK_GB: n('root_gb') + n('ephemeral_gb') + Math.ceil(n('swap') / 1024) };
}

/** A promise with its resolve function, for holding an operation at a chosen point. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets every queued microtask and immediate run (the manager's promise chains), without timers. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
