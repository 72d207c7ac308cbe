// The compute manager wired to in-memory neighbours: the fake conductor (behind the real ConductorClient), the real
// FakeDriver, the real ResourceTracker, fake Placement / Glance / scheduler and a recording notifier. Operations are
// driven through the real RPC endpoint with the arguments nova-api sent in the lab capture.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeDriver, type FakeDriverOptions } from '../../../driver/fake/fake-driver';
import { ComputeManager, type ComputeManagerOptions } from '../../../src/compute/manager';
import { ResourceTracker, type ResourceTrackerOptions } from '../../../src/compute/resource-tracker';
import { computeEndpoints } from '../../../src/compute/rpc-endpoint';
import { ConductorClient } from '../../../src/conductor';
import { silentLogger } from '../../../src/log';
import type { IncomingCall, RequestContext, RpcHandler } from '../../../src/messaging/types';
import { FakeConductor } from './fake-conductor';
import { FakeImages, FakePlacement, FakeScheduler, RecordingNotifier } from './fakes';
import { CAPTURE_HOST, CAPTURE_INSTANCE_UUID, capturedCompute } from './lifecycle-capture';

export interface HarnessOptions {
  readonly manager?: Partial<ComputeManagerOptions>;
  readonly driver?: FakeDriverOptions;
  readonly tracker?: Partial<ResourceTrackerOptions>;
}

export interface ApiRequest {
  /** The task_state nova-api sets before it casts (null: it sets none, e.g. a CALL). */
  readonly taskState: string | null;
  /** The InstanceAction nova-api records (none for CALLs). */
  readonly action?: string;
  readonly requestId?: string;
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
  readonly driver: FakeDriver;
  readonly tracker: ResourceTracker;
  readonly manager: ComputeManager;
  readonly methods: Readonly<Record<string, RpcHandler>>;
  readonly baseapi: Readonly<Record<string, RpcHandler>>;

  private constructor(readonly statePath: string, options: HarnessOptions) {
    const logger = silentLogger();
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

  /** The instance row as the database has it now. */
  row(uuid: string): Record<string, unknown> {
    return this.conductor.row(uuid);
  }

  faultsOf(uuid: string): Array<{ code: number; message: string; details: string }> {
    return this.conductor.faults.filter((f) => f.instance_uuid === uuid);
  }
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
