// FakeDriver: the runtime contract in memory. It is the executable documentation of driver.ts (the same
// power-state table, typed errors, image cache and lifecycle events as driver/docker, so the manager behaves the
// same on either) and the benchmark baseline: no delay unless asked for, no timer left behind.

import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';

import pino, { type Logger } from 'pino';

import { commandOverride } from '../command-line';
import {
  DriverError,
  FlavorNotAllowed,
  InstanceNotFound,
  InvalidImage,
  NotSupported,
  POWER_STATE_NAMES,
  PowerState,
  type ComputeDriver,
  type CacheImageResult,
  type DriverCapabilities,
  type FlavorSpec,
  type HostResources,
  type ImageCacheKeepReason,
  type ImageCacheOptions,
  type ImageCacheReport,
  type ImageSource,
  type InstanceDiagnostics,
  type InstanceInfo,
  type InstanceRef,
  type InstanceSpec,
  type LifecycleEvent,
  type LifecycleTransition,
  type RebootType,
  type SnapshotTarget,
  type SpawnOptions,
} from '../driver';
import { NotADockerArchive, createDockerArchive, readDockerArchive, tarArchive } from '../image-archive';
import { POWER_TRANSITIONS, isAlive, planPowerTransition, type PowerOperation } from '../power-transitions';

/** The operations failNext() can make fail. */
export type FakeOperation = Exclude<keyof ComputeDriver, 'capabilities' | 'type' | 'onLifecycleEvent'>;

export interface FakeDriverOptions {
  /** What getAvailableResource reports (default: a huge host, like Nova's FakeDriver, so capacity never limits tests). */
  readonly resources?: Partial<HostResources>;
  /** Capability overrides; an operation whose capability is false throws NotSupported. Default: all docker's. */
  readonly capabilities?: Partial<DriverCapabilities>;
  /** Artificial delay before every operation, ms (default 0: the benchmark baseline). */
  readonly latencyMs?: number;
  /** Extra specs of the `fake:` namespace a flavor may use (default none: any `fake:` key is FlavorNotAllowed). */
  readonly allowedFlavorExtraSpecs?: readonly string[];
  readonly logger?: Logger;
}

const NAMESPACE = 'fake:';

const DEFAULT_CAPABILITIES: DriverCapabilities = {
  supportsPause: true,
  supportsSuspend: true,
  supportsSoftReboot: true,
  supportsSnapshot: true,
  supportsRebuild: true,
  supportsResize: true,
  supportsConsoleOutput: true,
  supportsDiagnostics: true,
  supportsAttachInterface: false,
  supportsDeviceTagging: false,
  supportsMultiattach: false,
  supportsImageTypeRaw: true,
  supportsImageTypeQcow2: false,
  hasImageCache: true,
};

const DEFAULT_RESOURCES: HostResources = {
  vcpus: 1000,
  memoryMb: 800_000,
  localGb: 600_000,
  diskAvailableLeastGb: 600_000,
  hypervisorType: 'fake',
  hypervisorVersion: 1000,
  cpuInfo: { arch: 'x86_64', model: 'fake', vendor: 'fake', topology: { sockets: 1, cores: 1000, threads: 1 }, features: [] },
  supportedInstances: [['x86_64', 'fake', 'exe']],
};

interface FakeInstance {
  readonly spec: InstanceSpec;
  readonly runtimeId: string;
  readonly imageId: string;
  /** The Glance image it was spawned from: the image cache keeps that image while the instance exists. */
  readonly glanceImageId: string;
  flavor: FlavorSpec;
  powerState: PowerState;
  startedAt: Date | null;
  readonly console: string[];
}

export class FakeDriver implements ComputeDriver {
  readonly type = 'fake';
  readonly capabilities: DriverCapabilities;

  private readonly resources: HostResources;
  private readonly latencyMs: number;
  private readonly allowedFlavorExtraSpecs: readonly string[];
  private readonly logger: Logger;
  private readonly instances = new Map<string, FakeInstance>();
  /** Glance image id → the docker image id its archive loads as (the fake's image cache). */
  private readonly images = new Map<string, string>();
  private readonly loading = new Map<string, Promise<string>>();
  /** Glance image id → spawns between their cache lookup and their instance (in use, like DockerDriver's pins). */
  private readonly pinned = new Map<string, number>();
  /** Glance image id → when the image cache manager first saw it unused (ms; in memory, unlike DockerDriver's). */
  private readonly unusedSince = new Map<string, number>();
  private readonly failures = new Map<FakeOperation, Error[]>();
  private readonly listeners = new Set<(event: LifecycleEvent) => void>();
  private initialised = false;

  constructor(options: FakeDriverOptions = {}) {
    this.capabilities = { ...DEFAULT_CAPABILITIES, ...options.capabilities };
    this.resources = { ...DEFAULT_RESOURCES, ...options.resources };
    this.latencyMs = options.latencyMs ?? 0;
    this.allowedFlavorExtraSpecs = options.allowedFlavorExtraSpecs ?? [];
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ driver: 'fake' });
  }

  // --- test controls -------------------------------------------------------------------------------------------

  /** The next call of `operation` rejects with `error` (before it changes anything). Calls queue up. */
  failNext(operation: FakeOperation, error: Error): void {
    this.failures.set(operation, [...(this.failures.get(operation) ?? []), error]);
  }

  /** Something behind the driver's back ends the instance: `stopped` (killed, exited) or `died` (crashed). */
  simulateExit(uuid: string, how: 'stopped' | 'died'): void {
    const instance = this.instances.get(uuid);
    if (!instance || !isAlive(instance.powerState)) return;
    instance.powerState = how === 'died' ? PowerState.CRASHED : PowerState.SHUTDOWN;
    instance.console.push(how === 'died' ? 'Kernel panic - not syncing: fake crash' : 'fake: killed');
    this.emit(uuid, how);
  }

  /** The Glance image ids in the fake's image cache. */
  cachedImageIds(): string[] {
    return [...this.images.keys()].sort();
  }

  // --- the contract --------------------------------------------------------------------------------------------

  async init(): Promise<void> {
    await this.enter('init', false);
    this.initialised = true;
  }

  async close(): Promise<void> {
    await this.enter('close', false);
    this.initialised = false;
  }

  async getAvailableResource(): Promise<HostResources> {
    await this.enter('getAvailableResource');
    return this.resources;
  }

  async listInstances(): Promise<InstanceInfo[]> {
    await this.enter('listInstances');
    return [...this.instances.values()].map((instance) => this.infoOf(instance));
  }

  async getInfo(ref: InstanceRef): Promise<InstanceInfo> {
    await this.enter('getInfo');
    return this.infoOf(this.get(ref));
  }

  async spawn(spec: InstanceSpec, image: ImageSource, options: SpawnOptions = {}): Promise<void> {
    await this.enter('spawn');
    await this.create(spec, image, options, true);
  }

  async finishMigration(spec: InstanceSpec, image: ImageSource, powerOn: boolean): Promise<void> {
    await this.enter('finishMigration');
    await this.create(spec, image, {}, powerOn);
  }

  /** spawn and finishMigration: the checks, the image (cache), the instance; running only when `start`. */
  private async create(spec: InstanceSpec, image: ImageSource, options: SpawnOptions, start: boolean): Promise<void> {
    if (image.containerFormat !== 'docker') {
      throw new InvalidImage(image.id, `container_format is ${image.containerFormat}; this driver runs only docker images`);
    }
    this.checkExtraSpecs(spec.flavor);
    const command = commandOverride(image);
    if (this.instances.has(spec.uuid)) throw new DriverError(`Instance ${spec.uuid} already exists`);
    // Pinned from the cache lookup until the instance exists, so an image cache pass in between keeps the image.
    const unpin = this.pin(image.id);
    let imageId: string;
    try {
      imageId = await this.ensureImage(image);
    } finally {
      unpin();
    }
    if (this.instances.has(spec.uuid)) throw new DriverError(`Instance ${spec.uuid} already exists`);
    const instance: FakeInstance = {
      spec,
      runtimeId: randomBytes(32).toString('hex'),
      imageId,
      glanceImageId: image.id,
      flavor: spec.flavor,
      powerState: start ? PowerState.RUNNING : PowerState.SHUTDOWN,
      startedAt: start ? new Date() : null,
      console: [start ? `fake: booting ${spec.name} (${spec.hostname}) from image ${image.id}` : `fake: created ${spec.name} (${spec.hostname}) from image ${image.id}`],
    };
    if (!start) {
      this.instances.set(spec.uuid, instance);
      this.logger.info({ instance_uuid: spec.uuid, image_id: image.id }, 'instance created, not started');
      return;
    }
    if (command) instance.console.push(`fake: running ${JSON.stringify(command)}`);
    if (options.injectedFiles?.length) instance.console.push(`fake: ignored ${options.injectedFiles.length} injected files`);
    instance.console.push(`fake: ${spec.hostname} login:`);
    this.instances.set(spec.uuid, instance);
    this.logger.info({ instance_uuid: spec.uuid, image_id: image.id }, 'instance spawned');
    this.emit(spec.uuid, 'started');
  }

  async destroy(ref: InstanceRef): Promise<void> {
    await this.enter('destroy');
    const instance = this.instances.get(ref.uuid);
    if (!instance) return;
    this.instances.delete(ref.uuid);
    if (isAlive(instance.powerState)) this.emit(ref.uuid, 'stopped');
  }

  async powerOff(ref: InstanceRef, _timeoutSec: number): Promise<void> {
    await this.enter('powerOff');
    this.transition(ref, 'powerOff');
  }

  async powerOn(ref: InstanceRef): Promise<void> {
    await this.enter('powerOn');
    this.transition(ref, 'powerOn');
  }

  async reboot(ref: InstanceRef, type: RebootType, _timeoutSec: number): Promise<void> {
    await this.enter('reboot');
    if (type === 'SOFT') this.require('supportsSoftReboot', 'soft reboot');
    const instance = this.get(ref);
    // Like DockerDriver: stop if alive, then start; from any state.
    if (isAlive(instance.powerState)) {
      instance.powerState = PowerState.SHUTDOWN;
      this.emit(ref.uuid, 'stopped');
    }
    instance.powerState = PowerState.RUNNING;
    instance.startedAt = new Date();
    instance.console.push(`fake: ${type === 'SOFT' ? 'rebooting' : 'reset'}`, `fake: ${instance.spec.hostname} login:`);
    this.emit(ref.uuid, 'started');
  }

  async pause(ref: InstanceRef): Promise<void> {
    await this.enter('pause');
    this.require('supportsPause', 'pause');
    this.transition(ref, 'pause');
  }

  async unpause(ref: InstanceRef): Promise<void> {
    await this.enter('unpause');
    this.require('supportsPause', 'unpause');
    this.transition(ref, 'unpause');
  }

  async suspend(ref: InstanceRef): Promise<void> {
    await this.enter('suspend');
    this.require('supportsSuspend', 'suspend');
    this.transition(ref, 'suspend');
  }

  async resume(ref: InstanceRef): Promise<void> {
    await this.enter('resume');
    this.require('supportsSuspend', 'resume');
    this.transition(ref, 'resume');
  }

  async snapshot(ref: InstanceRef, target: SnapshotTarget): Promise<void> {
    await this.enter('snapshot');
    this.require('supportsSnapshot', 'snapshot');
    const instance = this.get(ref);
    await target.updateTaskState('image_pending_upload');
    // A real, loadable docker archive: one empty layer, labelled with where it came from.
    const { archive } = createDockerArchive(
      { cmd: ['/bin/sh'], labels: { 'org.openstack.fake.source_instance': ref.uuid, 'org.openstack.fake.base_image': instance.imageId } },
      tarArchive([]),
    );
    await target.updateTaskState('image_uploading');
    await target.upload(Readable.from([archive]));
  }

  async changeFlavor(ref: InstanceRef, flavor: FlavorSpec): Promise<void> {
    await this.enter('changeFlavor');
    this.require('supportsResize', 'resize');
    this.checkExtraSpecs(flavor);
    this.get(ref).flavor = flavor;
  }

  async getConsoleOutput(ref: InstanceRef, tailLines: number | null): Promise<string> {
    await this.enter('getConsoleOutput');
    this.require('supportsConsoleOutput', 'console output');
    const lines = this.get(ref).console;
    const shown = tailLines === null ? lines : lines.slice(Math.max(0, lines.length - Math.max(0, Math.floor(tailLines))));
    return shown.map((line) => `${line}\n`).join('');
  }

  async getDiagnostics(ref: InstanceRef): Promise<InstanceDiagnostics> {
    await this.enter('getDiagnostics');
    this.require('supportsDiagnostics', 'diagnostics');
    const instance = this.get(ref);
    const { vcpus, memoryMb } = instance.flavor;
    const running = instance.powerState === PowerState.RUNNING && instance.startedAt !== null;
    // Values after Nova's FakeDriver.get_instance_diagnostics.
    return {
      state: instance.powerState,
      hypervisor: 'fake',
      hypervisorOs: 'fake-os',
      uptimeSec: running && instance.startedAt ? Math.floor((Date.now() - instance.startedAt.getTime()) / 1000) : null,
      numCpus: vcpus,
      cpuDetails: Array.from({ length: vcpus }, (_, id) => ({ id, time: 17_300_000_000, utilisation: 15 })),
      memoryMaxMb: memoryMb,
      memoryUsedMb: Math.floor(memoryMb / 2),
      nicDetails: instance.spec.hasNetwork
        ? [{ macAddress: 'DE:AD:BE:EF:00:01', rxOctets: 2070139, rxPackets: 26701, rxErrors: 0, rxDrop: 0, txOctets: 140208, txPackets: 662, txErrors: 0, txDrop: 0 }]
        : [],
      diskDetails: [{ readBytes: 262144, readRequests: 112, writeBytes: 5778432, writeRequests: 488, errorsCount: -1 }],
      configDrive: false,
    };
  }

  onLifecycleEvent(listener: (event: LifecycleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async manageImageCache(inUse: ReadonlySet<string>, options: ImageCacheOptions): Promise<ImageCacheReport> {
    await this.enter('manageImageCache');
    this.require('hasImageCache', 'image cache management');
    const now = (options.now ?? new Date()).getTime();
    const byInstances = new Set([...this.instances.values()].map((instance) => instance.glanceImageId));
    const removed: string[] = [];
    const kept: Array<{ imageId: string; reason: ImageCacheKeepReason }> = [];
    // The same decisions as DockerDriver's pass, in the same order; see driver/docker/image-cache-manager.ts.
    for (const id of this.images.keys()) {
      const busy: ImageCacheKeepReason | null = inUse.has(id)
        ? 'instance'
        : byInstances.has(id)
          ? 'container'
          : this.loading.has(id) || this.pinned.has(id)
            ? 'in-flight'
            : null;
      if (busy) {
        this.unusedSince.delete(id);
        kept.push({ imageId: id, reason: busy });
        continue;
      }
      const since = this.unusedSince.get(id) ?? now;
      this.unusedSince.set(id, since);
      if (now - since < options.minimumAgeSec * 1000) kept.push({ imageId: id, reason: 'too-young' });
      else if (!options.removeUnused) kept.push({ imageId: id, reason: 'removal-disabled' });
      else removed.push(id);
    }
    for (const id of removed) {
      this.images.delete(id);
      this.unusedSince.delete(id);
      this.logger.info({ image_id: id }, 'removed an unused cached image');
    }
    for (const id of this.unusedSince.keys()) if (!this.images.has(id)) this.unusedSince.delete(id);
    return { removed, kept };
  }

  async cacheImage(image: ImageSource): Promise<CacheImageResult> {
    await this.enter('cacheImage');
    this.require('hasImageCache', 'image pre-caching');
    if (image.containerFormat !== 'docker') {
      throw new InvalidImage(image.id, `container_format is ${image.containerFormat}; this driver runs only docker images`);
    }
    if (this.images.has(image.id) && !this.loading.has(image.id)) return 'existing';
    await this.ensureImage(image);
    return 'cached';
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Common entry: injected latency, then an injected failure, then the init check. */
  private async enter(operation: FakeOperation, needsInit = true): Promise<void> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const queued = this.failures.get(operation);
    const failure = queued?.shift();
    if (queued && queued.length === 0) this.failures.delete(operation);
    if (failure) throw failure;
    if (needsInit && !this.initialised) throw new DriverError('The fake driver is not initialised (call init() first)');
  }

  private pin(imageId: string): () => void {
    this.pinned.set(imageId, (this.pinned.get(imageId) ?? 0) + 1);
    return () => {
      const left = (this.pinned.get(imageId) ?? 1) - 1;
      if (left > 0) this.pinned.set(imageId, left);
      else this.pinned.delete(imageId);
    };
  }

  private require(capability: keyof DriverCapabilities, operation: string): void {
    if (!this.capabilities[capability]) throw new NotSupported(operation);
  }

  private get(ref: InstanceRef): FakeInstance {
    const instance = this.instances.get(ref.uuid);
    if (!instance) throw new InstanceNotFound(ref.uuid);
    return instance;
  }

  private transition(ref: InstanceRef, operation: PowerOperation): void {
    const instance = this.get(ref);
    if (planPowerTransition(ref.uuid, operation, instance.powerState) === 'noop') return;
    const { to, event } = POWER_TRANSITIONS[operation];
    instance.powerState = to;
    if (operation === 'powerOn') instance.startedAt = new Date();
    instance.console.push(`fake: ${POWER_STATE_NAMES[to]}`);
    this.emit(ref.uuid, event);
  }

  private checkExtraSpecs(flavor: FlavorSpec): void {
    for (const key of Object.keys(flavor.extraSpecs)) {
      if (key.startsWith(NAMESPACE) && !this.allowedFlavorExtraSpecs.includes(key)) {
        throw new FlavorNotAllowed(`Flavor ${flavor.name}: extra spec ${key} is not allowed on this host`);
      }
    }
  }

  /** The image cache, keyed by Glance image id like DockerDriver's: fetch() only on a miss, one load at a time. */
  private async ensureImage(image: ImageSource): Promise<string> {
    const cached = this.images.get(image.id);
    if (cached) return cached;
    const pending = this.loading.get(image.id);
    if (pending) return pending;
    const load = (async () => {
      const path = await image.fetch();
      try {
        const archive = await readDockerArchive(path);
        this.images.set(image.id, archive.imageId);
        return archive.imageId;
      } catch (error) {
        if (error instanceof NotADockerArchive) throw new InvalidImage(image.id, `not a docker save archive: ${error.message}`);
        throw new DriverError(`Cannot read the downloaded image ${image.id}: ${(error as Error).message}`, { cause: error });
      } finally {
        await rm(path, { force: true });
      }
    })().finally(() => this.loading.delete(image.id));
    this.loading.set(image.id, load);
    return load;
  }

  private infoOf(instance: FakeInstance): InstanceInfo {
    return {
      uuid: instance.spec.uuid,
      name: instance.spec.name,
      powerState: instance.powerState,
      runtimeId: instance.runtimeId,
      runtimeState: POWER_STATE_NAMES[instance.powerState],
      startedAt: instance.startedAt,
    };
  }

  private emit(uuid: string, transition: LifecycleTransition): void {
    const event: LifecycleEvent = { uuid, transition, at: new Date() };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: error, instance_uuid: uuid }, 'lifecycle event listener failed');
      }
    }
  }
}
