// The compute manager: Nova's nova/compute/manager.py ComputeManager for a container host. The only place that knows
// Nova's semantics (states, actions, faults, retries) and the only importer of driver/. Every transition below
// follows the Python method of the same name; where Berth differs (no Neutron ports, no volumes), the comment says so.
import type { Readable } from 'node:stream';
import type { ComputeDriver, InstanceRef, LifecycleEvent, PowerState as PowerStateT } from '../../driver/driver';
import { InstanceNotFound as DriverInstanceNotFound, PowerState, POWER_STATE_NAMES } from '../../driver/driver';
import type { Logger } from '../log';
import type { RequestContext } from '../messaging/types';
import { RemoteFailure } from '../messaging/failure';
import { adminContext } from '../messaging';
import { newObject, type Instance, type Migration, type NetworkRequestList, type NovaObject, type RequestSpec, type Selection } from '../objects';
import type { ConductorClient } from '../conductor';
import type { InstanceNotifier } from '../notifications/types';
import { builtinError, fromDriverError, isFailure, notImplemented, novaError } from './exceptions';
import { addInstanceFault, runInstanceOperation, tracebackText, type OperationDeps } from './instance-operation';
import { instanceRef, instanceSpec } from './instance-spec';
import { KeyedMutex, Semaphore } from './concurrency';
import type { ImagePort, PlacementPort, ResourceTrackerPort, SchedulerPort } from './ports';
import type { MigrationImagePort } from './migration-images';
import type { ComputeRpcApi } from './compute-rpcapi';
import { ResizeOperations } from './resize';
import { IMAGE_CACHE_DEFAULTS, ImageCacheManager, type ImageCacheManagerOptions } from './image-cache-manager';
import { EvacuateOperations } from './evacuate';
import {
  ALLOW_HARD_REBOOT,
  ALLOW_SOFT_REBOOT,
  BUILD_TASK_STATES,
  HARD_REBOOT_STATES,
  REBUILD_TASK_STATES,
  SIMPLE_OPERATIONS,
  SNAPSHOT_TASK_STATES,
  SOFT_REBOOT_STATES,
  TaskState,
  VmState,
  type SimpleOperation,
} from './states';

export interface ComputeManagerOptions {
  readonly host: string;
  readonly nodename: string;
  /** [DEFAULT] instance_name_template */
  readonly instanceNameTemplate: string;
  /** [DEFAULT] max_concurrent_builds (0 = unlimited) */
  readonly maxConcurrentBuilds: number;
  /** [DEFAULT] shutdown_timeout, seconds of graceful stop before the runtime forces it */
  readonly shutdownTimeoutSec: number;
  /** [DEFAULT] resume_guests_state_on_host_boot */
  readonly resumeGuestsStateOnHostBoot: boolean;
  /** [DEFAULT] running_deleted_instance_action */
  readonly runningDeletedInstanceAction: 'noop' | 'log' | 'shutdown' | 'reap';
  /** [image_cache] (default: Nova's defaults). */
  readonly imageCache?: ImageCacheManagerOptions;
}

export interface ComputeManagerDeps {
  readonly options: ComputeManagerOptions;
  readonly conductor: ConductorClient;
  readonly driver: ComputeDriver;
  readonly placement: PlacementPort;
  readonly images: ImagePort;
  readonly scheduler: SchedulerPort;
  readonly resourceTracker: ResourceTrackerPort;
  readonly notifier: InstanceNotifier;
  readonly logger: Logger;
  /** The casts to other computes (resize and cold migration steps; to ourselves for a same-host resize). */
  readonly computeRpc: ComputeRpcApi;
  /** The temporary Glance image of a cross-host move (service credentials); without it instances never move. */
  readonly migrationImages?: MigrationImagePort;
}

type BuildResult = 'active' | 'failed' | 'rescheduled';

const NETWORK_NONE = 'none';

export class ComputeManager {
  private readonly locks = new KeyedMutex();
  private readonly buildSemaphore: Semaphore;
  private readonly op: OperationDeps;
  private readonly log: Logger;
  /** Instance uuids with a power-state sync in flight (Nova's _syncs_in_progress). */
  private readonly syncsInProgress = new Set<string>();
  /** Counters the resource tracker publishes in ComputeNode.stats (failed_builds). */
  failedBuilds = 0;
  /** prep_resize … finish_revert_resize (src/compute/resize.ts). */
  readonly resize: ResizeOperations;
  /** _run_image_cache_manager_pass and cache_images (src/compute/image-cache-manager.ts). */
  readonly imageCache: ImageCacheManager;
  /** rebuild_instance(recreate=True) and _destroy_evacuated_instances (src/compute/evacuate.ts). */
  readonly evacuation: EvacuateOperations;

  constructor(private readonly deps: ComputeManagerDeps) {
    this.buildSemaphore = new Semaphore(deps.options.maxConcurrentBuilds);
    this.log = deps.logger.child({ component: 'compute-manager' });
    this.op = { host: deps.options.host, conductor: deps.conductor, notifier: deps.notifier, logger: this.log };
    this.imageCache = new ImageCacheManager({
      host: deps.options.host,
      options: deps.options.imageCache ?? IMAGE_CACHE_DEFAULTS,
      conductor: deps.conductor,
      driver: deps.driver,
      images: deps.images,
      logger: deps.logger,
    });
    this.resize = new ResizeOperations({
      ...deps,
      host: deps.options.host,
      locks: this.locks,
      op: this.op,
      ref: (instance) => this.ref(instance),
      powerOffTimeout: (instance, clean) => (clean ? shutdownTimeout(instance.get('system_metadata') ?? {}, deps.options.shutdownTimeoutSec) : 0),
      stopInstance: (context, instance) => {
        const stop = SIMPLE_OPERATIONS['stop_instance'] as SimpleOperation;
        return runInstanceOperation(this.op, context, instance, { method: stop.method, args: { instance: this.uuidOf(instance) } }, () =>
          this.simpleOperationBody(context, stop, instance, { cleanShutdown: true }),
        );
      },
    });
    this.evacuation = new EvacuateOperations({
      ...deps,
      host: deps.options.host,
      nodename: deps.options.nodename,
      instanceNameTemplate: deps.options.instanceNameTemplate,
      logger: this.log,
      ref: (instance) => this.ref(instance),
      getPowerState: (instance) => this.getPowerState(instance),
      // self.stop_instance(context, instance, False): the decorated method, so it has its own event.
      stopInstance: (context, instance) => {
        const stop = SIMPLE_OPERATIONS['stop_instance'] as SimpleOperation;
        return runInstanceOperation(this.op, context, instance, { method: stop.method, args: { instance: this.uuidOf(instance) } }, () =>
          this.simpleOperationBody(context, stop, instance, { cleanShutdown: false }),
        );
      },
    });
  }

  get host(): string {
    return this.deps.options.host;
  }

  get driverCapabilities(): ComputeDriver['capabilities'] {
    return this.deps.driver.capabilities;
  }

  private ref(instance: Instance): InstanceRef {
    return instanceRef(this.deps.options.instanceNameTemplate, instance);
  }

  private uuidOf(instance: Instance): string {
    return String(instance.get('uuid'));
  }

  private instanceLog(context: RequestContext, instance: Instance | string): Logger {
    const uuid = typeof instance === 'string' ? instance : this.uuidOf(instance);
    return this.log.child({ request_id: context.request_id, instance_uuid: uuid });
  }

  /** Nova's context.elevated(): same request, admin rights. */
  private elevated(context: RequestContext): RequestContext {
    const roles = Array.isArray(context.roles) ? context.roles : [];
    return { ...context, is_admin: true, roles: roles.includes('admin') ? roles : [...roles, 'admin'] };
  }

  /** _get_power_state: the runtime's view, NOSTATE when it has no such instance. */
  async getPowerState(instance: Instance): Promise<PowerStateT> {
    try {
      return (await this.deps.driver.getInfo(this.ref(instance))).powerState;
    } catch (err) {
      if (err instanceof DriverInstanceNotFound) return PowerState.NOSTATE;
      throw err;
    }
  }

  private save(context: RequestContext, instance: Instance, expected?: { task?: Array<string | null> | string | null; vm?: string | string[] }): Promise<void> {
    const opts: { expectedTaskState?: Array<string | null> | string | null; expectedVmState?: string | string[] } = {};
    if (expected?.task !== undefined) opts.expectedTaskState = expected.task;
    if (expected?.vm !== undefined) opts.expectedVmState = expected.vm;
    return this.deps.conductor.instanceSave(context, instance, opts);
  }

  private requireCapability(capability: keyof ComputeDriver['capabilities'], what: string): void {
    if (!this.deps.driver.capabilities[capability]) throw notImplemented(`${what} is not supported by the ${this.deps.driver.type} driver`);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // build_and_run_instance (cast)

  /** Runs the whole build; the RPC layer tracks the promise (graceful drain) but replies to nobody: it is a cast. */
  buildAndRunInstance(context: RequestContext, args: BuildArgs): Promise<void> {
    const uuid = this.uuidOf(args.instance);
    return this.locks.run(uuid, () =>
      this.buildSemaphore.run(async () => {
        let result: BuildResult = 'failed';
        try {
          result = await this.doBuildAndRunInstance(context, args);
        } catch (err) {
          this.instanceLog(context, uuid).error({ err }, 'build failed before it could be handled');
        } finally {
          if (result === 'failed') {
            // The instance is not on this host any more: release what the scheduler claimed for it in Placement.
            await this.deleteAllocations(context, uuid);
            await this.deps.resourceTracker.dropInstance(context, uuid).catch(() => undefined);
          }
          if (result === 'failed' || result === 'rescheduled') this.failedBuilds++;
          else this.failedBuilds = 0;
        }
      }),
    );
  }

  private async deleteAllocations(context: RequestContext, uuid: string): Promise<void> {
    try {
      await this.deps.placement.deleteAllocationsForConsumer(context, uuid);
    } catch (err) {
      this.instanceLog(context, uuid).error({ err }, 'could not delete the instance allocations in placement');
    }
  }

  private doBuildAndRunInstance(context: RequestContext, args: BuildArgs): Promise<BuildResult> {
    const { instance } = args;
    const log = this.instanceLog(context, instance);
    return runInstanceOperation(this.op, context, instance, { method: '_do_build_and_run_instance', args: { instance: this.uuidOf(instance) } }, async () => {
      try {
        log.debug('Starting instance...');
        instance.set('vm_state', VmState.BUILDING);
        instance.set('task_state', null);
        await this.save(context, instance, { task: [TaskState.SCHEDULING, null] });
      } catch (err) {
        if (isFailure(err, 'InstanceNotFound', 'UnexpectedTaskStateError', 'UnexpectedDeletingTaskStateError')) {
          log.debug({ reason: err.message }, 'Instance disappeared or changed before build');
          return 'failed';
        }
        throw err;
      }
      const decodedFiles = decodeInjectedFiles(args.injectedFiles);
      const started = Date.now();
      try {
        await this.buildAndRunInstanceInner(context, args, decodedFiles);
        log.info({ seconds: (Date.now() - started) / 1000 }, 'Took %s seconds to build instance.', ((Date.now() - started) / 1000).toFixed(2));
        return 'active';
      } catch (raw) {
        const err = fromDriverError(raw, this.uuidOf(instance));
        if (err.is('RescheduledException')) {
          const retry = args.filterProperties['retry'];
          const reason = String(err.kwargs['reason'] ?? err.message);
          if (!retry || typeof retry !== 'object') {
            log.debug('Retry info not present, will not reschedule');
            await addInstanceFault(this.op, context, this.uuidOf(instance), err, reason);
            nilOutHostAndNode(instance);
            await this.setErrorState(context, instance, true);
            return 'failed';
          }
          log.info({ reason }, 'Rescheduling the build');
          const retryInfo = retry as Record<string, unknown>;
          retryInfo['exc'] = tracebackText(err).split(/(?<=\n)/);
          retryInfo['exc_reason'] = reason;
          nilOutHostAndNode(instance);
          instance.set('task_state', TaskState.SCHEDULING);
          await this.save(context, instance);
          await this.deps.placement.deleteAllocationsForConsumer(context, this.uuidOf(instance));
          await this.deps.resourceTracker.dropInstance(context, this.uuidOf(instance));
          await this.deps.conductor.buildInstances(context, {
            instances: [instance],
            image: args.image,
            filterProperties: args.filterProperties,
            adminPassword: args.adminPassword,
            injectedFiles: Array.isArray(args.injectedFiles) ? args.injectedFiles : [],
            requestedNetworks: args.requestedNetworks as NetworkRequestList | null,
            securityGroups: args.securityGroups,
            requestSpec: args.requestSpec as RequestSpec | null,
            hostLists: [Array.isArray(args.hostList) ? (args.hostList as Selection[]) : []],
          });
          return 'rescheduled';
        }
        if (err.is('InstanceNotFound') || err.is('UnexpectedDeletingTaskStateError')) {
          log.debug('Instance disappeared during build.');
          await this.destroyQuietly(context, instance);
          return 'failed';
        }
        log.error({ err }, err.is('BuildAbortException') ? err.message : 'Unexpected build failure, not rescheduling build.');
        await addInstanceFault(this.op, context, this.uuidOf(instance), err);
        nilOutHostAndNode(instance);
        await this.setErrorState(context, instance, true);
        return 'failed';
      }
    });
  }

  /** _build_and_run_instance: claim, "network", "block devices", spawn, then ACTIVE. Throws Rescheduled/BuildAbort. */
  private async buildAndRunInstanceInner(context: RequestContext, args: BuildArgs, injectedFiles: Array<[string, Buffer]>): Promise<void> {
    const { instance, image } = args;
    const uuid = this.uuidOf(instance);
    const log = this.instanceLog(context, instance);
    const imageName = typeof image['name'] === 'string' ? image['name'] : undefined;
    await this.deps.notifier.instanceAction(context, instance, 'create', 'start', imageName === undefined ? {} : { imageName });

    const sysmeta = { ...((instance.get('system_metadata') as Record<string, string | null> | undefined) ?? {}) };
    sysmeta['boot_roles'] = (Array.isArray(context.roles) ? context.roles : []).join(',');
    instance.set('system_metadata', sysmeta);

    const notifyError = async (fault: RemoteFailure): Promise<void> => {
      await this.deps.notifier.instanceAction(context, instance, 'create', 'error', { fault });
    };

    let claimed = false;
    try {
      this.checkDeviceTagging(args);
      const hasNetwork = this.wantsNetwork(args.requestedNetworks, uuid);
      await this.deps.resourceTracker.instanceClaim(context, instance);
      claimed = true;

      // _build_resources: networking (Berth binds no Neutron ports, see wantsNetwork), then block devices (none).
      // This first save also writes the claim's host / node / launched_on (see ResourceTracker.instanceClaim).
      instance.set('vm_state', VmState.BUILDING);
      instance.set('task_state', TaskState.NETWORKING);
      await this.save(context, instance, { task: [null] });
      instance.set('vm_state', VmState.BUILDING);
      instance.set('task_state', TaskState.BLOCK_DEVICE_MAPPING);
      await this.save(context, instance);

      instance.set('vm_state', VmState.BUILDING);
      instance.set('task_state', TaskState.SPAWNING);
      await this.save(context, instance, { task: TaskState.BLOCK_DEVICE_MAPPING });

      log.debug('Start spawning the instance on the hypervisor.');
      const started = Date.now();
      const spec = instanceSpec(this.deps.options.instanceNameTemplate, instance, hasNetwork);
      try {
        await this.deps.driver.spawn(spec, this.deps.images.source(context, image), {
          injectedFiles,
          adminPassword: args.adminPassword,
        });
      } catch (spawnErr) {
        // driver.spawn leaves nothing behind on failure; destroy anyway in case the runtime failed half-way.
        await this.deps.driver.destroy(this.ref(instance)).catch(() => undefined);
        throw spawnErr;
      }
      log.info('Took %s seconds to spawn the instance on the hypervisor.', ((Date.now() - started) / 1000).toFixed(2));
    } catch (raw) {
      const err = fromDriverError(raw, uuid);
      if (claimed && !err.is('InstanceNotFound', 'UnexpectedDeletingTaskStateError')) {
        await this.deps.resourceTracker.dropInstance(context, uuid);
      }
      await notifyError(err);
      if (err.is('InstanceNotFound') || err.is('UnexpectedDeletingTaskStateError') || err.is('BuildAbortException')) throw err;
      if (err.is('ComputeResourcesUnavailable')) {
        throw novaError('RescheduledException', { instance_uuid: uuid, reason: err.message });
      }
      if (err.is('ImageUnacceptable', 'ImageNotFound', 'InvalidInput', 'FlavorDiskTooSmall', 'FlavorMemoryTooSmall')) {
        throw novaError('BuildAbortException', { instance_uuid: uuid, reason: err.message });
      }
      if (err.is('UnexpectedTaskStateError')) {
        throw novaError('BuildAbortException', { instance_uuid: uuid, reason: err.message });
      }
      log.error({ err }, 'Failed to build and run instance');
      throw novaError('RescheduledException', { instance_uuid: uuid, reason: err.message });
    }

    // _update_instance_after_spawn
    instance.set('power_state', await this.getPowerState(instance));
    instance.set('vm_state', VmState.ACTIVE);
    instance.set('task_state', null);
    instance.set('launched_at', new Date());
    try {
      await this.save(context, instance, { task: TaskState.SPAWNING });
    } catch (err) {
      if (isFailure(err, 'InstanceNotFound', 'UnexpectedDeletingTaskStateError')) {
        await notifyError(err);
      }
      throw err;
    }
    await this.deps.scheduler.updateInstanceInfo(context, [instance]);
    await this.deps.notifier.instanceAction(context, instance, 'create', 'end', { message: 'Success' });
  }

  /** _check_device_tagging */
  private checkDeviceTagging(args: BuildArgs): void {
    const tagged = [...objectsOf(args.requestedNetworks), ...objectsOf(args.blockDeviceMapping)].some((o) => {
      const tag = o.get('tag');
      return tag !== undefined && tag !== null;
    });
    if (tagged && !this.deps.driver.capabilities.supportsDeviceTagging) {
      throw novaError('BuildAbortException', {
        instance_uuid: this.uuidOf(args.instance),
        reason: 'Attempt to boot guest with tagged devices on host that does not support tagging.',
      }, 'Attempt to boot guest with tagged devices on host that does not support tagging.');
    }
  }

  /**
   * Berth runs an instance without network unless Nova gave it ports, and it does not bind Neutron ports (yet):
   * `--nic none` (or no request at all) builds a container with network mode none; a request for a network or a
   * port aborts the build with a fault that says so, rather than booting something the user did not ask for.
   */
  private wantsNetwork(requestedNetworks: NovaObject | null, uuid: string): boolean {
    const requests = objectsOf(requestedNetworks);
    const real = requests.filter((r) => r.get('network_id') !== NETWORK_NONE);
    if (real.length === 0) return false;
    throw novaError('BuildAbortException', {
      instance_uuid: uuid,
      reason: 'Berth does not bind Neutron ports: boot the server with --nic none',
    });
  }

  private async setErrorState(context: RequestContext, instance: Instance, cleanTaskState: boolean): Promise<void> {
    try {
      instance.set('vm_state', VmState.ERROR);
      if (cleanTaskState) instance.set('task_state', null);
      await this.save(context, instance);
    } catch (err) {
      if (!isFailure(err, 'InstanceNotFound')) throw err;
      this.instanceLog(context, instance).debug('Instance has been destroyed from under us while trying to set it to ERROR');
    }
  }

  private async destroyQuietly(context: RequestContext, instance: Instance): Promise<void> {
    try {
      await this.deps.driver.destroy(this.ref(instance));
    } catch (err) {
      this.instanceLog(context, instance).warn({ err }, 'could not clean up the container of a vanished instance');
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // terminate_instance (cast)

  terminateInstance(context: RequestContext, instance: Instance): Promise<void> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method: 'terminate_instance', args: { instance: uuid } }, () =>
      this.locks.run(uuid, async () => {
        try {
          await this.deleteInstance(context, instance);
        } catch (err) {
          if (isFailure(err, 'InstanceNotFound') || err instanceof DriverInstanceNotFound) {
            this.instanceLog(context, instance).info('Instance disappeared during terminate');
            return;
          }
          this.instanceLog(context, instance).error({ err }, 'Setting instance vm_state to ERROR');
          await this.setErrorState(context, instance, false);
          throw err;
        }
      }),
    );
  }

  /** _delete_instance */
  private async deleteInstance(context: RequestContext, instance: Instance): Promise<void> {
    const uuid = this.uuidOf(instance);
    await this.deps.notifier.instanceAction(context, instance, 'delete', 'start');
    await this.shutdownInstance(context, instance, true);
    instance.set('vm_state', VmState.DELETED);
    instance.set('task_state', null);
    instance.set('power_state', PowerState.NOSTATE);
    instance.set('terminated_at', new Date());
    await this.save(context, instance);
    await this.completeDeletion(context, uuid);
    // Only destroy the row once the allocations are gone (Nova's order).
    await this.deps.conductor.instanceDestroy(context, instance);
    await this.deps.notifier.instanceAction(context, instance, 'delete', 'end');
  }

  /** _shutdown_instance: destroy the container (idempotent); no ports or volumes to release on a Berth host. */
  private async shutdownInstance(context: RequestContext, instance: Instance, notify: boolean): Promise<void> {
    const log = this.instanceLog(context, instance);
    log.info('Terminating instance');
    if (notify) await this.deps.notifier.instanceAction(context, instance, 'shutdown', 'start');
    const started = Date.now();
    await this.deps.driver.destroy(this.ref(instance));
    log.info('Took %s seconds to destroy the instance on the hypervisor.', ((Date.now() - started) / 1000).toFixed(2));
    if (notify) await this.deps.notifier.instanceAction(context, instance, 'shutdown', 'end');
  }

  /** _complete_deletion */
  private async completeDeletion(context: RequestContext, uuid: string): Promise<void> {
    await this.deps.resourceTracker.dropInstance(context, uuid);
    await this.deps.placement.deleteAllocationsForConsumer(context, uuid);
    await this.deps.scheduler.deleteInstanceInfo(context, uuid);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // stop / start / pause / unpause / suspend / resume (casts): one table, one flow.

  runSimpleOperation(context: RequestContext, method: string, instance: Instance, extra: { cleanShutdown?: boolean } = {}): Promise<void> {
    const spec = SIMPLE_OPERATIONS[method];
    if (!spec) throw builtinError('AttributeError', `'ComputeManager' object has no attribute '${method}'`);
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method, args: { instance: uuid } }, async () => {
      if (spec.capability) this.requireCapability(spec.capability, spec.method);
      // stop_instance and reboot are @utils.synchronized inside; start/pause/suspend are not, but serialising every
      // operation on one instance is what the runtime needs (a pause must not race a stop).
      await this.locks.run(uuid, () => this.simpleOperationBody(this.elevated(context), spec, instance, extra));
    });
  }

  private async simpleOperationBody(context: RequestContext, spec: SimpleOperation, instance: Instance, extra: { cleanShutdown?: boolean }): Promise<void> {
    const log = this.instanceLog(context, instance);
    const ref = this.ref(instance);
    const expected: Array<string | null> = [spec.expectedTaskState];
    let sysmeta = { ...((instance.get('system_metadata') as Record<string, string | null> | undefined) ?? {}) };

    if (spec.method === 'stop_instance') {
      const current = await this.getPowerState(instance);
      if (current === PowerState.NOSTATE || current === PowerState.SHUTDOWN || current === PowerState.CRASHED) {
        log.info('Instance is already powered off in the hypervisor when stop is called.');
        expected.push(null);
      }
    }
    if (spec.method === 'suspend_instance') {
      sysmeta['old_vm_state'] = String(instance.get('vm_state'));
      instance.set('system_metadata', sysmeta);
    }
    await this.deps.notifier.instanceAction(context, instance, spec.notification, 'start');

    const priorVmState = String(instance.get('vm_state'));
    const callDriver = async (): Promise<void> => {
      switch (spec.driverCall) {
        case 'powerOff': {
          // _get_power_off_values: image_os_shutdown_timeout from system_metadata, else shutdown_timeout.
          const timeout = extra.cleanShutdown === false ? 0 : shutdownTimeout(sysmeta, this.deps.options.shutdownTimeoutSec);
          return this.deps.driver.powerOff(ref, timeout);
        }
        case 'powerOn':
          return this.deps.driver.powerOn(ref);
        case 'pause':
          return this.deps.driver.pause(ref);
        case 'unpause':
          return this.deps.driver.unpause(ref);
        case 'suspend':
          return this.deps.driver.suspend(ref);
        case 'resume':
          return this.deps.driver.resume(ref);
      }
    };
    if (spec.errorOutOnException) {
      await this.errorOutInstanceOnException(context, instance, priorVmState, callDriver);
    } else {
      await callDriver();
    }

    instance.set('power_state', await this.getPowerState(instance));
    if (spec.finalVmState === 'fromOldVmState') {
      sysmeta = { ...((instance.get('system_metadata') as Record<string, string | null> | undefined) ?? {}) };
      const old = sysmeta['old_vm_state'];
      delete sysmeta['old_vm_state'];
      instance.set('system_metadata', sysmeta);
      instance.set('vm_state', old ?? VmState.ACTIVE);
    } else {
      instance.set('vm_state', spec.finalVmState);
    }
    instance.set('task_state', null);
    if (spec.method === 'start_instance') {
      // A shelved instance that was started again no longer has a shelve snapshot to keep.
      const current = (instance.get('system_metadata') as Record<string, string | null> | undefined) ?? {};
      const snapshotId = current['shelved_image_id'];
      if (snapshotId) {
        await this.deps.images.delete(context, snapshotId).catch((err: unknown) => log.warn({ err }, 'Failed to delete snapshot from shelved instance'));
      }
      if (['shelved_at', 'shelved_image_id', 'shelved_host'].some((k) => k in current)) {
        const cleaned = { ...current };
        for (const k of ['shelved_at', 'shelved_image_id', 'shelved_host']) delete cleaned[k];
        instance.set('system_metadata', cleaned);
      }
    }
    // Python's stop_instance always sends a list ([powering-off], plus None when already off); the others one state.
    await this.save(context, instance, { task: spec.method === 'stop_instance' ? expected : spec.expectedTaskState });
    await this.deps.notifier.instanceAction(context, instance, spec.notification, 'end');
  }

  /** _error_out_instance_on_exception */
  private async errorOutInstanceOnException(context: RequestContext, instance: Instance, instanceState: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (raw) {
      const err = fromDriverError(raw, this.uuidOf(instance));
      if (err.className === 'NotImplementedError') {
        instance.set('vm_state', instanceState);
        instance.set('task_state', null);
        await this.save(context, instance).catch(() => undefined);
        throw err;
      }
      this.instanceLog(context, instance).error({ err }, 'Setting instance vm_state to ERROR');
      await this.setErrorState(context, instance, false);
      throw err;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // reboot_instance (cast)

  rebootInstance(context: RequestContext, instance: Instance, rebootType: 'SOFT' | 'HARD'): Promise<void> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method: 'reboot_instance', args: { instance: uuid, reboot_type: rebootType } }, () =>
      this.locks.run(uuid, () => this.rebootInstanceBody(this.elevated(context), instance, rebootType)),
    );
  }

  private async rebootInstanceBody(context: RequestContext, instance: Instance, rebootType: 'SOFT' | 'HARD'): Promise<void> {
    const log = this.instanceLog(context, instance);
    const soft = rebootType === 'SOFT';
    if (soft && !this.deps.driver.capabilities.supportsSoftReboot) {
      // A driver without a soft reboot does a hard one, as Nova's drivers fall back.
      log.info('soft reboot not supported by the driver, rebooting hard');
    }
    instance.set('task_state', soft ? TaskState.REBOOT_PENDING : TaskState.REBOOT_PENDING_HARD);
    const expectedStates = soft ? [...SOFT_REBOOT_STATES] : [...HARD_REBOOT_STATES];
    log.info('Rebooting instance');
    await this.deps.notifier.instanceAction(context, instance, 'reboot', 'start');
    instance.set('power_state', await this.getPowerState(instance));
    await this.save(context, instance, { task: expectedStates });
    if (instance.get('power_state') !== PowerState.RUNNING) {
      log.warn({ state: instance.get('power_state'), expected: PowerState.RUNNING }, 'trying to reboot a non-running instance');
    }
    const newVmState = instance.get('vm_state') === VmState.RESCUED ? VmState.RESCUED : VmState.ACTIVE;
    let newPowerState: PowerStateT | null = null;
    try {
      instance.set('task_state', soft ? TaskState.REBOOT_STARTED : TaskState.REBOOT_STARTED_HARD);
      await this.save(context, instance, { task: soft ? TaskState.REBOOT_PENDING : TaskState.REBOOT_PENDING_HARD });
      const type = soft && this.deps.driver.capabilities.supportsSoftReboot ? 'SOFT' : 'HARD';
      await this.deps.driver.reboot(this.ref(instance), type, this.deps.options.shutdownTimeoutSec);
    } catch (raw) {
      const err = fromDriverError(raw, this.uuidOf(instance));
      newPowerState = await this.getPowerState(instance).catch(() => PowerState.NOSTATE);
      if (newPowerState === PowerState.RUNNING) {
        log.warn({ err }, 'Reboot failed but instance is running');
        await addInstanceFault(this.op, context, this.uuidOf(instance), err);
        await this.deps.notifier.instanceAction(context, instance, 'reboot', 'error', { fault: err });
      } else {
        log.error({ err }, 'Cannot reboot instance');
        await this.setErrorState(context, instance, false);
        throw err;
      }
    }
    if (newPowerState === null) newPowerState = await this.getPowerState(instance);
    try {
      instance.set('power_state', newPowerState);
      instance.set('vm_state', newVmState);
      instance.set('task_state', null);
      await this.save(context, instance);
    } catch (err) {
      if (!isFailure(err, 'InstanceNotFound')) throw err;
      log.warn('Instance disappeared during reboot');
    }
    await this.deps.notifier.instanceAction(context, instance, 'reboot', 'end');
  }

  // ---------------------------------------------------------------------------------------------------------------
  // snapshot_instance / backup_instance (casts)

  snapshotInstance(context: RequestContext, instance: Instance, imageId: string): Promise<void> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method: 'snapshot_instance', args: { instance: uuid, image_id: imageId } }, async () => {
      await this.deleteImageOnError(context, instance, imageId, async () => {
        // snapshot_instance: the API set image_snapshot_pending; moving to image_snapshot acknowledges the request.
        instance.set('task_state', TaskState.IMAGE_SNAPSHOT);
        await this.save(context, instance, { task: TaskState.IMAGE_SNAPSHOT_PENDING });
        await this.snapshotBody(context, instance, imageId, TaskState.IMAGE_SNAPSHOT);
      });
    });
  }

  backupInstance(context: RequestContext, instance: Instance, imageId: string, backupType: string, rotation: number): Promise<void> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method: 'backup_instance', args: { instance: uuid, image_id: imageId } }, async () => {
      await this.deleteImageOnError(context, instance, imageId, () => this.snapshotBody(context, instance, imageId, TaskState.IMAGE_BACKUP));
      await this.rotateBackups(context, instance, backupType, rotation);
    });
  }

  /**
   * @delete_image_on_error, and _snapshot_instance's "Instance disappeared during snapshot": an instance deleted
   * meanwhile ends the snapshot quietly (the delete owns the instance now), with the queued image removed.
   */
  private async deleteImageOnError(context: RequestContext, instance: Instance, imageId: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (raw) {
      await this.deps.images.delete(context, imageId).catch((delErr: unknown) => this.log.warn({ err: delErr, image_id: imageId }, 'could not delete the failed snapshot image'));
      const err = fromDriverError(raw, this.uuidOf(instance));
      if (err.is('InstanceNotFound', 'UnexpectedDeletingTaskStateError')) {
        this.instanceLog(context, instance).debug({ reason: err.message }, 'Instance disappeared during snapshot');
        return;
      }
      throw err;
    }
  }

  /** _snapshot_instance */
  private async snapshotBody(context: RequestContext, instance: Instance, imageId: string, expectedTaskState: string): Promise<void> {
    this.requireCapability('supportsSnapshot', 'snapshot');
    const uuid = this.uuidOf(instance);
    const log = this.instanceLog(context, instance);
    await this.locks.run(uuid, async () => {
      instance.set('power_state', await this.getPowerState(instance));
      await this.save(context, instance);
      log.info('instance snapshotting');
      if (instance.get('power_state') !== PowerState.RUNNING) {
        log.warn({ state: instance.get('power_state') }, 'trying to snapshot a non-running instance');
      }
      await this.deps.notifier.instanceAction(context, instance, 'snapshot', 'start', { snapshotImageId: imageId });
      let expected = expectedTaskState;
      await this.deps.driver.snapshot(this.ref(instance), {
        imageId,
        upload: (data: Readable) => this.deps.images.uploadSnapshot(context, imageId, data, snapshotProperties(instance)),
        updateTaskState: async (taskState) => {
          instance.set('task_state', taskState);
          await this.save(context, instance, { task: expected });
          expected = taskState;
        },
      });
      instance.set('task_state', null);
      await this.save(context, instance, { task: TaskState.IMAGE_UPLOADING });
      await this.deps.notifier.instanceAction(context, instance, 'snapshot', 'end', { snapshotImageId: imageId });
    });
  }

  private async rotateBackups(context: RequestContext, instance: Instance, backupType: string, rotation: number): Promise<void> {
    const backups = await this.deps.images.listBackups(context, this.uuidOf(instance), backupType);
    for (const id of backups.slice(Math.max(rotation, 0))) {
      this.instanceLog(context, instance).info({ image_id: id }, 'Deleting image (backup rotation)');
      await this.deps.images.delete(context, id);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // rebuild_instance (cast): destroy the container and spawn the (new) image, as Nova's default driver rebuild.

  rebuildInstance(context: RequestContext, instance: Instance, args: RebuildArgs): Promise<void> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method: 'rebuild_instance', args: { instance: uuid } }, () =>
      this.locks.run(uuid, async () => {
        const log = this.instanceLog(context, instance);
        if (args.recreate) {
          return this.evacuation.evacuate(this.elevated(context), instance, {
            migration: args.migration ?? null,
            onSharedStorage: args.onSharedStorage ?? null,
            scheduledNode: args.scheduledNode ?? null,
            adminPassword: args.adminPassword ?? null,
            injectedFiles: decodeInjectedFiles(args.injectedFiles),
          });
        }
        this.requireCapability('supportsRebuild', 'rebuild');
        const originalVmState = String(instance.get('vm_state'));
        const imageRef = args.imageRef ?? String(instance.get('image_ref') ?? '');
        try {
          const image = await this.deps.images.show(context, imageRef);
          await this.deps.notifier.instanceAction(context, instance, 'rebuild', 'start', { imageName: String(image['name'] ?? '') });
          instance.set('power_state', await this.getPowerState(instance));
          instance.set('task_state', TaskState.REBUILDING);
          await this.save(context, instance, { task: [TaskState.REBUILDING] });
          await this.deps.driver.destroy(this.ref(instance));
          instance.set('task_state', TaskState.REBUILD_BLOCK_DEVICE_MAPPING);
          await this.save(context, instance, { task: [TaskState.REBUILDING] });
          instance.set('task_state', TaskState.REBUILD_SPAWNING);
          await this.save(context, instance, { task: [TaskState.REBUILD_BLOCK_DEVICE_MAPPING] });
          const spec = instanceSpec(this.deps.options.instanceNameTemplate, instance, false);
          await this.deps.driver.spawn(spec, this.deps.images.source(context, image));
          instance.set('image_ref', imageRef);
          instance.set('power_state', await this.getPowerState(instance));
          instance.set('vm_state', VmState.ACTIVE);
          instance.set('task_state', null);
          instance.set('launched_at', new Date());
          await this.save(context, instance, { task: [TaskState.REBUILD_SPAWNING] });
          if (originalVmState === VmState.STOPPED) {
            log.info('bringing vm to original state: stopped');
            instance.set('vm_state', VmState.ACTIVE);
            instance.set('task_state', TaskState.POWERING_OFF);
            instance.set('progress', 0);
            await this.save(context, instance);
            // self.stop_instance(context, instance, False): the decorated method, so it has its own event.
            const stop = SIMPLE_OPERATIONS['stop_instance'] as SimpleOperation;
            await runInstanceOperation(this.op, context, instance, { method: stop.method, args: { instance: uuid } }, () =>
              this.simpleOperationBody(context, stop, instance, { cleanShutdown: false }),
            );
          }
          await this.deps.notifier.instanceAction(context, instance, 'rebuild', 'end', { imageName: String(image['name'] ?? '') });
        } catch (raw) {
          const err = fromDriverError(raw, uuid);
          await this.deps.notifier.instanceAction(context, instance, 'rebuild', 'error', { fault: err });
          if (err.is('UnexpectedDeletingTaskStateError', 'InstanceNotFound')) {
            // Deleted while rebuilding: the delete owns the instance now; nothing failed.
            log.debug('Instance was deleted while rebuilding');
            return;
          }
          log.error({ err }, 'Rebuild failed, setting instance vm_state to ERROR');
          await this.setErrorState(context, instance, false);
          throw err;
        }
      }),
    );
  }

  // ---------------------------------------------------------------------------------------------------------------
  // CALLs

  /** get_console_output: decorated with @wrap_instance_fault only. */
  async getConsoleOutput(context: RequestContext, instance: Instance, tailLength: unknown): Promise<string> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method: 'get_console_output', event: false, revertTaskState: false }, async () => {
      this.requireCapability('supportsConsoleOutput', 'get_console_output');
      this.instanceLog(context, instance).info('Get console output');
      const tail = tailLength === null || tailLength === undefined ? null : pyInt(tailLength);
      if (tail === 0) return '';
      let output: string;
      try {
        // A negative length keeps all but the first lines (Python's [-length:]); the runtime is asked for everything.
        output = await this.deps.driver.getConsoleOutput(this.ref(instance), tail !== null && tail > 0 ? tail : null);
      } catch (err) {
        if (err instanceof DriverInstanceNotFound) throw novaError('InstanceNotFound', { instance_id: uuid });
        throw err;
      }
      if (tail !== null) output = output.split('\n').slice(-tail).join('\n');
      // output.decode('ascii', 'replace')
      return output.replace(/[^\x00-\x7f]/g, '\ufffd');
    });
  }

  /** get_instance_diagnostics (microversion ≥ 2.48): a Diagnostics object. */
  async getInstanceDiagnostics(context: RequestContext, instance: Instance): Promise<unknown> {
    return runInstanceOperation(this.op, context, instance, { method: 'get_instance_diagnostics', event: false, revertTaskState: false }, async () => {
      const diag = await this.diagnosticsIfRunning(context, instance, 'get_diagnostics');
      return newObject('Diagnostics', {
        state: POWER_STATE_NAMES[diag.state] as 'running',
        // HypervisorDriver enum has no docker; nova-api rejects unknown values, and libvirt is what a Linux
        // process-level runtime is closest to. The hypervisor field says what it really is.
        driver: 'libvirt',
        hypervisor: diag.hypervisor,
        hypervisor_os: diag.hypervisorOs,
        uptime: diag.uptimeSec ?? 0,
        config_drive: diag.configDrive,
        num_cpus: diag.numCpus,
        num_nics: diag.nicDetails.length,
        num_disks: diag.diskDetails.length,
        cpu_details: diag.cpuDetails.map((c) => newObject('CpuDiagnostics', { id: c.id, time: c.time, utilisation: c.utilisation })),
        nic_details: diag.nicDetails.map((n) =>
          newObject('NicDiagnostics', {
            mac_address: n.macAddress,
            rx_octets: n.rxOctets,
            rx_errors: n.rxErrors,
            rx_drop: n.rxDrop,
            rx_packets: n.rxPackets,
            rx_rate: null,
            tx_octets: n.txOctets,
            tx_errors: n.txErrors,
            tx_drop: n.txDrop,
            tx_packets: n.txPackets,
            tx_rate: null,
          }),
        ),
        disk_details: diag.diskDetails.map((d) =>
          newObject('DiskDiagnostics', {
            read_bytes: d.readBytes,
            read_requests: d.readRequests,
            write_bytes: d.writeBytes,
            write_requests: d.writeRequests,
            errors_count: d.errorsCount,
          }),
        ),
        memory_details: newObject('MemoryDiagnostics', { maximum: diag.memoryMaxMb, used: diag.memoryUsedMb }),
      }).toPrimitive();
    });
  }

  /** get_diagnostics (microversion < 2.48): a free-form dict, as libvirt's driver returns it. */
  async getDiagnostics(context: RequestContext, instance: Instance): Promise<Record<string, unknown>> {
    return runInstanceOperation(this.op, context, instance, { method: 'get_diagnostics', event: false, revertTaskState: false }, async () => {
      const diag = await this.diagnosticsIfRunning(context, instance, 'get_diagnostics');
      const out: Record<string, unknown> = {
        memory: diag.memoryMaxMb * 1024,
        'memory-actual': diag.memoryUsedMb * 1024,
        uptime: diag.uptimeSec ?? 0,
      };
      diag.cpuDetails.forEach((c) => {
        if (c.time !== null) out[`cpu${c.id}_time`] = c.time;
      });
      diag.nicDetails.forEach((n, i) => {
        out[`eth${i}_rx`] = n.rxOctets;
        out[`eth${i}_tx`] = n.txOctets;
        out[`eth${i}_rx_packets`] = n.rxPackets;
        out[`eth${i}_tx_packets`] = n.txPackets;
      });
      diag.diskDetails.forEach((d, i) => {
        out[`disk${i}_read`] = d.readBytes;
        out[`disk${i}_write`] = d.writeBytes;
        out[`disk${i}_read_req`] = d.readRequests;
        out[`disk${i}_write_req`] = d.writeRequests;
        out[`disk${i}_errors`] = d.errorsCount;
      });
      return out;
    });
  }

  private async diagnosticsIfRunning(context: RequestContext, instance: Instance, method: string) {
    this.requireCapability('supportsDiagnostics', method);
    const state = await this.getPowerState(instance);
    if (state !== PowerState.RUNNING) {
      const dbState = instance.get('power_state');
      throw novaError('InstanceInvalidState', {
        attr: 'power state',
        instance_uuid: this.uuidOf(instance),
        state: POWER_STATE_NAMES[(typeof dbState === 'number' ? dbState : state) as PowerStateT] ?? String(dbState),
        method,
      });
    }
    this.instanceLog(context, instance).info('Retrieving diagnostics');
    return this.deps.driver.getDiagnostics(this.ref(instance));
  }

  /** set_admin_password: a container has no guest agent, so it ends as Nova's NotImplementedError path does. */
  async setAdminPassword(context: RequestContext, instance: Instance): Promise<void> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.op, context, instance, { method: 'set_admin_password', args: { instance: uuid } }, async () => {
      const elevated = this.elevated(context);
      const current = await this.getPowerState(instance);
      instance.set('task_state', null);
      await this.save(elevated, instance, { task: TaskState.UPDATING_PASSWORD });
      if (current !== PowerState.RUNNING) {
        throw novaError('InstancePasswordSetFailed', { instance: uuid, reason: `instance ${uuid} is not running` });
      }
      this.instanceLog(context, instance).warn('set_admin_password is not implemented by this driver or guest instance.');
      throw notImplemented('set_admin_password is not implemented by this driver or guest instance.');
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Power-state sync: runtime events first, a periodic sweep as the safety net.

  /** handle_lifecycle_event */
  async handleLifecycleEvent(event: LifecycleEvent): Promise<void> {
    const context = { ...adminContext(), read_deleted: 'yes' };
    const log = this.log.child({ request_id: context.request_id, instance_uuid: event.uuid });
    log.info({ transition: event.transition }, 'VM %s (Lifecycle Event)', event.transition);
    const vmPowerState: PowerStateT | null =
      event.transition === 'stopped' || event.transition === 'died'
        ? PowerState.SHUTDOWN
        : event.transition === 'started' || event.transition === 'resumed'
          ? PowerState.RUNNING
          : event.transition === 'paused'
            ? PowerState.PAUSED
            : event.transition === 'suspended'
              ? PowerState.SUSPENDED
              : null;
    if (vmPowerState === null) return;
    let instance: Instance;
    try {
      instance = await this.deps.conductor.instanceGetByUuid(context, event.uuid, []);
    } catch (err) {
      if (isFailure(err, 'InstanceNotFound')) return;
      throw err;
    }
    await this.locks.run(event.uuid, async () => {
      // The event may be stale, or have become so while an operation held the lock: act only when the runtime still
      // says so (a died container reports SHUTDOWN or CRASHED).
      const current = await this.getPowerState(instance);
      const matches = current === vmPowerState || (vmPowerState === PowerState.SHUTDOWN && current === PowerState.CRASHED);
      if (matches) await this.syncInstancePowerState(context, instance, current);
    });
  }

  /** _sync_power_states: the periodic sweep over every instance Nova places on this host. */
  async syncPowerStates(): Promise<void> {
    const context = adminContext();
    const instances = await this.deps.conductor.instanceListGetByHost(context, this.host, []);
    const onRuntime = await this.deps.driver.listInstances();
    if (onRuntime.length !== instances.length) {
      this.log.warn({ num_db_instances: instances.length, num_vm_instances: onRuntime.length }, 'While synchronizing instance power states, found %d instances in the database and %d instances on the hypervisor.', instances.length, onRuntime.length);
    }
    await Promise.all(
      instances.map(async (instance) => {
        const uuid = this.uuidOf(instance);
        if (this.syncsInProgress.has(uuid)) return;
        this.syncsInProgress.add(uuid);
        try {
          await this.locks.run(uuid, async () => {
            if (instance.get('task_state') !== null && instance.get('task_state') !== undefined) return;
            // Asked under the lock (_query_driver_power_state_and_sync): an operation that held it changed the state.
            await this.syncInstancePowerState(context, instance, await this.getPowerState(instance));
          });
        } catch (err) {
          if (!isFailure(err, 'InstanceNotFound')) {
            this.instanceLog(context, uuid).error({ err }, 'Periodic sync_power_state task had an error while processing an instance.');
          }
        } finally {
          this.syncsInProgress.delete(uuid);
        }
      }),
    );
  }

  /** _sync_instance_power_state (call with the instance lock held). */
  private async syncInstancePowerState(context: RequestContext, instance: Instance, vmPowerState: PowerStateT): Promise<void> {
    const log = this.instanceLog(context, instance);
    await this.deps.conductor.instanceRefresh(context, instance);
    const dbPowerState = instance.get('power_state');
    const vmState = instance.get('vm_state');
    if (instance.get('host') !== this.host) {
      log.info({ host: instance.get('host') }, 'During the sync_power process the instance has moved from this host');
      return;
    }
    if (instance.get('task_state') !== null && instance.get('task_state') !== undefined) {
      log.info({ task: instance.get('task_state') }, 'During sync_power_state the instance has a pending task. Skip.');
      return;
    }
    if (vmPowerState !== dbPowerState) {
      log.info({ db_power_state: dbPowerState, vm_power_state: vmPowerState }, 'During _sync_instance_power_state the DB power_state does not match the vm_power_state from the hypervisor. Updating power_state in the DB to match the hypervisor.');
      instance.set('power_state', vmPowerState);
      await this.save(context, instance);
    }
    if (vmState === VmState.ACTIVE) {
      if (vmPowerState === PowerState.SHUTDOWN || vmPowerState === PowerState.CRASHED) {
        const again = await this.getPowerState(instance);
        if (again === PowerState.SHUTDOWN || again === PowerState.CRASHED) {
          log.warn({ vm_state: vmState, db_power_state: dbPowerState, vm_power_state: again }, 'Instance shutdown by itself. Calling the stop API.');
          await this.stopFromPowerSync(context, instance, true);
        }
      } else if (vmPowerState === PowerState.SUSPENDED) {
        log.warn('Instance is suspended unexpectedly. Calling the stop API.');
        await this.stopFromPowerSync(context, instance);
      } else if (vmPowerState === PowerState.PAUSED) {
        log.warn('Instance is paused unexpectedly. Ignore.');
      } else if (vmPowerState === PowerState.NOSTATE) {
        log.warn('Instance is unexpectedly not found. Ignore.');
      }
    } else if (vmState === VmState.STOPPED) {
      if (vmPowerState !== PowerState.NOSTATE && vmPowerState !== PowerState.SHUTDOWN && vmPowerState !== PowerState.CRASHED) {
        log.warn({ vm_power_state: vmPowerState }, 'Instance is not stopped. Calling the stop API.');
        await this.stopFromPowerSync(context, instance);
      }
    } else if (vmState === VmState.PAUSED) {
      if (vmPowerState === PowerState.SHUTDOWN || vmPowerState === PowerState.CRASHED) {
        log.warn('Paused instance shutdown by itself. Calling the stop API.');
        await this.stopFromPowerSync(context, instance);
      }
    } else if (vmState === VmState.SOFT_DELETED || vmState === VmState.DELETED) {
      if (vmPowerState !== PowerState.NOSTATE && vmPowerState !== PowerState.SHUTDOWN) log.warn('Instance is not (soft-)deleted.');
    }
  }

  /**
   * What Nova's power sync does through compute_api.stop / force_stop: task_state powering-off (expecting None), an
   * instance action `stop` through the conductor, then the stop itself (here in-process rather than a cast to
   * ourselves; the lock is already held). An instance that shut down by itself and has shutdown_terminate set is
   * deleted instead (compute_api.delete). Errors are logged: the next sync retries.
   */
  private async stopFromPowerSync(context: RequestContext, instance: Instance, unexpectedShutdown = false): Promise<void> {
    const log = this.instanceLog(context, instance);
    try {
      if (unexpectedShutdown && instance.get('shutdown_terminate') === true) {
        // compute_api.delete: task_state deleting (expecting None), a `delete` action, then terminate (lock held).
        instance.set('task_state', TaskState.DELETING);
        await this.save(context, instance, { task: [null] });
        await this.deps.conductor.instanceActionStart(context, this.uuidOf(instance), 'delete');
        await runInstanceOperation(this.op, context, instance, { method: 'terminate_instance' }, () => this.deleteInstance(context, instance));
        return;
      }
      instance.set('task_state', TaskState.POWERING_OFF);
      instance.set('progress', 0);
      await this.save(context, instance, { task: [null] });
      await this.deps.conductor.instanceActionStart(context, this.uuidOf(instance), 'stop');
      const spec = SIMPLE_OPERATIONS['stop_instance'] as SimpleOperation;
      await runInstanceOperation(this.op, context, instance, { method: 'stop_instance' }, () => this.simpleOperationBody(context, spec, instance, { cleanShutdown: true }));
    } catch (err) {
      log.error({ err }, 'error during stop() in sync_power_state.');
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // init_host: reconcile what Nova thinks is on this host with what the runtime has, before consuming the bus.

  async initHost(): Promise<void> {
    const context = adminContext();
    const instances = await this.deps.conductor.instanceListGetByHost(context, this.host, ['info_cache', 'metadata', 'system_metadata', 'flavor']);
    this.log.info({ instances: instances.length }, 'init_host: reconciling instances on this host');
    // _destroy_evacuated_instances first: an instance evacuated away (even one still being evacuated, whose host is
    // still ours) is the destination's now, so it is neither reconciled nor rebooted here.
    let evacuated = new Set<string>();
    try {
      evacuated = await this.evacuation.destroyEvacuatedInstances(context);
    } catch (err) {
      this.log.error({ err }, 'init_host could not look for instances evacuated from this host');
    }
    for (const instance of instances) {
      if (evacuated.has(this.uuidOf(instance))) continue;
      try {
        await this.locks.run(this.uuidOf(instance), () => this.initInstance(context, instance));
      } catch (err) {
        this.instanceLog(context, instance).error({ err }, 'init_host could not reconcile this instance');
      }
    }
    await this.errorOutInterruptedBuilds(context, new Set([...instances.map((i) => this.uuidOf(i)), ...evacuated]));
    await this.reapOrphans(context, instances);
    if (instances.length > 0) await this.deps.scheduler.updateInstanceInfo(context, instances);
  }

  /**
   * _error_out_instances_whose_build_was_interrupted: instances still BUILDING that hold allocations on our provider
   * but never reached a claim (no host yet) were lost with the previous process. Nova sets them to ERROR; Berth
   * also records a fault saying why.
   */
  private async errorOutInterruptedBuilds(context: RequestContext, handled: ReadonlySet<string>): Promise<void> {
    let nodeUuid: string | null;
    let consumers: string[];
    try {
      nodeUuid = await this.deps.resourceTracker.lookupNodeUuid(context);
      if (!nodeUuid) return;
      const allocations = await this.deps.placement.getProviderAllocations(context, nodeUuid);
      consumers = Object.keys(allocations.allocations).filter((uuid) => !handled.has(uuid));
    } catch (err) {
      this.log.error({ err }, 'Could not retrieve the compute node resource provider allocations; unable to error out instances stuck in BUILDING');
      return;
    }
    if (consumers.length === 0) return;
    const building = await this.deps.conductor.instanceListGetByFilters(context, { vm_state: VmState.BUILDING, uuid: consumers });
    for (const instance of building) {
      this.instanceLog(context, instance).info('Instance spawn was interrupted before instance_claim, setting instance to ERROR state');
      await addInstanceFault(this.op, context, this.uuidOf(instance), novaError('NovaException', {}, 'The compute service was restarted before the build of this instance had started.'));
      await this.setErrorState(context, instance, true);
    }
  }

  /** _init_instance */
  private async initInstance(context: RequestContext, instance: Instance): Promise<void> {
    const log = this.instanceLog(context, instance);
    const vmState = String(instance.get('vm_state'));
    const taskState = (instance.get('task_state') as string | null | undefined) ?? null;
    if (instance.get('host') !== this.host) {
      log.warn({ host: instance.get('host') }, 'Instance appears to not be owned by this host. Startup processing is being skipped.');
      return;
    }
    if (vmState === VmState.SOFT_DELETED || (vmState === VmState.ERROR && taskState !== TaskState.RESIZE_MIGRATING && taskState !== TaskState.DELETING)) {
      this.deps.resourceTracker.trackInstance(instance);
      return;
    }
    if (vmState === VmState.DELETED) {
      // _complete_partial_deletion
      await this.deps.driver.destroy(this.ref(instance)).catch(() => undefined);
      await this.completeDeletion(context, this.uuidOf(instance));
      await this.deps.conductor.instanceDestroy(context, instance);
      return;
    }
    this.deps.resourceTracker.trackInstance(instance);
    if (vmState === VmState.BUILDING || (taskState !== null && BUILD_TASK_STATES.includes(taskState))) {
      // Nova only sets ERROR; Berth also records why (a fault) and removes the half-built container, so the
      // instance is never left in a task state and the operator can see what happened.
      log.info('Instance failed to spawn correctly, setting to ERROR state');
      await this.destroyQuietly(context, instance);
      await addInstanceFault(this.op, context, this.uuidOf(instance), novaError('NovaException', {}, 'The compute service was restarted while the instance was being built; the build did not complete.'));
      instance.set('power_state', PowerState.NOSTATE);
      await this.setErrorState(context, instance, true);
      return;
    }
    if ((vmState === VmState.ACTIVE || vmState === VmState.STOPPED) && taskState !== null && REBUILD_TASK_STATES.includes(taskState)) {
      log.info('Instance failed to rebuild correctly, setting to ERROR state');
      await addInstanceFault(this.op, context, this.uuidOf(instance), novaError('NovaException', {}, 'The compute service was restarted while the instance was being rebuilt.'));
      await this.setErrorState(context, instance, true);
      return;
    }
    if (vmState !== VmState.ERROR && taskState !== null && (SNAPSHOT_TASK_STATES.includes(taskState) || taskState === TaskState.RESIZE_PREP)) {
      log.info({ task_state: taskState }, 'Instance in transitional state at start-up clearing task state');
      instance.set('task_state', null);
      await this.save(context, instance);
    }
    if (taskState === TaskState.DELETING) {
      log.info('Service started deleting the instance during the previous run, but did not finish. Restarting the deletion now.');
      try {
        await this.deleteInstance(context, instance);
      } catch (err) {
        log.error({ err }, 'Failed to complete a deletion');
        await this.setErrorState(context, instance, false);
      }
      return;
    }
    if (taskState === TaskState.RESIZE_MIGRATING || taskState === TaskState.RESIZE_FINISH) {
      await this.resize.recoverInterruptedResize(context, instance);
      return;
    }
    const current = await this.getPowerState(instance);
    const [tryReboot, rebootType] = retryReboot(instance, current);
    if (tryReboot) {
      if (taskState !== null && SOFT_REBOOT_STATES.includes(taskState) && rebootType === 'HARD') {
        instance.set('task_state', TaskState.REBOOT_PENDING_HARD);
        await this.save(context, instance);
      }
      await runInstanceOperation(this.op, context, instance, { method: 'reboot_instance' }, () => this.rebootInstanceBody(context, instance, rebootType)).catch((err: unknown) => log.error({ err }, 'Failed to reboot instance at start-up'));
      return;
    }
    if (current === PowerState.RUNNING && taskState !== null && [TaskState.REBOOT_STARTED, TaskState.REBOOT_STARTED_HARD, TaskState.PAUSING, TaskState.UNPAUSING].includes(taskState as never)) {
      log.warn({ task_state: taskState, power_state: current }, 'Instance in transitional state at start-up and power state is running, clearing task state');
      instance.set('task_state', null);
      instance.set('vm_state', VmState.ACTIVE);
      instance.set('power_state', current);
      await this.save(context, instance);
      return;
    }
    if (current === PowerState.PAUSED && taskState === TaskState.UNPAUSING) {
      await this.runTransitional(context, instance, 'unpause_instance');
      return;
    }
    if (current === PowerState.PAUSED && taskState === TaskState.PAUSING) {
      // Berth: the pause reached the runtime; finish recording it.
      await this.runTransitional(context, instance, 'pause_instance');
      return;
    }
    if (taskState === TaskState.POWERING_OFF) {
      await this.runTransitional(context, instance, 'stop_instance');
      return;
    }
    if (taskState === TaskState.POWERING_ON) {
      await this.runTransitional(context, instance, 'start_instance');
      return;
    }
    if (taskState === TaskState.SUSPENDING || taskState === TaskState.RESUMING || taskState === TaskState.PAUSING || taskState === TaskState.UNPAUSING) {
      // Interrupted before the runtime changed: Berth finishes the operation rather than leaving the task state set.
      await this.runTransitional(context, instance, SIMPLE_BY_TASK[taskState] as string);
      return;
    }
    const dbState = instance.get('power_state');
    if (dbState === PowerState.RUNNING && current !== PowerState.RUNNING && this.deps.options.resumeGuestsStateOnHostBoot) {
      log.info('Rebooting instance after nova-compute restart.');
      try {
        await this.deps.driver.powerOn(this.ref(instance));
      } catch (err) {
        log.warn({ err }, 'Failed to resume instance');
        await this.setErrorState(context, instance, false);
      }
    }
  }

  private async runTransitional(context: RequestContext, instance: Instance, method: string): Promise<void> {
    const spec = SIMPLE_OPERATIONS[method] as SimpleOperation;
    this.instanceLog(context, instance).info({ task_state: instance.get('task_state') }, 'Instance in transitional state at start-up, retrying %s', method);
    try {
      await runInstanceOperation(this.op, context, instance, { method }, () => this.simpleOperationBody(context, spec, instance, { cleanShutdown: true }));
    } catch (err) {
      this.instanceLog(context, instance).error({ err }, 'Failed to finish %s at start-up', method);
    }
  }

  /**
   * Containers labelled as ours whose instance is not on this host any more (deleted while Berth was down, or a
   * local delete by nova-api): reported, and handled by running_deleted_instance_action (reap by default).
   */
  async reapOrphans(context: RequestContext, knownInstances?: readonly Instance[]): Promise<void> {
    const action = this.deps.options.runningDeletedInstanceAction;
    if (action === 'noop') return;
    const known = new Set((knownInstances ?? (await this.deps.conductor.instanceListGetByHost(context, this.host, []))).map((i) => this.uuidOf(i)));
    for (const info of await this.deps.driver.listInstances()) {
      if (known.has(info.uuid) || this.locks.isBusy(info.uuid)) continue;
      // Make sure Nova really has no live instance for it (a build in flight has no host yet).
      let instance: Instance | null = null;
      try {
        instance = await this.deps.conductor.instanceGetByUuid({ ...context, read_deleted: 'yes' }, info.uuid, []);
      } catch (err) {
        if (!isFailure(err, 'InstanceNotFound')) throw err;
      }
      const deleted = instance === null || instance.get('deleted') === true || instance.get('vm_state') === VmState.DELETED;
      const log = this.instanceLog(context, info.uuid);
      if (!deleted) {
        // Nova destroys such a guest only after an evacuation it has a record of (init_host did those); without one, a
        // live instance placed elsewhere is an operator's puzzle (a renamed host?), not something to destroy unasked.
        if (instance !== null && instance.get('host') !== this.host && instance.get('host') !== null) {
          // A cross-host resize or migration keeps the source's stopped container until confirm or revert.
          if (instance.get('vm_state') === VmState.RESIZED || String(instance.get('task_state') ?? '').startsWith('resize_')) {
            log.debug({ name: info.name, instance_host: instance.get('host') }, 'The source container of a move to %s, kept until it is confirmed or reverted', String(instance.get('host')));
            continue;
          }
          log.warn({ name: info.name, instance_host: instance.get('host') }, 'A container of this host belongs to an instance Nova places on %s; leaving it alone', String(instance.get('host')));
        }
        continue;
      }
      if (action === 'log') {
        log.warn({ name: info.name }, "Detected instance with name label '%s' which is marked as DELETED but still present on host.", info.name);
      } else if (action === 'shutdown') {
        log.info("Powering off instance with name label '%s' which is marked as DELETED but still present on host.", info.name);
        await this.deps.driver.powerOff(info, 0).catch((err: unknown) => log.warn({ err }, 'Failed to power off instance'));
      } else {
        log.info("Destroying instance with name label '%s' which is marked as DELETED but still present on host.", info.name);
        await this.locks.run(info.uuid, () => this.deps.driver.destroy(info)).catch((err: unknown) => log.warn({ err }, 'Periodic cleanup failed to delete instance'));
      }
    }
  }

  /** The scheduler's periodic instance sync (_sync_scheduler_instance_info). */
  async syncSchedulerInstanceInfo(): Promise<void> {
    const context = adminContext();
    const instances = await this.deps.conductor.instanceListGetByHost(context, this.host, []);
    await this.deps.scheduler.syncInstanceInfo(context, instances.map((i) => this.uuidOf(i)));
  }

  /** A CAST Berth does not implement, on an instance: Nova's decorators turn the error into a fault and a revert. */
  failUnsupportedCast(context: RequestContext, instance: Instance, method: string, error: RemoteFailure): Promise<void> {
    return runInstanceOperation(this.op, context, instance, { method, args: { instance: this.uuidOf(instance) } }, async () => {
      throw error;
    });
  }

  logEvent(context: RequestContext, uuid: string, name: string, status: string): void {
    this.instanceLog(context, uuid).info({ event: name, status }, 'external instance event %s (%s): nothing to do on a Berth host', name, status);
  }

  /** Waits until every per-instance operation queued so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    await this.buildSemaphore.run(async () => undefined);
  }

  /** The failure a CALL for an unknown instance gets when the runtime has no such instance. */
  static instanceNotFound(uuid: string): RemoteFailure {
    return novaError('InstanceNotFound', { instance_id: uuid });
  }
}

const SIMPLE_BY_TASK: Record<string, string> = {
  [TaskState.SUSPENDING]: 'suspend_instance',
  [TaskState.RESUMING]: 'resume_instance',
  [TaskState.PAUSING]: 'pause_instance',
  [TaskState.UNPAUSING]: 'unpause_instance',
};

export interface BuildArgs {
  readonly instance: Instance;
  readonly image: Readonly<Record<string, unknown>>;
  readonly requestSpec: unknown;
  readonly filterProperties: Record<string, unknown>;
  readonly adminPassword: string | null;
  readonly injectedFiles: unknown;
  readonly requestedNetworks: NovaObject | null;
  readonly securityGroups: unknown;
  readonly blockDeviceMapping: NovaObject | null;
  readonly node: string | null;
  readonly limits: unknown;
  readonly hostList: unknown;
  readonly accelUuids: unknown;
}

export interface RebuildArgs {
  readonly imageRef: string | null;
  readonly recreate: boolean;
  /** Evacuation (recreate) only: the Migration nova-api created, and what the conductor and scheduler chose. */
  readonly migration?: Migration | null;
  readonly onSharedStorage?: boolean | null;
  readonly scheduledNode?: string | null;
  readonly adminPassword?: string | null;
  readonly injectedFiles?: unknown;
}

/** The `objects` of an ObjectList (NetworkRequestList, BlockDeviceMappingList), or []. */
function objectsOf(list: NovaObject | null | undefined): NovaObject[] {
  if (!list || typeof list.get !== 'function') return [];
  const objects = list.get('objects');
  return Array.isArray(objects) ? (objects as NovaObject[]) : [];
}

function nilOutHostAndNode(instance: Instance): void {
  instance.set('host', null);
  instance.set('node', null);
  instance.set('launched_on', null);
  instance.set('availability_zone', null);
}

/** _decode_files: base64 of each [path, contents]; a bad one is Base64Exception in Nova. */
function decodeInjectedFiles(files: unknown): Array<[string, Buffer]> {
  if (!files) return [];
  if (!Array.isArray(files)) throw builtinError('TypeError', 'injected_files must be a list of [path, contents] pairs');
  return files.map((entry) => {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'string') {
      throw builtinError('TypeError', 'injected_files must be a list of [path, contents] pairs');
    }
    const [path, contents] = entry as [string, string];
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(contents.replace(/\s/g, '')) || contents.replace(/\s/g, '').length % 4 !== 0) {
      throw new RemoteFailure('Base64Exception', 'nova.exception', `Invalid Base 64 data for file ${path}`, {
        kwargs: { path, code: 500 },
      });
    }
    return [path, Buffer.from(contents, 'base64')];
  });
}

/** Python's int() for tail_length, sign included; what int() refuses is 0 (Nova's _tail_log catches the ValueError). */
function pyInt(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string' && /^\s*[+-]?\d(?:_?\d)*\s*$/.test(value)) return Number.parseInt(value.replace(/_/g, ''), 10);
  return 0;
}

function shutdownTimeout(sysmeta: Record<string, string | null>, fallback: number): number {
  const v = sysmeta['image_os_shutdown_timeout'];
  if (v !== undefined && v !== null && /^\d+$/.test(v)) return Number.parseInt(v, 10);
  return fallback;
}

/** compute_utils.get_reboot_type and _retry_reboot */
function retryReboot(instance: Instance, current: PowerStateT): [boolean, 'SOFT' | 'HARD'] {
  const taskState = (instance.get('task_state') as string | null | undefined) ?? null;
  const vmState = String(instance.get('vm_state'));
  const rebootType: 'SOFT' | 'HARD' =
    current === PowerState.RUNNING && taskState !== null && SOFT_REBOOT_STATES.includes(taskState) ? 'SOFT' : 'HARD';
  const pendingSoft = taskState === TaskState.REBOOT_PENDING && ALLOW_SOFT_REBOOT.includes(vmState);
  const pendingHard = taskState === TaskState.REBOOT_PENDING_HARD && ALLOW_HARD_REBOOT.includes(vmState);
  const startedNotRunning =
    (taskState === TaskState.REBOOT_STARTED || taskState === TaskState.REBOOT_STARTED_HARD) && current !== PowerState.RUNNING;
  return [pendingSoft || pendingHard || startedNotRunning, rebootType];
}

/** The properties a container snapshot carries in Glance (nova-docker's convention plus Nova's own). */
function snapshotProperties(instance: Instance): Record<string, string> {
  return {
    container_format: 'docker',
    disk_format: 'raw',
    image_location: 'snapshot',
    image_state: 'available',
    owner_id: String(instance.get('project_id') ?? ''),
    instance_uuid: String(instance.get('uuid')),
  };
}
