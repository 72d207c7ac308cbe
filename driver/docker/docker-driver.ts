// DockerDriver: the runtime contract on the Docker Engine, one container `nova-<uuid>` per instance.

import type { Readable } from 'node:stream';

import type Docker from 'dockerode';
import type { Logger } from 'pino';

import {
  DriverError,
  InstanceInvalidState,
  InstanceNotFound,
  InvalidImage,
  POWER_STATE_NAMES,
  PowerState,
  type CacheImageResult,
  type ComputeDriver,
  type DriverCapabilities,
  type FlavorSpec,
  type HostResources,
  type ImageCacheOptions,
  type ImageCacheReport,
  type ImageSource,
  type InstanceDiagnostics,
  type InstanceInfo,
  type InstanceRef,
  type InstanceSpec,
  type LifecycleEvent,
  type RebootType,
  type SnapshotTarget,
  type SpawnOptions,
} from '../driver';
import { isAlive, planPowerTransition, type PowerOperation } from '../power-transitions';
import { consoleText } from './console-log';
import { LABEL, containerCreateOptions, containerName, ownedBy, ownedLabelFilter, resourceLimits } from './container-config';
import { instanceInfoOf, powerStateOf } from './container-state';
import { connectDocker, engineInfo, engineSave, type DockerConnection } from './docker-connection';
import { dockerStatus, toDriverError } from './docker-errors';
import { compileDockerOptions, type CompiledDockerOptions, type DockerDriverOptions } from './docker-options';
import { diagnosticsOf, type StatsSample } from './diagnostics';
import { downloadWithDeadline, InactivityDeadline, withDeadline } from './engine-deadline';
import { containerPolicy } from './extra-specs';
import { cpuInfoOf, diskSpaceOf, hostResourcesOf, type EngineInfo } from './host-resources';
import { ImageCache, cachedImageRef } from './image-cache';
import { UnusedClock } from './image-cache-clock';
import { runImageCachePass } from './image-cache-manager';
import { LifecycleEventStream } from './lifecycle-events';
import { SuspendMarkers } from './suspend-markers';

/** How many containers listInstances inspects at once. */
const INSPECT_CONCURRENCY = 8;

export class DockerDriver implements ComputeDriver {
  readonly type = 'docker';
  readonly capabilities: DriverCapabilities = {
    supportsPause: true,
    supportsSuspend: true,
    supportsSoftReboot: true,
    supportsSnapshot: true,
    // Rebuild is destroy + spawn, both of which this driver does.
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

  private readonly options: CompiledDockerOptions;
  private readonly logger: Logger;
  private readonly markers: SuspendMarkers;
  /** When each cached image was first seen unused (the image cache manager's clock, kept across restarts). */
  private readonly unusedClock: UnusedClock;
  private readonly listeners = new Set<(event: LifecycleEvent) => void>();
  private runtime: { connection: DockerConnection; images: ImageCache; events: LifecycleEventStream; hostCpus: number } | null = null;
  /** Container id by instance uuid, once created or inspected as ours: labels never change, so one check is enough. */
  private readonly ownedIds = new Map<string, string>();

  /** Validates the options; throws InvalidDockerOptions. Nothing is contacted before init(). */
  constructor(options: DockerDriverOptions) {
    this.options = compileDockerOptions(options);
    this.logger = this.options.logger.child({ driver: 'docker' });
    this.markers = new SuspendMarkers(this.options.stateDir);
    this.unusedClock = new UnusedClock(this.options.stateDir, this.logger);
  }

  /** The API version negotiated with the engine (after init). */
  get apiVersion(): string {
    return this.connected().connection.apiVersion;
  }

  async init(): Promise<void> {
    if (this.runtime) return;
    const connection = await connectDocker(this.options);
    const info = await this.engineInfo(connection.docker);
    await this.markers.load();
    await this.unusedClock.load();
    const events = new LifecycleEventStream({
      docker: connection.docker,
      logger: this.logger,
      reconnectDelayMs: this.options.eventsReconnectDelayMs,
      apiTimeoutMs: this.options.apiTimeoutMs,
      computeHost: this.options.computeHost,
      contextOf: (uuid, containerId, action) => this.eventContext(connection.docker, uuid, containerId, action),
      emit: (event) => this.emit(event),
    });
    const images = new ImageCache(connection.docker, this.logger, this.options.apiTimeoutMs, this.unusedClock);
    this.runtime = { connection, images, events, hostCpus: info.NCPU };
    events.start();
    this.logger.info(
      { api_version: connection.apiVersion, server_version: connection.serverVersion, ncpu: info.NCPU },
      'connected to the Docker Engine',
    );
  }

  async close(): Promise<void> {
    const runtime = this.runtime;
    this.runtime = null;
    await runtime?.events.close();
  }

  async getAvailableResource(): Promise<HostResources> {
    const info = await this.engineInfo(this.docker);
    const local = this.options.endpoint.kind === 'unix';
    const [disk, cpuInfo] = await Promise.all([diskSpaceOf(info, local), cpuInfoOf(info.Architecture, info.NCPU, local)]);
    return hostResourcesOf(info, disk, cpuInfo);
  }

  async listInstances(): Promise<InstanceInfo[]> {
    let containers: Docker.ContainerInfo[];
    try {
      const filters = { label: ownedLabelFilter(this.options.computeHost) };
      containers = await this.request('list containers', (signal) => this.docker.listContainers({ all: true, filters, abortSignal: signal }));
    } catch (error) {
      throw toDriverError(error, 'list containers');
    }
    // Only containers whose name matches their label: an image committed from one of ours carries the label too.
    const ours = containers.filter((c) => c.Names.includes(`/${containerName(c.Labels[LABEL.instanceUuid] ?? '')}`));
    const infos: InstanceInfo[] = [];
    for (let i = 0; i < ours.length; i += INSPECT_CONCURRENCY) {
      const batch = ours.slice(i, i + INSPECT_CONCURRENCY).map(async (c) => {
        try {
          const inspected = await this.request('inspect', (signal) => this.docker.getContainer(c.Id).inspect({ abortSignal: signal }));
          return instanceInfoOf(inspected, this.markers.has(c.Labels[LABEL.instanceUuid] ?? ''));
        } catch (error) {
          if (dockerStatus(error) === 404) return null; // Removed since the listing.
          throw toDriverError(error, 'inspect container');
        }
      });
      for (const info of await Promise.all(batch)) if (info) infos.push(info);
    }
    return infos;
  }

  async getInfo(instance: InstanceRef): Promise<InstanceInfo> {
    return instanceInfoOf(await this.inspect(instance), this.markers.has(instance.uuid));
  }

  async spawn(instance: InstanceSpec, image: ImageSource, options: SpawnOptions = {}): Promise<void> {
    const log = this.logger.child({ instance_uuid: instance.uuid });
    if (options.injectedFiles?.length) log.warn({ count: options.injectedFiles.length }, 'injected files are not supported by the docker driver; ignored');
    // nova-api generates an admin password for every boot; like libvirt without inject_password, it is not used.
    if (options.adminPassword) log.debug('setting an admin password is not supported by the docker driver; ignored');
    const container = await this.createFromImage(instance, image, log);
    await this.startCreated(instance, container, log);
    log.info({ container_id: container.id, image_id: image.id }, 'instance spawned');
  }

  async finishMigration(instance: InstanceSpec, image: ImageSource, powerOn: boolean): Promise<void> {
    const log = this.logger.child({ instance_uuid: instance.uuid });
    const container = await this.createFromImage(instance, image, log);
    // A STOPPED instance is created, never started (Nova's finish_migration with power_on=False).
    if (powerOn) await this.startCreated(instance, container, log);
    log.info({ container_id: container.id, image_id: image.id, started: powerOn }, 'migrated instance created');
  }

  /**
   * The container of an instance, created (not started) from a Glance image: everything that can be refused is
   * refused before anything is downloaded or created; the image is loaded into the cache when it is not there.
   */
  private async createFromImage(instance: InstanceSpec, image: ImageSource, log: Logger): Promise<Docker.Container> {
    const { images, hostCpus } = this.connected();
    if (image.containerFormat !== 'docker') {
      throw new InvalidImage(image.id, `container_format is ${image.containerFormat}; this driver runs only docker images`);
    }
    const policy = containerPolicy(instance.flavor, this.options);
    const create = containerCreateOptions(instance, { ref: cachedImageRef(image), source: image }, policy, this.options, hostCpus);
    if (create.skippedMetadataKeys.length) {
      log.warn({ keys: create.skippedMetadataKeys }, 'metadata keys that are not environment variable names were not passed');
    }
    // In use from the cache lookup until the container exists (then the engine itself refuses to remove the image).
    const unpin = images.pin(image.id);
    let container: Docker.Container;
    try {
      await images.ensure(image);
      try {
        container = await this.request(`create of ${containerName(instance.uuid)}`, (signal) => this.docker.createContainer({ ...create.body, abortSignal: signal }));
      } catch (error) {
        if (dockerStatus(error) === 409) throw new DriverError(`A container named ${containerName(instance.uuid)} already exists`, { cause: error });
        throw toDriverError(error, `create of ${containerName(instance.uuid)}`);
      }
    } finally {
      unpin();
    }
    this.ownedIds.set(instance.uuid, container.id);
    return container;
  }

  /** Starts a container createFromImage made; on failure it goes, so nothing is left behind. */
  private async startCreated(instance: InstanceSpec, container: Docker.Container, log: Logger): Promise<void> {
    try {
      await this.request(`start of ${containerName(instance.uuid)}`, (signal) => container.start({ abortSignal: signal }));
    } catch (error) {
      this.ownedIds.delete(instance.uuid);
      await this.request('remove', (signal) => container.remove({ force: true, v: true, abortSignal: signal })).catch((cleanup: unknown) => {
        if (dockerStatus(cleanup) !== 404) log.error({ err: cleanup }, 'could not remove the container of a failed spawn');
      });
      throw toDriverError(error, `start of ${containerName(instance.uuid)}`);
    }
  }

  async destroy(instance: InstanceRef): Promise<void> {
    this.ownedIds.delete(instance.uuid);
    try {
      await this.request('remove', (signal) => this.container(instance).remove({ force: true, v: true, abortSignal: signal }));
    } catch (error) {
      if (dockerStatus(error) !== 404) throw toDriverError(error, 'destroy', instance.uuid);
    }
    await this.markers.clear(instance.uuid);
  }

  async powerOff(instance: InstanceRef, timeoutSec: number): Promise<void> {
    if (!(await this.plan(instance, 'powerOff'))) return;
    const t = graceSeconds(timeoutSec);
    await this.call(instance, 'stop', (c, signal) => c.stop({ t, abortSignal: signal }), this.graceDeadline(t));
    await this.markers.clear(instance.uuid);
  }

  async powerOn(instance: InstanceRef): Promise<void> {
    if (!(await this.plan(instance, 'powerOn'))) return;
    await this.call(instance, 'start', (c, signal) => c.start({ abortSignal: signal }));
  }

  async reboot(instance: InstanceRef, type: RebootType, timeoutSec: number): Promise<void> {
    const state = await this.powerState(instance);
    if (type === 'SOFT' && state === PowerState.RUNNING) {
      const t = graceSeconds(timeoutSec);
      await this.call(instance, 'restart', (c, signal) => c.restart({ t, abortSignal: signal }), this.graceDeadline(t));
      return;
    }
    // HARD, or SOFT of an instance that is not running (as libvirt falls back to a hard reboot): kill, then start.
    if (isAlive(state)) await this.call(instance, 'kill', (c, signal) => c.kill({ abortSignal: signal }));
    await this.markers.clear(instance.uuid);
    await this.call(instance, 'start', (c, signal) => c.start({ abortSignal: signal }));
  }

  async pause(instance: InstanceRef): Promise<void> {
    if (!(await this.plan(instance, 'pause'))) return;
    await this.call(instance, 'pause', (c, signal) => c.pause({ abortSignal: signal }));
  }

  async unpause(instance: InstanceRef): Promise<void> {
    if (!(await this.plan(instance, 'unpause'))) return;
    await this.call(instance, 'unpause', (c, signal) => c.unpause({ abortSignal: signal }));
  }

  async suspend(instance: InstanceRef): Promise<void> {
    if (!(await this.plan(instance, 'suspend'))) return;
    // The marker first, so the `pause` event is already reported as `suspended`.
    await this.markers.mark(instance.uuid);
    try {
      await this.call(instance, 'pause', (c, signal) => c.pause({ abortSignal: signal }));
    } catch (error) {
      await this.markers.clear(instance.uuid);
      throw error;
    }
  }

  async resume(instance: InstanceRef): Promise<void> {
    if (!(await this.plan(instance, 'resume'))) return;
    await this.call(instance, 'unpause', (c, signal) => c.unpause({ abortSignal: signal }));
    await this.markers.clear(instance.uuid);
  }

  async snapshot(instance: InstanceRef, target: SnapshotTarget): Promise<void> {
    const log = this.logger.child({ instance_uuid: instance.uuid, image_id: target.imageId });
    const container = await this.inspect(instance);
    let committed: string;
    try {
      const commit = (signal: AbortSignal) => this.docker.getContainer(container.Id).commit({ pause: true, abortSignal: signal });
      committed = ((await withDeadline('commit', this.options.snapshotTimeoutMs, commit)) as { Id: string }).Id;
    } catch (error) {
      throw toDriverError(error, 'commit', instance.uuid);
    }
    try {
      await target.updateTaskState('image_pending_upload');
      // `docker save` exports the whole image before its first byte, then streams it.
      const deadline = new InactivityDeadline('save of the snapshot', this.options.apiTimeoutMs);
      let archive: Readable;
      try {
        deadline.touch(this.options.snapshotTimeoutMs);
        // Saved by id, so the archive names no repository.
        const response = await engineSave(this.docker, [committed], deadline.signal);
        archive = downloadWithDeadline(response as Readable, deadline);
      } catch (error) {
        deadline.finish();
        throw toDriverError(deadline.failure(error), 'save of the snapshot');
      }
      await target.updateTaskState('image_uploading');
      try {
        await target.upload(archive);
      } catch (error) {
        // The upload reports the stream's failure in its own words; a missed deadline says what really happened.
        throw deadline.failure(error);
      } finally {
        archive.destroy();
        deadline.finish();
      }
      log.info({ docker_image: committed }, 'snapshot uploaded');
    } finally {
      await this.request('image remove', (signal) => this.docker.getImage(committed).remove({ force: true, abortSignal: signal })).catch((error: unknown) => {
        log.warn({ err: error, docker_image: committed }, 'could not remove the committed snapshot image');
      });
    }
  }

  async changeFlavor(instance: InstanceRef, flavor: FlavorSpec): Promise<void> {
    const policy = containerPolicy(flavor, this.options);
    const container = await this.inspect(instance);
    const current = container.HostConfig;
    // Capabilities and the root filesystem's mode are fixed at creation; only a rebuild can change them.
    const sameCaps = sameSet(current.CapAdd ?? [], policy.capAdd);
    if (!sameCaps || Boolean(current.ReadonlyRootfs) !== policy.readOnlyRootFilesystem) {
      throw new DriverError(
        `Flavor ${flavor.name} changes the capabilities or the root filesystem mode of instance ${instance.uuid}, which needs a rebuild`,
      );
    }
    const limits = resourceLimits(flavor, policy, this.connected().hostCpus);
    await this.call(instance, 'update', (c, signal) => c.update({ ...limits, abortSignal: signal }));
  }

  async getConsoleOutput(instance: InstanceRef, tailLines: number | null): Promise<string> {
    // Without `tail`, Docker returns the whole log.
    const tail = tailLines === null ? {} : { tail: Math.max(0, Math.floor(tailLines)) };
    const logs = async (id: string): Promise<string> => {
      try {
        const raw = await this.request('logs', (signal) =>
          this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, ...tail, abortSignal: signal }));
        return consoleText(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
      } catch (error) {
        throw toDriverError(error, 'logs', instance.uuid);
      }
    };
    // One Engine request when the container is known to be ours; a container removed behind our back is looked up again.
    const known = this.ownedIds.get(instance.uuid);
    if (known !== undefined) {
      try {
        return await logs(known);
      } catch (error) {
        if (!(error instanceof InstanceNotFound)) throw error;
        this.ownedIds.delete(instance.uuid);
      }
    }
    return logs((await this.inspect(instance)).Id);
  }

  async getDiagnostics(instance: InstanceRef): Promise<InstanceDiagnostics> {
    const container = await this.inspect(instance);
    let stats: StatsSample;
    try {
      // One sample, without waiting for a second one to compute rates.
      stats = (await this.request('stats', (signal) => {
        const oneShot = { stream: false as const, 'one-shot': true, abortSignal: signal };
        return this.docker.getContainer(container.Id).stats(oneShot);
      })) as unknown as StatsSample;
    } catch (error) {
      throw toDriverError(error, 'stats', instance.uuid);
    }
    return diagnosticsOf(container, stats, powerStateOf(container.State, this.markers.has(instance.uuid)), new Date());
  }

  onLifecycleEvent(listener: (event: LifecycleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async manageImageCache(inUse: ReadonlySet<string>, options: ImageCacheOptions): Promise<ImageCacheReport> {
    const { images } = this.connected();
    return runImageCachePass(
      { docker: this.docker, images, clock: this.unusedClock, logger: this.logger, request: (operation, call) => this.request(operation, call) },
      inUse,
      options,
    );
  }

  async cacheImage(image: ImageSource): Promise<CacheImageResult> {
    const { images } = this.connected();
    // The checks a spawn makes before it downloads anything.
    if (image.containerFormat !== 'docker') {
      throw new InvalidImage(image.id, `container_format is ${image.containerFormat}; this driver runs only docker images`);
    }
    cachedImageRef(image);
    const unpin = images.pin(image.id);
    try {
      const { ref, loaded } = await images.ensure(image);
      this.logger.info({ image_id: image.id, docker_image_ref: ref, loaded }, loaded ? 'image pre-cached' : 'image was already cached');
      return loaded ? 'cached' : 'existing';
    } finally {
      unpin();
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  private connected(): NonNullable<DockerDriver['runtime']> {
    if (!this.runtime) throw new DriverError('The docker driver is not initialised (call init() first)');
    return this.runtime;
  }

  private get docker(): Docker {
    return this.connected().connection.docker;
  }

  private container(instance: InstanceRef): Docker.Container {
    return this.docker.getContainer(containerName(instance.uuid));
  }

  /** The instance's container; InstanceNotFound when it is missing or is not one of ours. */
  private async inspect(instance: InstanceRef): Promise<Docker.ContainerInspectInfo> {
    let container: Docker.ContainerInspectInfo;
    try {
      container = await this.request('inspect', (signal) => this.container(instance).inspect({ abortSignal: signal }));
    } catch (error) {
      throw toDriverError(error, 'inspect', instance.uuid);
    }
    const labels = container.Config.Labels ?? undefined;
    if (labels?.[LABEL.instanceUuid] !== instance.uuid || !ownedBy(labels, this.options.computeHost)) throw new InstanceNotFound(instance.uuid);
    this.ownedIds.set(instance.uuid, container.Id);
    return container;
  }

  private async powerState(instance: InstanceRef): Promise<PowerState> {
    return (await this.getInfo(instance)).powerState;
  }

  /** True when the operation must act; false for a no-op; throws InstanceInvalidState. */
  private async plan(instance: InstanceRef, operation: PowerOperation): Promise<boolean> {
    return planPowerTransition(instance.uuid, operation, await this.powerState(instance)) === 'act';
  }

  /** One Engine request under the API deadline (or the given one); fails with RuntimeUnavailable when it passes. */
  private request<T>(operation: string, call: (signal: AbortSignal) => Promise<T>, deadlineMs = this.options.apiTimeoutMs): Promise<T> {
    return withDeadline(operation, deadlineMs, call);
  }

  /** stop and restart wait for the grace period before they answer. */
  private graceDeadline(graceSec: number): number {
    return graceSec * 1000 + this.options.apiTimeoutMs;
  }

  /**
   * Runs one container call under a deadline; 304 (already in that state) is success, 409 means the state changed
   * under us.
   */
  private async call(
    instance: InstanceRef,
    what: string,
    action: (c: Docker.Container, signal: AbortSignal) => Promise<unknown>,
    deadlineMs = this.options.apiTimeoutMs,
  ): Promise<void> {
    try {
      await this.request(what, (signal) => action(this.container(instance), signal), deadlineMs);
    } catch (error) {
      if (dockerStatus(error) === 304) return;
      if (dockerStatus(error) === 409) {
        const state = await this.powerState(instance).catch(() => null);
        throw new InstanceInvalidState(instance.uuid, state === null ? 'changing' : POWER_STATE_NAMES[state], what);
      }
      throw toDriverError(error, what, instance.uuid);
    }
  }

  private async engineInfo(docker: Docker): Promise<EngineInfo> {
    try {
      return (await this.request('info', (signal) => engineInfo(docker, signal))) as EngineInfo;
    } catch (error) {
      throw toDriverError(error, 'info');
    }
  }

  private async eventContext(docker: Docker, uuid: string, containerId: string, action: string) {
    const suspended = this.markers.has(uuid);
    if (action !== 'die') return { suspended, crashed: false };
    try {
      const state = (await this.request('inspect', (signal) => docker.getContainer(containerId).inspect({ abortSignal: signal }))).State;
      return { suspended, crashed: state.OOMKilled || state.Dead };
    } catch {
      // Removed already (destroy): an ordinary stop.
      return { suspended, crashed: false };
    }
  }

  private emit(event: LifecycleEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: error, instance_uuid: event.uuid }, 'lifecycle event listener failed');
      }
    }
  }
}

/** Docker's `t`: whole seconds, never negative. */
function graceSeconds(timeoutSec: number): number {
  return Math.max(0, Math.round(timeoutSec));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a.map((cap) => cap.toUpperCase().replace(/^CAP_/, '')));
  const right = new Set(b);
  return left.size === right.size && [...right].every((cap) => left.has(cap));
}
