// Two Berth hosts on one in-memory cloud, for moves between them: one fake conductor, Placement, Glance and
// notifier shared by two compute managers, each with its own FakeDriver, resource tracker and state dir, and a
// compute bus that delivers each cast to the manager whose host the target names (as RabbitMQ's compute.<host>).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ImageSource } from '../../../driver/driver';
import { FakeDriver } from '../../../driver/fake/fake-driver';
import { ComputeRpcApi } from '../../../src/compute/compute-rpcapi';
import { ComputeManager } from '../../../src/compute/manager';
import type { MigrationImage, MigrationImagePort } from '../../../src/compute/migration-images';
import { ResourceTracker } from '../../../src/compute/resource-tracker';
import { computeEndpoints } from '../../../src/compute/rpc-endpoint';
import { ConductorClient } from '../../../src/conductor';
import { silentLogger } from '../../../src/log';
import type { IncomingCall, RequestContext, RpcCaller, RpcHandler, Target } from '../../../src/messaging/types';
import { FakeConductor } from './fake-conductor';
import { FakeImages, FakePlacement, FakeScheduler, RecordingNotifier } from './fakes';
import { flavorResources, userContext, type ComputeCast } from './harness';
import { CAPTURE_HOST, CAPTURE_INSTANCE_UUID, capturedCompute } from './lifecycle-capture';

export const HOST_A = CAPTURE_HOST;
export const HOST_B = 'fake-2';

type Row = Record<string, unknown>;

/** Glance's temporary migration images, in memory: what was created, uploaded, loaded and deleted. */
export class FakeMigrationImages implements MigrationImagePort {
  readonly created: MigrationImage[] = [];
  readonly deleted: string[] = [];
  readonly fetched: string[] = [];
  /** Image id → the uploaded archive (present while the image exists). */
  readonly data = new Map<string, Buffer | null>();
  /** Failures to inject, by step; each is thrown once. */
  failCreate: Error | null = null;
  failUpload: Error | null = null;
  failDelete: Error | null = null;
  /** When set, uploads wait for this promise (a transfer in flight); it rejects to fail them. */
  holdUpload: Promise<void> | null = null;

  async createMigrationImage(_context: RequestContext, image: MigrationImage): Promise<void> {
    if (this.failCreate) throw this.take('failCreate');
    if (this.data.has(image.id)) throw new Error(`409 image ${image.id} exists`);
    this.created.push(image);
    this.data.set(image.id, null);
  }

  async uploadMigrationImage(_context: RequestContext, imageId: string, data: Readable): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of data) chunks.push(chunk as Buffer);
    if (this.holdUpload) await this.holdUpload;
    if (this.failUpload) throw this.take('failUpload');
    if (!this.data.has(imageId)) throw new Error(`404 image ${imageId}`);
    this.data.set(imageId, Buffer.concat(chunks));
  }

  async migrationImageSource(_context: RequestContext, imageId: string): Promise<ImageSource> {
    const bytes = this.data.get(imageId);
    if (!bytes) throw new Error(`image ${imageId} is missing or has no data`);
    return {
      id: imageId, name: `berth-migration-${imageId}`, containerFormat: 'docker', diskFormat: 'raw', size: bytes.length, properties: { berth_migration: imageId },
      fetch: async () => {
        this.fetched.push(imageId);
        const path = join(tmpdir(), `berth-migration-test-${imageId}.${randomBytes(6).toString('hex')}.tar`);
        await writeFile(path, bytes);
        return path;
      },
    };
  }

  async deleteMigrationImage(_context: RequestContext, imageId: string): Promise<boolean> {
    if (this.failDelete) throw this.take('failDelete');
    this.deleted.push(imageId);
    return this.data.delete(imageId);
  }

  private take(key: 'failCreate' | 'failUpload' | 'failDelete'): Error {
    const error = this[key] as Error;
    this[key] = null;
    return error;
  }
}

export interface BerthNode {
  readonly host: string;
  readonly driver: FakeDriver;
  readonly tracker: ResourceTracker;
  readonly manager: ComputeManager;
  readonly methods: Readonly<Record<string, RpcHandler>>;
  readonly statePath: string;
}

/** compute.<host> for both hosts: casts recorded, then delivered to the target's host after the sender returned. */
export class RoutingComputeBus implements Pick<RpcCaller, 'cast'> {
  readonly casts: ComputeCast[] = [];
  readonly failures: Array<{ method: string; host: string; error: unknown }> = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly dispatch: (host: string, method: string, args: Row, context: RequestContext) => Promise<unknown>) {}

  async cast(context: RequestContext, target: Target, method: string, args: Row): Promise<void> {
    const wire = JSON.parse(JSON.stringify({ args, context })) as { args: Row; context: RequestContext };
    this.casts.push({ method, target, args: wire.args, context: wire.context });
    const host = String(target.server);
    const delivery = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.dispatch(host, method, wire.args, wire.context))
      .then(
        () => undefined,
        (error: unknown) => {
          this.failures.push({ method, host, error });
        },
      );
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }

  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}

let instanceIds = 500;

export class TwoHosts {
  readonly conductor = new FakeConductor();
  readonly client = new ConductorClient(this.conductor);
  readonly placement = new FakePlacement();
  readonly images = new FakeImages();
  readonly migrationImages = new FakeMigrationImages();
  readonly scheduler = new FakeScheduler();
  readonly notifier = new RecordingNotifier();
  readonly bus = new RoutingComputeBus((host, method, args, context) => this.rpc(host, method, args, context));
  readonly nodes = new Map<string, BerthNode>();

  private constructor() {}

  /** Host A and host B, each with its compute node and Placement provider; B has no migration images if asked. */
  static async create(options: { withoutMigrationImagesOn?: string } = {}): Promise<TwoHosts> {
    const cloud = new TwoHosts();
    for (const host of [HOST_A, HOST_B]) await cloud.addNode(host, options.withoutMigrationImagesOn !== host);
    return cloud;
  }

  private async addNode(host: string, withMigrationImages: boolean): Promise<void> {
    const logger = silentLogger();
    const statePath = await mkdtemp(join(tmpdir(), `berth-two-hosts-${host}-`));
    const driver = new FakeDriver({ logger });
    await driver.init();
    const tracker = new ResourceTracker(
      {
        host, nodename: host, statePath, myIp: '127.0.0.1', reservedHostMemoryMb: 512, reservedHostCpus: 0, reservedHostDiskMb: 0,
        cpuAllocationRatio: null, ramAllocationRatio: null, diskAllocationRatio: null, initialCpuAllocationRatio: 16,
        initialRamAllocationRatio: 1.5, initialDiskAllocationRatio: 1,
      },
      this.client,
      driver,
      this.placement,
      logger,
    );
    const manager = new ComputeManager({
      options: {
        host, nodename: host, instanceNameTemplate: 'instance-%08x', maxConcurrentBuilds: 10, shutdownTimeoutSec: 60,
        resumeGuestsStateOnHostBoot: false, runningDeletedInstanceAction: 'reap',
      },
      conductor: this.client,
      driver,
      placement: this.placement,
      images: this.images,
      scheduler: this.scheduler,
      resourceTracker: tracker,
      notifier: this.notifier,
      logger,
      computeRpc: new ComputeRpcApi(this.bus),
      ...(withMigrationImages ? { migrationImages: this.migrationImages } : {}),
    });
    const [compute] = computeEndpoints(manager);
    this.nodes.set(host, { host, driver, tracker, manager, methods: compute?.methods ?? {}, statePath });
    await tracker.updateAvailableResource(undefined, true);
  }

  node(host: string): BerthNode {
    const node = this.nodes.get(host);
    if (!node) throw new Error(`no host ${host}`);
    return node;
  }

  provider(host: string): string {
    return this.node(host).tracker.nodeUuid as string;
  }

  async close(): Promise<void> {
    for (const node of this.nodes.values()) {
      node.tracker.stop();
      await node.driver.close();
      await rm(node.statePath, { recursive: true, force: true });
    }
  }

  rpc(host: string, method: string, args: Row, context: RequestContext): Promise<unknown> {
    const handler = this.node(host).methods[method];
    if (!handler) throw new Error(`no compute method ${method}`);
    const call: IncomingCall = { method, namespace: null, version: '6.0', args: structuredClone(args), context: structuredClone(context), isCall: false, messageId: `msg-${randomUUID()}` };
    return handler(call);
  }

  row(uuid: string): Row {
    return this.conductor.row(uuid);
  }

  /** An ACTIVE instance built on `host` through the real build path, holding its flavor on that host's provider. */
  async activeInstance(host: string = HOST_A): Promise<string> {
    const uuid = randomUUID();
    const requestId = `req-${randomUUID()}`;
    const captured = capturedCompute('build_and_run_instance');
    const args = JSON.parse(JSON.stringify(captured.args).replaceAll(CAPTURE_INSTANCE_UUID, uuid)) as Row;
    (args['image'] as Row)['container_format'] = 'docker';
    const data = (args['instance'] as Row)['nova_object.data'] as Row;
    data['id'] = ++instanceIds;
    this.conductor.addInstance(structuredClone(data));
    this.conductor.recordAction(uuid, requestId, 'create');
    await this.rpc(host, 'build_and_run_instance', args, userContext(requestId));
    const row = this.row(uuid);
    if (row['vm_state'] !== 'active' || row['host'] !== host) throw new Error(`build of ${uuid} ended in ${String(row['vm_state'])} on ${String(row['host'])}`);
    const flavor = (row['flavor'] as Row)['nova_object.data'] as Row;
    this.placement.allocate(uuid, this.provider(host), flavorResources(flavor), { project_id: String(row['project_id']), user_id: String(row['user_id']) });
    return uuid;
  }

  /** nova-api: the task state it sets before the cast, and the action it records. */
  api(uuid: string, taskState: string | null, action: string): { context: RequestContext; instance: Row } {
    const requestId = `req-${randomUUID()}`;
    const row = this.row(uuid);
    if (taskState !== null) {
      if (row['task_state'] !== null) throw new Error(`nova-api would refuse: task_state is ${String(row['task_state'])}`);
      row['task_state'] = taskState;
    }
    this.conductor.recordAction(uuid, requestId, action);
    return { context: userContext(requestId), instance: this.conductor.instancePrimitive(uuid) };
  }

  /**
   * compute_api.resize / migrate and the conductor's MigrationTask, with the scheduler having picked `dest`: the
   * migration (source = the instance's host), the source allocation moved to the migration, the flavor claimed on the
   * destination's provider for the instance. Returns the prep_resize cast's context and arguments.
   */
  scheduleMove(uuid: string, dest: string, flavor: Row | null = null): { context: RequestContext; args: Row; migrationId: number; migrationUuid: string } {
    const row = this.row(uuid);
    const oldFlavor = (row['flavor'] as Row)['nova_object.data'] as Row;
    const newFlavor = flavor ?? oldFlavor;
    const migrate = newFlavor['id'] === oldFlavor['id'];
    const { context } = this.api(uuid, 'resize_prep', migrate ? 'migrate' : 'resize');
    const migration = this.conductor.addMigration({
      uuid: randomUUID(), source_compute: row['host'], source_node: row['node'], dest_compute: null, dest_node: null, dest_host: null,
      old_instance_type_id: oldFlavor['id'], new_instance_type_id: newFlavor['id'], instance_uuid: uuid, status: 'pre-migrating',
      migration_type: migrate ? 'migration' : 'resize', user_id: row['user_id'], project_id: row['project_id'],
    });
    const held = this.placement.consumers.get(uuid);
    if (held) {
      this.placement.consumers.set(String(migration['uuid']), structuredClone(held));
      this.placement.consumers.delete(uuid);
    }
    this.placement.allocate(uuid, this.provider(dest), flavorResources(newFlavor), { project_id: String(row['project_id']), user_id: String(row['user_id']) });
    const args = {
      image: { id: row['image_ref'], name: 'tiny', container_format: 'docker', disk_format: 'raw', properties: {} },
      instance: this.conductor.instancePrimitive(uuid),
      flavor: { 'nova_object.name': 'Flavor', 'nova_object.namespace': 'nova', 'nova_object.version': '1.2', 'nova_object.data': structuredClone(newFlavor) },
      request_spec: structuredClone(capturedCompute('build_and_run_instance').args['request_spec']),
      filter_properties: { limits: {} },
      node: dest,
      clean_shutdown: true,
      migration: this.conductor.migrationPrimitive(Number(migration['id'])),
      host_list: [],
    };
    return { context, args, migrationId: Number(migration['id']), migrationUuid: String(migration['uuid']) };
  }
}
