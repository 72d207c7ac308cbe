// Evacuation on a Berth host, both halves of nova/compute/manager.py:
//
// - the destination: rebuild_instance with recreate=True (_do_rebuild_instance_with_claim, _do_rebuild_instance and
//   _rebuild_default_impl with evacuate=True, then the resource tracker's finish_evacuation). The container died with
//   its host and Berth has no shared storage, so an evacuated instance starts afresh from its Glance image, as a
//   libvirt instance on local disk does: whatever its writable layer held is lost.
// - the source coming back: _destroy_evacuated_instances at init_host, before any other reconciliation. Containers
//   of instances that were evacuated away are destroyed, the instances' allocations against this host's provider are
//   removed from Placement, and the migrations end 'completed'.
//
// Migration status, as Nova: 'accepted' (nova-api) → 'pre-migrating' (the rebuild claim here) → 'done' (finished
// here) or 'failed' (anything went wrong here) → 'completed' (the source cleaned up after itself).
import type { InstanceRef, PowerState as PowerStateT } from '../../driver/driver';
import { InstanceNotFound as DriverInstanceNotFound } from '../../driver/driver';
import type { Logger } from '../log';
import { RemoteFailure } from '../messaging/failure';
import type { RequestContext } from '../messaging/types';
import type { Flavor, Instance, Migration } from '../objects';
import { fromDriverError, isFailure, novaError } from './exceptions';
import { instanceSpec } from './instance-spec';
import type { ComputeManagerDeps } from './manager';
import { instanceFaultRollback } from './resize';
import { applyMigrationContext } from './resource-tracker';
import { TaskState, VmState } from './states';

/** _destroy_evacuated_instances: migrations still accepted or under way count too, so no instance runs twice. */
export const EVACUATION_STATUSES_TO_CLEAN = Object.freeze(['accepted', 'pre-migrating', 'done']);

/** The manager's own ports, plus what the evacuation needs of the manager itself. */
export interface EvacuateDeps
  extends Pick<ComputeManagerDeps, 'conductor' | 'driver' | 'placement' | 'images' | 'scheduler' | 'resourceTracker' | 'notifier' | 'logger'> {
  readonly host: string;
  readonly nodename: string;
  readonly instanceNameTemplate: string;
  readonly ref: (instance: Instance) => InstanceRef;
  readonly getPowerState: (instance: Instance) => Promise<PowerStateT>;
  /** The decorated stop_instance(clean_shutdown=False) (its own compute_stop_instance event), lock already held. */
  readonly stopInstance: (context: RequestContext, instance: Instance) => Promise<void>;
}

export interface EvacuateArgs {
  /** The Migration nova-api created (migration_type 'evacuation', status 'accepted'); null from very old APIs. */
  readonly migration: Migration | null;
  /** Microversions < 2.14 let the operator say; later ones send None (then the driver decides). */
  readonly onSharedStorage: boolean | null;
  /** The node the scheduler picked; None when the operator forced a host. */
  readonly scheduledNode: string | null;
  readonly adminPassword: string | null;
  readonly injectedFiles: Array<[string, Buffer]>;
}

export class EvacuateOperations {
  private readonly log: Logger;

  constructor(private readonly deps: EvacuateDeps) {
    this.log = deps.logger.child({ component: 'evacuate' });
  }

  private instanceLog(context: RequestContext, uuid: string): Logger {
    return this.log.child({ request_id: context.request_id, instance_uuid: uuid });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Destination: rebuild_instance(recreate=True). The caller runs this under the instance lock inside the
  // rebuild_instance decorators (event compute_rebuild_instance, fault, task_state revert), with an elevated context.

  async evacuate(context: RequestContext, instance: Instance, args: EvacuateArgs): Promise<void> {
    const uuid = String(instance.get('uuid'));
    const log = this.instanceLog(context, uuid);
    log.info('Evacuating instance');
    // No scheduled node: the operator forced the host; this host's node it is (_get_compute_info).
    const node = args.scheduledNode ?? this.deps.nodename;
    // Nova also reads the consumer's allocations here for the claim and the driver; Berth's claim checks the flavor
    // against the host and its driver takes no allocations, so the read is skipped.
    const instanceState = String(instance.get('vm_state'));
    // _error_out_instance_on_exception(instance_state=the vm_state before the evacuation)
    try {
      try {
        await this.rebuildWithClaim(context, instance, args, node);
      } catch (raw) {
        const err = fromDriverError(raw, uuid);
        if (err.is('ComputeResourcesUnavailable', 'RescheduledException')) {
          log.debug('Could not rebuild instance on this host, not enough resources available.');
          // The migration record stays, failed, for a later cleanup; the scheduler's claim here goes.
          await this.setMigrationStatus(context, args.migration, 'failed');
          await this.deleteAllocationHere(context, uuid);
          await this.notifyError(context, instance, err);
          throw instanceFaultRollback(novaError('BuildAbortException', { instance_uuid: uuid, reason: err.message }));
        }
        if (err.is('InstanceNotFound', 'UnexpectedDeletingTaskStateError')) {
          log.debug('Instance was deleted while rebuilding');
          await this.setMigrationStatus(context, args.migration, 'failed');
          await this.notifyError(context, instance, err);
          return;
        }
        await this.setMigrationStatus(context, args.migration, 'failed');
        await this.deleteAllocationHere(context, uuid);
        await this.notifyError(context, instance, err);
        throw err;
      }
      await this.finishEvacuation(context, instance, node, args.migration);
    } catch (raw) {
      throw await this.errorOut(context, instance, instanceState, raw);
    }
  }

  /** _error_out_instance_on_exception: a rollback keeps the vm_state (task_state None), anything else is ERROR. */
  private async errorOut(context: RequestContext, instance: Instance, instanceState: string, raw: unknown): Promise<RemoteFailure> {
    const uuid = String(instance.get('uuid'));
    const log = this.instanceLog(context, uuid);
    const inner = raw instanceof RemoteFailure && raw.className === 'InstanceFaultRollback' && raw.cause instanceof RemoteFailure ? raw.cause : null;
    const err = inner ?? fromDriverError(raw, uuid);
    try {
      if (inner !== null || err.className === 'NotImplementedError') {
        instance.set('vm_state', instanceState);
        instance.set('task_state', null);
      } else {
        log.error({ err }, 'Setting instance vm_state to ERROR');
        instance.set('vm_state', VmState.ERROR);
      }
      await this.deps.conductor.instanceSave(context, instance);
    } catch (saveErr) {
      if (!isFailure(saveErr, 'InstanceNotFound')) log.warn({ err: saveErr }, 'could not record the state after the failed evacuation');
    }
    return err;
  }

  /** _do_rebuild_instance_with_claim: the rebuild claim (MoveClaim), the rebuild itself, the claim aborted on failure. */
  private async rebuildWithClaim(context: RequestContext, instance: Instance, args: EvacuateArgs, node: string): Promise<void> {
    const uuid = String(instance.get('uuid'));
    if (args.migration) {
      // rebuild_claim → _move_claim with the instance's own flavor: the migration becomes this node's
      // ('pre-migrating'), the flavor must fit this host, the instance gets its migration context.
      await this.deps.resourceTracker.resizeClaim(context, instance, instance.get('flavor') as Flavor, args.migration);
    } else {
      this.instanceLog(context, uuid).warn('evacuation without a migration record: no move claim');
    }
    try {
      await this.doRebuild(context, instance, args);
    } catch (err) {
      // MoveClaim.abort: this node stops counting the instance, its migration context goes.
      if (args.migration) {
        await this.deps.resourceTracker.abortResizeClaim(context, instance).catch((abortErr: unknown) => {
          if (!isFailure(abortErr, 'InstanceNotFound')) this.instanceLog(context, uuid).warn({ err: abortErr }, 'could not abort the rebuild claim');
        });
      }
      // The instance is still the source's (finish_evacuation never ran): nothing of it stays counted here.
      await this.deps.resourceTracker.dropInstance(context, uuid);
      throw err;
    }
  }

  /** _do_rebuild_instance and _rebuild_default_impl, evacuate=True, for a container (no volumes, no ports). */
  private async doRebuild(context: RequestContext, instance: Instance, args: EvacuateArgs): Promise<void> {
    const uuid = String(instance.get('uuid'));
    const log = this.instanceLog(context, uuid);
    const origVmState = String(instance.get('vm_state'));
    // supports_evacuate: a driver that can rebuild from an image can evacuate from one.
    if (!this.deps.driver.capabilities.supportsRebuild) {
      throw nova('InstanceEvacuateNotSupported', 'Instance evacuate is not supported.', 400);
    }
    await this.checkInstanceExists(instance);
    // instance_on_disk: a container's files never survive its host (no shared storage), so the only valid answer is
    // "not on shared storage"; an operator who says otherwise gets Nova's refusal.
    const onDisk = false;
    if (args.onSharedStorage !== null && args.onSharedStorage !== onDisk) {
      throw nova('InvalidSharedStorage', 'Invalid state of instance files on shared storage', 500);
    }
    const imageRef = String(instance.get('image_ref') ?? '');
    if (!imageRef) {
      // A volume-backed instance would keep its volume; Berth boots only from images, so there is nothing to use.
      throw novaError('InvalidInput', { reason: 'the instance has no image to evacuate from (Berth has no volume-backed instances)' });
    }
    log.info("disk not on shared storage, evacuating from image: '%s'", imageRef);
    const image = await this.deps.images.show(context, imageRef);
    const imageName = String(image['name'] ?? '');
    await this.deps.notifier.instanceAction(context, instance, 'rebuild', 'start', { imageName });

    instance.set('power_state', await this.deps.getPowerState(instance));
    instance.set('task_state', TaskState.REBUILDING);
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: [TaskState.REBUILDING] });
    // setup_networks_on_host / setup_instance_network_on_host: Berth binds no ports, nothing moves.
    // _rebuild_default_impl(evacuate=True): no power-off and no destroy here; the guest died with its host.
    instance.set('task_state', TaskState.REBUILD_BLOCK_DEVICE_MAPPING);
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: [TaskState.REBUILDING] });
    instance.set('task_state', TaskState.REBUILD_SPAWNING);
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: [TaskState.REBUILD_BLOCK_DEVICE_MAPPING] });

    const spec = instanceSpec(this.deps.instanceNameTemplate, instance, false);
    try {
      await this.deps.driver.spawn(spec, this.deps.images.source(context, image), {
        injectedFiles: args.injectedFiles,
        adminPassword: args.adminPassword,
      });
    } catch (spawnErr) {
      // spawn leaves nothing behind by contract; a runtime that failed half-way must not keep a container either.
      await this.deps.driver.destroy(this.deps.ref(instance)).catch(() => undefined);
      throw spawnErr;
    }
    // _update_instance_after_spawn
    instance.set('power_state', await this.deps.getPowerState(instance));
    instance.set('vm_state', VmState.ACTIVE);
    instance.set('task_state', null);
    instance.set('launched_at', new Date());
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: [TaskState.REBUILD_SPAWNING] });

    if (origVmState === VmState.STOPPED) {
      log.info("bringing vm to original state: '%s'", origVmState);
      instance.set('vm_state', VmState.ACTIVE);
      instance.set('task_state', TaskState.POWERING_OFF);
      instance.set('progress', 0);
      await this.deps.conductor.instanceSave(context, instance);
      await this.deps.stopInstance(context, instance);
    }
    await this.deps.scheduler.updateInstanceInfo(context, [instance]);
    await this.deps.notifier.instanceAction(context, instance, 'rebuild', 'end', { imageName });
  }

  /** _check_instance_exists: the runtime must not have this instance yet (InstanceExists). */
  private async checkInstanceExists(instance: Instance): Promise<void> {
    try {
      await this.deps.driver.getInfo(this.deps.ref(instance));
    } catch (err) {
      if (err instanceof DriverInstanceNotFound) return;
      throw err;
    }
    throw nova('InstanceExists', `Instance ${this.deps.ref(instance).name} already exists.`, 500, { name: this.deps.ref(instance).name });
  }

  /** ResourceTracker.finish_evacuation: the instance is this host's now; then, and only then, the migration is done. */
  private async finishEvacuation(context: RequestContext, instance: Instance, node: string, migration: Migration | null): Promise<void> {
    applyMigrationContext(instance, 'new_');
    instance.set('host', this.deps.host);
    instance.set('node', node);
    await this.deps.conductor.instanceSave(context, instance);
    if (instance.get('migration_context')) await this.deps.conductor.instanceDropMigrationContext(context, instance);
    if (migration) {
      migration.set('status', 'done');
      await this.deps.conductor.migrationSave(context, migration);
    }
  }

  private async setMigrationStatus(context: RequestContext, migration: Migration | null, status: string): Promise<void> {
    if (!migration) return;
    try {
      migration.set('status', status);
      await this.deps.conductor.migrationSave(context, migration);
    } catch (err) {
      this.log.warn({ err, migration_id: migration.get('id') }, 'could not set the migration status to %s', status);
    }
  }

  /** delete_allocation_for_evacuated_instance(node_type='destination'): the scheduler's claim on this provider. */
  private async deleteAllocationHere(context: RequestContext, uuid: string): Promise<void> {
    const log = this.instanceLog(context, uuid);
    const provider = this.deps.resourceTracker.nodeUuid;
    try {
      if (!provider || !(await this.deps.placement.removeProviderTreeFromInstanceAllocation(context, uuid, provider))) {
        log.error({ rp_uuid: provider }, 'Failed to clean allocation of evacuated instance on the destination node %s', provider);
      }
    } catch (err) {
      log.error({ err, rp_uuid: provider }, 'Failed to clean allocation of evacuated instance on the destination node %s', provider);
    }
  }

  private async notifyError(context: RequestContext, instance: Instance, err: RemoteFailure): Promise<void> {
    await this.deps.notifier.instanceAction(context, instance, 'rebuild', 'error', { fault: err });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Source: _destroy_evacuated_instances at init_host.

  /**
   * Destroys the local containers of instances evacuated away from this host, removes their allocations against
   * this host's provider and completes their migrations. Returns the evacuated instance uuids (init_host leaves
   * them alone afterwards). A failure to read the migrations is the caller's to log; per-instance failures are
   * logged here and leave that migration as it was, so the next start-up tries again.
   */
  async destroyEvacuatedInstances(context: RequestContext): Promise<Set<string>> {
    const filters = {
      source_compute: this.deps.host,
      status: [...EVACUATION_STATUSES_TO_CLEAN],
      migration_type: 'evacuation',
    };
    const migrations = await this.deps.conductor.migrationListGetByFilters({ ...context, read_deleted: 'yes' }, filters);
    if (migrations.length === 0) return new Set();
    const evacuations = new Map<string, Migration>();
    for (const migration of migrations) evacuations.set(String(migration.get('instance_uuid')), migration);

    // _get_instances_on_driver: the instances Nova knows for the containers the runtime has.
    const onRuntime = await this.deps.driver.listInstances();
    const local = new Map<string, Instance>();
    const candidates = onRuntime.map((i) => i.uuid).filter((u) => evacuations.has(u));
    if (candidates.length > 0) {
      for (const instance of await this.deps.conductor.instanceListGetByFilters(context, { uuid: candidates })) {
        local.set(String(instance.get('uuid')), instance);
      }
    }
    const notDestroyed = new Set<string>();
    for (const info of onRuntime) {
      if (!local.has(info.uuid)) continue;
      const log = this.instanceLog(context, info.uuid);
      log.info('Destroying instance as it has been evacuated from this host but still exists in the hypervisor');
      try {
        await this.deps.driver.destroy(info);
      } catch (err) {
        // Nova would fail init_host here; Berth starts, keeps the migration as it is and tries at the next start.
        log.error({ err }, 'could not destroy the container of an evacuated instance');
        notDestroyed.add(info.uuid);
      }
    }

    let providerUuid: string | null = null;
    try {
      providerUuid = await this.deps.resourceTracker.lookupNodeUuid(context);
    } catch (err) {
      this.log.error({ err }, 'could not look up this host\'s compute node; allocations of evacuated instances stay');
    }
    for (const [uuid, migration] of evacuations) {
      const log = this.instanceLog(context, uuid);
      if (notDestroyed.has(uuid)) continue;
      try {
        let instance = local.get(uuid);
        if (!instance) {
          try {
            instance = await this.deps.conductor.instanceGetByUuid(context, uuid, []);
          } catch (err) {
            // Deleted meanwhile: whoever deleted it cleaned its allocations up.
            if (isFailure(err, 'InstanceNotFound')) continue;
            throw err;
          }
        }
        log.info('Cleaning up allocations of the instance as it has been evacuated from this host');
        if (providerUuid === null || migration.get('source_node') !== this.deps.nodename) {
          log.error({ source_node: migration.get('source_node') }, 'Failed to clean allocation of evacuated instance as the source node %s is not found', String(migration.get('source_node')));
          continue;
        }
        if (instance.get('deleted') !== true && !(await this.deps.placement.removeProviderTreeFromInstanceAllocation(context, uuid, providerUuid))) {
          log.error({ rp_uuid: providerUuid }, 'Failed to clean allocation of evacuated instance on the source node %s', providerUuid);
        }
        migration.set('status', 'completed');
        await this.deps.conductor.migrationSave(context, migration);
      } catch (err) {
        log.error({ err }, 'could not clean up after the evacuation of this instance');
      }
    }
    return new Set(evacuations.keys());
  }
}

/** A nova.exception class Berth raises only here, with Nova's message and code. */
function nova(className: string, message: string, code: number, kwargs: Record<string, unknown> = {}): RemoteFailure {
  return new RemoteFailure(className, 'nova.exception', message, { args: [message], kwargs: { ...kwargs, code } });
}
