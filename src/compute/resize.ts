// Resize and cold migration on Berth hosts: nova/compute/manager.py prep_resize → resize_instance → finish_resize,
// then confirm_resize, or revert_resize → finish_revert_resize, with Nova's task states, Migration statuses,
// flavors, migration context, Placement allocations, instance action events, faults and notifications. The casts
// between the steps go to the host that runs the next one (our own queue when source and destination are this host).
//
// On the same host (nova.conf allow_resize_to_same_host = True) nothing is copied: migrate_disk_and_power_off stops
// the container and applies the new flavor's limits (a refusal rolls back, as libvirt's pre-checks do, with
// InstanceFaultRollback); finish_migration powers it on; revert_resize stops it rather than destroying it (the same
// container serves the revert); finish_revert_migration puts the old limits back and powers it on.
//
// To another host (non-shared storage, as libvirt's copy of the instance directory): the container's disk is its
// writable layer. migrate_disk_and_power_off stops it, commits and uploads it to a temporary Glance image of the
// service project (src/compute/migration-images.ts) and names that image in disk_info; finish_migration on the
// destination loads it and creates the container there with the new flavor (started unless it was STOPPED). The
// source container stays, stopped, until confirm_resize destroys it or finish_revert_resize starts it again; the
// temporary image goes at confirm, at revert, and on every failure after which nobody will load it.
import type { ComputeDriver, InstanceRef } from '../../driver/driver';
import { PowerState } from '../../driver/driver';
import type { Logger } from '../log';
import { RemoteFailure } from '../messaging/failure';
import type { RequestContext } from '../messaging/types';
import type { Flavor, Instance, Migration, NovaObject } from '../objects';
import type { ConductorClient } from '../conductor';
import type { InstanceNotificationExtras, InstanceNotifier, NotificationPhase } from '../notifications/types';
import { AllocationMoveFailed } from '../placement';
import type { ComputeRpcApi } from './compute-rpcapi';
import type { KeyedMutex } from './concurrency';
import { fromDriverError, isFailure, notImplemented, novaError } from './exceptions';
import { addInstanceFault, runInstanceOperation, type OperationDeps } from './instance-operation';
import { flavorSpec, instanceSpec } from './instance-spec';
import type { PlacementPort, ResourceTrackerPort, SchedulerPort } from './ports';
import { migrationDiskInfo, migrationImage, migrationImageIdOf, type MigrationImagePort } from './migration-images';
import { applyMigrationContext } from './resource-tracker';
import { TaskState, VmState, type NotificationAction } from './states';

/** Nova's defaults for the reschedule call: [DEFAULT] long_rpc_timeout, with heartbeats every rpc_response_timeout. */
const RESCHEDULE_TIMEOUT_MS = 1800_000;
const RESCHEDULE_CALL_MONITOR_SEC = 60;
/** libvirt's migrate_disk_and_power_off returns the disks it copied as JSON; a container copies none. */
const NO_DISK_INFO = '[]';

export interface ResizeDeps {
  readonly host: string;
  readonly conductor: ConductorClient;
  readonly driver: ComputeDriver;
  readonly placement: PlacementPort;
  readonly scheduler: SchedulerPort;
  readonly resourceTracker: ResourceTrackerPort;
  readonly notifier: InstanceNotifier;
  readonly computeRpc: ComputeRpcApi;
  /** The manager's per-instance lock: every step runs under it, as every other operation does. */
  readonly locks: KeyedMutex;
  readonly op: OperationDeps;
  readonly logger: Logger;
  readonly ref: (instance: Instance) => InstanceRef;
  /** _get_power_off_values: seconds of graceful stop (image_os_shutdown_timeout or shutdown_timeout; 0 if not clean). */
  readonly powerOffTimeout: (instance: Instance, cleanShutdown: boolean) => number;
  /** The decorated stop_instance (own compute_stop_instance event), for a caller that already holds the lock. */
  readonly stopInstance: (context: RequestContext, instance: Instance) => Promise<void>;
  /** [DEFAULT] instance_name_template, for the container a cross-host move creates. */
  readonly options: { readonly instanceNameTemplate: string };
  /**
   * The temporary Glance image of a cross-host move (service credentials). Without it (no [glance] or
   * [service_user] credential) an instance cannot leave or reach this host: prep_resize refuses as before.
   */
  readonly migrationImages?: MigrationImagePort | undefined;
}

export interface PrepResizeArgs {
  readonly image: Readonly<Record<string, unknown>>;
  readonly instance: Instance;
  readonly flavor: Flavor;
  readonly requestSpec: NovaObject | null;
  readonly filterProperties: Record<string, unknown>;
  readonly node: string | null;
  readonly cleanShutdown: boolean;
  readonly migration: Migration;
  readonly hostList: unknown;
}

export interface ResizeInstanceArgs {
  readonly instance: Instance;
  readonly image: Readonly<Record<string, unknown>>;
  readonly migration: Migration;
  readonly flavor: Flavor;
  readonly cleanShutdown: boolean;
  readonly requestSpec: NovaObject | null;
}

export interface FinishResizeArgs {
  readonly instance: Instance;
  readonly image: Readonly<Record<string, unknown>>;
  readonly migration: Migration;
  readonly diskInfo: unknown;
  readonly requestSpec: NovaObject | null;
}

export interface MigrationArgs {
  readonly instance: Instance;
  readonly migration: Migration;
  readonly requestSpec?: NovaObject | null;
}

/** nova.exception.InstanceFaultRollback: _error_out_instance_on_exception puts the vm_state back and raises `inner`. */
export function instanceFaultRollback(inner: RemoteFailure): RemoteFailure {
  const outer = novaError('InstanceFaultRollback', {}, `Instance rollback performed due to: ${inner.message}`);
  return new RemoteFailure(outer.className, outer.module, outer.message, { args: outer.args, kwargs: outer.kwargs, cause: inner });
}

function rollbackInner(err: unknown): RemoteFailure | null {
  return err instanceof RemoteFailure && err.className === 'InstanceFaultRollback' && err.cause instanceof RemoteFailure ? err.cause : null;
}

function systemMetadata(instance: Instance): Record<string, string | null> {
  return { ...((instance.get('system_metadata') as Record<string, string | null> | undefined) ?? {}) };
}

/** Python's traceback.format_exception_only: what a reschedule puts in retry['exc']. */
function formatExceptionOnly(err: RemoteFailure): string[] {
  return [`${err.module}.${err.className}: ${err.message}\n`];
}

export class ResizeOperations {
  private readonly log: Logger;

  constructor(private readonly deps: ResizeDeps) {
    this.log = deps.logger.child({ component: 'resize' });
  }

  private instanceLog(context: RequestContext, instance: Instance): Logger {
    return this.log.child({ request_id: context.request_id, instance_uuid: String(instance.get('uuid')) });
  }

  private uuidOf(instance: Instance): string {
    return String(instance.get('uuid'));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // prep_resize (cast from the conductor to the destination): checks, claim, then resize_instance to the source.

  prepResize(context: RequestContext, a: PrepResizeArgs): Promise<void> {
    const { instance, migration, flavor } = a;
    const uuid = this.uuidOf(instance);
    // @wrap_exception @reverts_task_state @wrap_instance_event @wrap_instance_fault
    return runInstanceOperation(this.deps.op, context, instance, { method: 'prep_resize', args: { instance: uuid } }, () =>
      this.deps.locks.run(uuid, async () => {
        // A STOPPED server is resized too: a failure before anything changed puts it back as it was, not ACTIVE.
        const instanceState = String(instance.get('vm_state'));
        await this.errorOutInstanceOnException(context, instance, instanceState, () =>
          this.errorsOutMigration(context, migration, async () => {
            await this.notifyPrep(context, instance, 'start', flavor);
            try {
              await this.prepResizeBody(context, a);
            } catch (err) {
              // Rescheduling or dead: either way the destination's allocation goes and the source's comes back.
              await this.revertAllocation(context, instance, migration);
              await this.rescheduleResizeOrReraise(context, a, fromDriverError(err, uuid));
            } finally {
              await this.notifyPrep(context, instance, 'end', flavor);
            }
          }),
        );
      }),
    );
  }

  /** _prep_resize */
  private async prepResizeBody(context: RequestContext, a: PrepResizeArgs): Promise<void> {
    const { instance, flavor, migration } = a;
    const uuid = this.uuidOf(instance);
    const log = this.instanceLog(context, instance);
    const source = (instance.get('host') as string | null | undefined) ?? null;
    if (!source) {
      instance.set('vm_state', VmState.ERROR);
      await this.deps.conductor.instanceSave(context, instance).catch((err: unknown) => {
        if (!isFailure(err, 'InstanceNotFound')) throw err;
      });
      throw novaError('MigrationError', { reason: 'Instance has no source host' });
    }
    const sameHost = source === this.deps.host;
    // A migration (same flavor) to this host would change nothing: Berth's drivers lack supports_migrate_to_same_host.
    if (sameHost && flavor.get('id') === instance.get('instance_type_id')) {
      throw instanceFaultRollback(novaError('UnableToMigrateToSelf', { instance_id: uuid, host: this.deps.host }));
    }
    if (!sameHost && !this.deps.migrationImages) {
      throw instanceFaultRollback(
        novaError('MigrationPreCheckError', {
          reason: `instance ${uuid} runs on host ${source}; host ${this.deps.host} has no Glance service credential ([glance] or [service_user]) to receive a container through Glance`,
        }),
      );
    }
    if (!this.deps.driver.capabilities.supportsResize) {
      throw notImplemented(`resize is not supported by the ${this.deps.driver.type} driver`);
    }
    // Stash the new flavor, and the vm_state the resized (or reverted) instance goes back to.
    instance.set('new_flavor', flavor.clone());
    const sysmeta = systemMetadata(instance);
    sysmeta['old_vm_state'] = String(instance.get('vm_state'));
    instance.set('system_metadata', sysmeta);
    log.debug({ vm_state: sysmeta['old_vm_state'] }, 'Stashing vm_state: %s', sysmeta['old_vm_state']);
    await this.deps.conductor.instanceSave(context, instance);

    await this.deps.resourceTracker.resizeClaim(context, instance, flavor, migration);
    try {
      log.info('Migrating');
      await this.deps.computeRpc.resizeInstance(context, source, {
        instance,
        migration,
        image: a.image,
        flavor,
        requestSpec: a.requestSpec,
        cleanShutdown: a.cleanShutdown,
      });
    } catch (err) {
      // The claim's __exit__: a failed step after the claim gives it back.
      await this.deps.resourceTracker.abortResizeClaim(context, instance);
      throw err;
    }
  }

  /** _reschedule_resize_or_reraise */
  private async rescheduleResizeOrReraise(context: RequestContext, a: PrepResizeArgs, original: RemoteFailure): Promise<void> {
    const { instance } = a;
    const uuid = this.uuidOf(instance);
    const log = this.instanceLog(context, instance);
    let rescheduled = false;
    try {
      const retry = a.filterProperties['retry'];
      if (retry && typeof retry === 'object' && !Array.isArray(retry)) {
        const retryInfo = retry as Record<string, unknown>;
        log.debug({ attempt: retryInfo['num_attempts'] }, 'Rescheduling, attempt %s', String(retryInfo['num_attempts']));
        instance.set('task_state', TaskState.RESIZE_PREP);
        await this.deps.conductor.instanceSave(context, instance);
        retryInfo['exc'] = formatExceptionOnly(original);
        await this.deps.conductor.migrateServer(
          context,
          {
            instance,
            schedulerHint: { filter_properties: a.filterProperties },
            flavor: a.flavor,
            cleanShutdown: true,
            requestSpec: a.requestSpec,
            hostList: a.hostList,
          },
          { timeoutMs: RESCHEDULE_TIMEOUT_MS, callMonitorTimeoutSec: RESCHEDULE_CALL_MONITOR_SEC },
        );
        rescheduled = true;
      } else {
        log.debug('Retry info not present, will not reschedule');
      }
    } catch (raw) {
      const error = fromDriverError(raw, uuid);
      log.error({ err: error }, 'Error trying to reschedule');
      await addInstanceFault(this.deps.op, context, uuid, error);
      await this.notify(context, instance, 'resize', 'error', { fault: error });
    }
    if (!rescheduled) throw original;
    log.error({ err: original }, 'Resize of the instance failed here and was rescheduled');
    await addInstanceFault(this.deps.op, context, uuid, original);
    await this.notify(context, instance, 'resize', 'error', { fault: original });
  }

  private async notifyPrep(context: RequestContext, instance: Instance, phase: NotificationPhase, flavor: Flavor): Promise<void> {
    await this.notify(context, instance, 'resize_prep', phase, { newFlavor: flavor });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // resize_instance (cast, destination → source): power off, the new limits, then finish_resize to the destination.

  resizeInstance(context: RequestContext, a: ResizeInstanceArgs): Promise<void> {
    const { instance, migration } = a;
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.deps.op, context, instance, { method: 'resize_instance', args: { instance: uuid } }, () =>
      this.deps.locks.run(uuid, async () => {
        try {
          await this.resizeInstanceBody(context, a);
        } catch (err) {
          await this.revertAllocation(context, instance, migration);
          throw err;
        }
      }),
    );
  }

  /** _resize_instance */
  private async resizeInstanceBody(context: RequestContext, a: ResizeInstanceArgs): Promise<void> {
    const { instance, migration, flavor } = a;
    const instanceState = String(instance.get('vm_state'));
    await this.errorOutInstanceOnException(context, instance, instanceState, () =>
      this.errorsOutMigration(context, migration, async () => {
        await this.ensureFields(context, instance, ['flavor', 'system_metadata']);
        migration.set('status', 'migrating');
        await this.deps.conductor.migrationSave(context, migration);
        instance.set('task_state', TaskState.RESIZE_MIGRATING);
        try {
          await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: TaskState.RESIZE_PREP });
        } catch (err) {
          // Berth restarted while this cast waited in its queue, and init_host cleared resize_prep (as Nova's does):
          // the resize was abandoned before anything changed, so it rolls back where Nova would set ERROR.
          const actual = isFailure(err, 'UnexpectedTaskStateError') ? (err.kwargs['actual'] as Record<string, unknown> | undefined) : undefined;
          if (actual && actual['task_state'] === null) throw instanceFaultRollback(err as RemoteFailure);
          throw err;
        }
        await this.notify(context, instance, 'resize', 'start');

        const diskInfo = await this.migrateDiskAndPowerOff(context, instance, migration, flavor, this.deps.powerOffTimeout(instance, a.cleanShutdown));

        try {
          migration.set('status', 'post-migrating');
          await this.deps.conductor.migrationSave(context, migration);
          instance.set('host', migration.get('dest_compute') ?? null);
          instance.set('node', migration.get('dest_node') ?? null);
          // Set here, not in finish_resize: the tracker must see the old flavor of a migrated instance at once.
          const current = instance.get('flavor');
          if (current) instance.set('old_flavor', current.clone());
          instance.set('task_state', TaskState.RESIZE_MIGRATED);
          await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: TaskState.RESIZE_MIGRATING });

          await this.deps.computeRpc.finishResize(context, String(migration.get('dest_compute')), {
            instance,
            migration,
            image: a.image,
            diskInfo,
            requestSpec: a.requestSpec,
          });
        } catch (err) {
          // finish_resize was never sent: no destination will load the transferred image.
          await this.deleteMigrationImage(context, instance, migration, 'resize_instance failed after the transfer');
          throw err;
        }
      }),
    );
    await this.notify(context, instance, 'resize', 'end');
  }

  /**
   * The driver's migrate_disk_and_power_off for a container: stop it (gracefully for `timeoutSec`), then give it
   * the new flavor's limits while it is stopped. A destination that is not this host, or a flavor the runtime
   * refuses, rolls back before anything is lost (the container runs again as it did), like libvirt's pre-checks.
   */
  private async migrateDiskAndPowerOff(context: RequestContext, instance: Instance, migration: Migration, flavor: Flavor, timeoutSec: number): Promise<string> {
    const uuid = this.uuidOf(instance);
    const dest = migration.get('dest_compute') ?? null;
    if (dest !== this.deps.host) return this.migrateToOtherHost(context, instance, migration, String(dest), timeoutSec);
    const ref = this.deps.ref(instance);
    const wasRunning = (await this.powerState(ref)) === PowerState.RUNNING;
    await this.deps.driver.powerOff(ref, timeoutSec);
    try {
      await this.deps.driver.changeFlavor(ref, flavorSpec(flavor));
    } catch (err) {
      if (wasRunning) {
        await this.deps.driver.powerOn(ref).catch((startErr: unknown) =>
          this.instanceLog(context, instance).error({ err: startErr }, 'could not start the instance again after the new flavor was refused'),
        );
      }
      throw instanceFaultRollback(fromDriverError(err, uuid));
    }
    return NO_DISK_INFO;
  }

  /**
   * migrate_disk_and_power_off to another host: stop the container, commit its writable layer (the driver's snapshot:
   * commit + save, under its deadlines) into a temporary service-project image, and name that image in disk_info.
   * Until the image is complete nothing has moved: a failure deletes the image, starts the container again if it ran,
   * and rolls back (InstanceFaultRollback), as the same-host path does when the runtime refuses the new flavor.
   */
  private async migrateToOtherHost(context: RequestContext, instance: Instance, migration: Migration, dest: string, timeoutSec: number): Promise<string> {
    const uuid = this.uuidOf(instance);
    const log = this.instanceLog(context, instance);
    const images = this.deps.migrationImages;
    if (!images || !this.deps.driver.capabilities.supportsSnapshot) {
      const why = images ? `the ${this.deps.driver.type} driver cannot commit a container` : 'this host has no Glance service credential ([glance] or [service_user])';
      throw instanceFaultRollback(novaError('MigrationPreCheckError', { reason: `instance ${uuid} cannot move from host ${this.deps.host} to host ${dest}: ${why}` }));
    }
    const ref = this.deps.ref(instance);
    const wasRunning = (await this.powerState(ref)) === PowerState.RUNNING;
    await this.deps.driver.powerOff(ref, timeoutSec);
    const image = migrationImage(String(migration.get('uuid')), uuid);
    let created = false;
    try {
      await images.createMigrationImage(context, image);
      created = true;
      await this.deps.driver.snapshot(ref, {
        imageId: image.id,
        upload: (data) => images.uploadMigrationImage(context, image.id, data),
        // The instance's task state stays resize_migrating: the transfer is part of it, not an image task.
        updateTaskState: async () => undefined,
      });
    } catch (err) {
      log.error({ err, image_id: image.id, dest }, 'The transfer of the instance to host %s failed; it stays on this host', dest);
      if (created) await this.deleteMigrationImage(context, instance, migration, 'the transfer failed');
      if (wasRunning) {
        await this.deps.driver.powerOn(ref).catch((startErr: unknown) => log.error({ err: startErr }, 'could not start the instance again after the failed transfer'));
      }
      throw instanceFaultRollback(fromDriverError(err, uuid));
    }
    log.info({ image_id: image.id, dest }, 'Instance transferred for host %s through Glance image %s', dest, image.id);
    return migrationDiskInfo(image);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // finish_resize (cast, source → destination): the new flavor becomes the instance's; VERIFY_RESIZE.

  finishResize(context: RequestContext, a: FinishResizeArgs): Promise<void> {
    const { instance, migration } = a;
    const uuid = this.uuidOf(instance);
    // @wrap_exception @reverts_task_state @wrap_instance_event @errors_out_migration @wrap_instance_fault
    return this.decorated(context, instance, 'finish_resize', migration, true, () =>
      this.deps.locks.run(uuid, async () => {
        try {
          await this.errorOutInstanceOnException(context, instance, VmState.ACTIVE, () => this.finishResizeBody(context, a));
        } catch (err) {
          // resize_instance already pointed the instance at this host: the allocations here stay, the source's go.
          this.instanceLog(context, instance).info(
            'Deleting allocations for old flavor on source node %s after finish_resize failure. You may be able to recover the instance by hard rebooting it.',
            String(migration.get('source_compute')),
          );
          await this.deleteAllocationAfterMove(context, instance, migration);
          // The instance is ERROR here: no revert will run, and the source keeps its stopped container.
          await this.deleteMigrationImage(context, instance, migration, 'finish_resize failed');
          throw err;
        }
        await this.deps.scheduler.updateInstanceInfo(context, [instance]);
        await this.notify(context, instance, 'resize_finish', 'end');
        this.instanceLog(context, instance).info({ flavor: instance.get('flavor')?.get('name') }, 'Resized to flavor %s; waiting for confirm or revert', String(instance.get('flavor')?.get('name')));
      }),
    );
  }

  /** _finish_resize */
  private async finishResizeBody(context: RequestContext, a: FinishResizeArgs): Promise<void> {
    const { instance, migration } = a;
    await this.ensureFields(context, instance, ['flavor', 'system_metadata', 'migration_context']);
    const oldFlavor = instance.get('flavor') as Flavor;
    const oldVmState = systemMetadata(instance)['old_vm_state'] ?? VmState.ACTIVE;
    instance.set('old_flavor', oldFlavor.clone());
    const flavorChanges = migration.get('old_instance_type_id') !== migration.get('new_instance_type_id');
    const newFlavor = instance.get('new_flavor');
    if (flavorChanges && newFlavor) setInstanceInfo(instance, newFlavor);
    applyMigrationContext(instance, 'new_');

    instance.set('task_state', TaskState.RESIZE_FINISH);
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: TaskState.RESIZE_MIGRATED });
    await this.notify(context, instance, 'resize_finish', 'start');

    // finish_migration: on this host the limits are on the container already (migrate_disk_and_power_off); from
    // another host the container is created here from the transferred image. A STOPPED instance stays off.
    const powerOn = oldVmState !== VmState.STOPPED;
    try {
      if (isCrossHost(migration)) await this.finishMigrationFromOtherHost(context, instance, a.diskInfo, powerOn);
      else if (powerOn) await this.deps.driver.powerOn(this.deps.ref(instance));
    } catch (err) {
      if (flavorChanges) setInstanceInfo(instance, oldFlavor);
      throw err;
    }

    migration.set('status', 'finished');
    await this.deps.conductor.migrationSave(context, migration);
    instance.set('vm_state', VmState.RESIZED);
    instance.set('task_state', null);
    instance.set('launched_at', new Date());
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: TaskState.RESIZE_FINISH });
  }

  /** finish_migration from another host: the image disk_info names, loaded with the service credentials. */
  private async finishMigrationFromOtherHost(context: RequestContext, instance: Instance, diskInfo: unknown, powerOn: boolean): Promise<void> {
    const uuid = this.uuidOf(instance);
    const imageId = migrationImageIdOf(diskInfo);
    if (imageId === null) throw novaError('MigrationError', { reason: `disk_info names no transferred image of instance ${uuid}` });
    const images = this.deps.migrationImages;
    if (!images) throw novaError('MigrationError', { reason: `host ${this.deps.host} has no Glance service credential to load the transferred instance` });
    const source = await images.migrationImageSource(context, imageId);
    await this.deps.driver.finishMigration(instanceSpec(this.deps.options.instanceNameTemplate, instance, false), source, powerOn);
    this.instanceLog(context, instance).info({ image_id: imageId, power_on: powerOn }, 'Instance created from the transferred image %s', imageId);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // confirm_resize (cast from nova-api to the source): the old flavor and its allocation go.

  confirmResize(context: RequestContext, a: MigrationArgs): Promise<void> {
    const { migration } = a;
    const uuid = this.uuidOf(a.instance);
    // @wrap_exception @wrap_instance_event @errors_out_migration @wrap_instance_fault (no task state to revert)
    return this.decorated(context, a.instance, 'confirm_resize', migration, false, () =>
      this.deps.locks.run(uuid, async () => {
        const log = this.instanceLog(context, a.instance);
        log.debug({ migration_id: migration.get('id') }, 'Going to confirm migration %s', String(migration.get('id')));
        const status = migration.get('status');
        if (status === 'confirmed') {
          log.info('Migration %s is already confirmed', String(migration.get('id')));
          return;
        }
        if (status !== 'finished' && status !== 'confirming') {
          log.warn({ status }, "Unexpected confirmation status '%s' of migration %s, exit confirmation process", String(status), String(migration.get('id')));
          return;
        }
        let instance: Instance;
        try {
          instance = await this.deps.conductor.instanceGetByUuid(context, uuid, ['metadata', 'system_metadata', 'flavor']);
        } catch (err) {
          if (!isFailure(err, 'InstanceNotFound')) throw err;
          log.info('Instance is not found during confirmation');
          return;
        }
        await this.errorOutInstanceOnException(context, instance, VmState.ACTIVE, async () => {
          try {
            await this.confirmResizeBody(context, instance, migration);
          } catch (err) {
            log.error(
              { err },
              'Confirm resize failed on source host %s. Resource allocations in the placement service will be removed regardless because the instance is now on the destination host %s. You can try hard rebooting the instance to correct its state.',
              this.deps.host,
              String(migration.get('dest_compute')),
            );
            throw err;
          } finally {
            // Whatever happened, the instance is on the destination now: no allocation may leak on the source.
            await this.deleteAllocationAfterMove(context, instance, migration);
            await this.deps.scheduler.deleteInstanceInfo(context, uuid);
            await this.deleteStashedFlavorInfo(context, instance);
          }
        });
      }),
    );
  }

  /** _confirm_resize */
  private async confirmResizeBody(context: RequestContext, instance: Instance, migration: Migration): Promise<void> {
    await this.notify(context, instance, 'resize_confirm', 'start');
    // driver.confirm_migration: on this host nothing of the old flavor is left on the runtime to clean up; after a
    // move the stopped source container and the transferred image go.
    if (isCrossHost(migration)) {
      await this.deps.driver.destroy(this.deps.ref(instance));
      await this.deleteMigrationImage(context, instance, migration, 'the move is confirmed');
    }
    await this.ensureFields(context, instance, ['migration_context']);
    await this.deps.resourceTracker.dropMoveClaimAtSource(context, instance, migration);
    // The user may have started a resized STOPPED instance before confirming: the power state decides.
    instance.set('vm_state', instance.get('power_state') === PowerState.SHUTDOWN ? VmState.STOPPED : VmState.ACTIVE);
    instance.set('task_state', null);
    await this.deps.conductor.instanceSave(context, instance, {
      expectedTaskState: [null, TaskState.DELETING, TaskState.SOFT_DELETING],
    });
    await this.notify(context, instance, 'resize_confirm', 'end');
    this.instanceLog(context, instance).info('Resize confirmed');
  }

  // ---------------------------------------------------------------------------------------------------------------
  // revert_resize (cast from nova-api to the destination), then finish_revert_resize (destination → source).

  revertResize(context: RequestContext, a: MigrationArgs): Promise<void> {
    const { instance, migration } = a;
    const uuid = this.uuidOf(instance);
    return this.decorated(context, instance, 'revert_resize', migration, true, () =>
      this.deps.locks.run(uuid, () =>
        this.errorOutInstanceOnException(context, instance, VmState.ACTIVE, async () => {
          await this.ensureFields(context, instance, ['flavor', 'system_metadata', 'migration_context']);
          // driver.destroy on the destination; on the same host the container is the source's too, so it is stopped.
          if (isCrossHost(migration)) {
            try {
              await this.deps.driver.destroy(this.deps.ref(instance));
            } catch (err) {
              // ERROR here: no finish_revert_resize follows, so nothing will load the transferred image any more.
              await this.deleteMigrationImage(context, instance, migration, 'revert_resize failed');
              throw err;
            }
          } else {
            await this.deps.driver.powerOff(this.deps.ref(instance), this.deps.powerOffTimeout(instance, true));
          }
          await this.deps.resourceTracker.dropMoveClaimAtDest(context, instance, migration);
          await this.deps.computeRpc.finishRevertResize(context, String(migration.get('source_compute')), {
            instance,
            migration,
            requestSpec: a.requestSpec ?? null,
          });
        }),
      ),
    );
  }

  finishRevertResize(context: RequestContext, a: MigrationArgs): Promise<void> {
    const { instance, migration } = a;
    const uuid = this.uuidOf(instance);
    return this.decorated(context, instance, 'finish_revert_resize', migration, true, () =>
      this.deps.locks.run(uuid, async () => {
        try {
          await this.errorOutInstanceOnException(context, instance, VmState.ACTIVE, () => this.finishRevertResizeBody(context, instance, migration));
        } finally {
          await this.deleteStashedFlavorInfo(context, instance);
          // The destination's copy is gone (revert_resize): the image is of no use, however the revert ended.
          if (isCrossHost(migration)) await this.deleteMigrationImage(context, instance, migration, 'the move is reverted');
        }
      }),
    );
  }

  /** _finish_revert_resize */
  private async finishRevertResizeBody(context: RequestContext, instance: Instance, migration: Migration): Promise<void> {
    const log = this.instanceLog(context, instance);
    await this.ensureFields(context, instance, ['flavor', 'system_metadata', 'migration_context']);
    await this.notify(context, instance, 'resize_revert', 'start');
    const oldVmState = systemMetadata(instance)['old_vm_state'] ?? VmState.ACTIVE;

    // _revert_instance_flavor_host_node
    const oldFlavor = instance.get('old_flavor');
    if (oldFlavor) setInstanceInfo(instance, oldFlavor);
    instance.set('host', migration.get('source_compute') ?? null);
    instance.set('node', migration.get('source_node') ?? null);
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: [TaskState.RESIZE_REVERTING] });

    try {
      await this.revertAllocation(context, instance, migration);
    } catch (err) {
      log.error(
        { err },
        'Reverting allocation in placement for migration %s failed. The instance %s will be put into ERROR state but the allocation held by the migration is leaked.',
        String(migration.get('uuid')),
        this.uuidOf(instance),
      );
      throw err;
    }

    // finish_revert_migration: the old limits back (a container that moved never lost them: it stayed here, stopped),
    // and the container up unless the instance was STOPPED.
    const powerOn = oldVmState !== VmState.STOPPED;
    const ref = this.deps.ref(instance);
    if (!isCrossHost(migration)) await this.deps.driver.changeFlavor(ref, flavorSpec(instance.get('flavor') as Flavor));
    if (powerOn) await this.deps.driver.powerOn(ref);

    await this.deps.conductor.instanceDropMigrationContext(context, instance);
    instance.set('launched_at', new Date());
    await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: TaskState.RESIZE_REVERTING });

    log.info({ old_vm_state: oldVmState }, "Updating instance to original state: '%s'", oldVmState);
    if (powerOn) {
      instance.set('vm_state', VmState.ACTIVE);
      instance.set('task_state', null);
      await this.deps.conductor.instanceSave(context, instance);
    } else {
      instance.set('task_state', TaskState.POWERING_OFF);
      await this.deps.conductor.instanceSave(context, instance);
      await this.deps.stopInstance(context, instance);
    }
    await this.notify(context, instance, 'resize_revert', 'end');
    log.info('Resize reverted');
  }

  // ---------------------------------------------------------------------------------------------------------------
  // init_host

  /**
   * A restart found the instance in the middle of a resize this host was running. resize_migrating is Nova's
   * rollback (the old flavor's limits back, powered on unless it was STOPPED, task_state cleared); Berth also
   * ends the migration (error) and gives the instance its allocation back, where Nova leaves both flavors held.
   * resize_finish (Berth only; Nova leaves it set) completes the finish that was interrupted: the cast that carried
   * it is gone, and the new flavor was already on the container.
   */
  async recoverInterruptedResize(context: RequestContext, instance: Instance): Promise<void> {
    const log = this.instanceLog(context, instance);
    await this.ensureFields(context, instance, ['flavor', 'system_metadata', 'migration_context']);
    const migrationId = (instance.get('migration_context') as NovaObject | null | undefined)?.get('migration_id');
    const migration =
      typeof migrationId === 'number'
        ? await this.deps.conductor.migrationGetByIdAndInstance(context, migrationId, this.uuidOf(instance)).catch((err: unknown) => {
            log.warn({ err, migration_id: migrationId }, 'could not load the migration of the interrupted resize');
            return null;
          })
        : null;
    const ref = this.deps.ref(instance);
    const powerOn = systemMetadata(instance)['old_vm_state'] !== VmState.STOPPED;

    if (instance.get('task_state') === TaskState.RESIZE_FINISH) {
      try {
        if (powerOn) await this.deps.driver.powerOn(ref);
        if (migration) {
          migration.set('status', 'finished');
          await this.deps.conductor.migrationSave(context, migration);
        }
        instance.set('vm_state', VmState.RESIZED);
        instance.set('task_state', null);
        instance.set('launched_at', new Date());
        await this.deps.conductor.instanceSave(context, instance, { expectedTaskState: TaskState.RESIZE_FINISH });
        log.info('Instance found in resize_finish state during startup; the resize was finished');
      } catch (err) {
        // As a failed finish_resize ends: ERROR, for the user to hard reboot (or revert).
        log.error({ err }, 'Failed to finish the interrupted resize; setting instance vm_state to ERROR');
        instance.set('vm_state', VmState.ERROR);
        instance.set('task_state', null);
        await this.deps.conductor.instanceSave(context, instance);
      }
      return;
    }

    try {
      await this.deps.driver.changeFlavor(ref, flavorSpec(instance.get('flavor') as Flavor));
      if (powerOn) await this.deps.driver.powerOn(ref);
    } catch (err) {
      log.error({ err }, 'Failed to revert crashed migration');
    } finally {
      log.info('Instance found in migrating state during startup. Resetting task_state');
      instance.set('task_state', null);
      await this.deps.conductor.instanceSave(context, instance);
    }
    try {
      if (migration) {
        migration.set('status', 'error');
        await this.deps.conductor.migrationSave(context, migration);
        await this.revertAllocation(context, instance, migration);
      }
      if (instance.get('migration_context')) await this.deps.conductor.instanceDropMigrationContext(context, instance);
      await this.deleteStashedFlavorInfo(context, instance);
    } catch (err) {
      log.error({ err }, 'could not end the interrupted migration; its allocation may be left in placement');
    }
    // A transfer to another host that the restart interrupted may have left its image behind.
    if (migration && isCrossHost(migration)) await this.deleteMigrationImage(context, instance, migration, 'the move was interrupted');
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Nova's decorators and helpers around the steps.

  /** A step decorated with @wrap_instance_event @errors_out_migration @wrap_instance_fault, in that order. */
  private decorated(context: RequestContext, instance: Instance, method: string, migration: Migration, revertTaskState: boolean, body: () => Promise<void>): Promise<void> {
    const uuid = this.uuidOf(instance);
    return runInstanceOperation(this.deps.op, context, instance, { method, args: { instance: uuid }, fault: false, revertTaskState }, () =>
      this.errorsOutMigration(context, migration, async () => {
        try {
          await body();
        } catch (raw) {
          const err = fromDriverError(raw, uuid);
          if (!err.is('InstanceNotFound')) await addInstanceFault(this.deps.op, context, uuid, err);
          throw err;
        }
      }),
    );
  }

  /** errors_out_migration_ctxt: any failure sets the migration to error. */
  private async errorsOutMigration(context: RequestContext, migration: Migration, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      migration.set('status', 'error');
      await this.deps.conductor.migrationSave(context, migration).catch((saveErr: unknown) =>
        this.log.debug({ err: saveErr, instance_uuid: migration.get('instance_uuid') }, 'Error setting migration status for instance'),
      );
      throw err;
    }
  }

  /**
   * _error_out_instance_on_exception: NotImplementedError and InstanceFaultRollback put vm_state back to
   * `instanceState` with no task (the rollback raises its inner exception); anything else sets vm_state ERROR.
   */
  private async errorOutInstanceOnException(context: RequestContext, instance: Instance, instanceState: string, fn: () => Promise<void>): Promise<void> {
    const log = this.instanceLog(context, instance);
    try {
      await fn();
    } catch (raw) {
      const inner = rollbackInner(raw);
      if (inner || (raw instanceof RemoteFailure && raw.className === 'NotImplementedError')) {
        log.info({ state: instanceState, error: (raw as Error).message }, 'Setting instance back to %s after: %s', instanceState, (raw as Error).message);
        instance.set('vm_state', instanceState);
        instance.set('task_state', null);
        await this.deps.conductor.instanceSave(context, instance);
        throw inner ?? raw;
      }
      log.error({ err: raw }, 'Setting instance vm_state to ERROR');
      try {
        instance.set('vm_state', VmState.ERROR);
        await this.deps.conductor.instanceSave(context, instance);
      } catch (saveErr) {
        if (isFailure(saveErr, 'InstanceNotFound')) log.debug('Instance has been destroyed from under us while trying to set it to ERROR');
        else log.warn({ err: saveErr }, 'could not set the instance to ERROR');
      }
      throw raw;
    }
  }

  /**
   * _revert_allocation: the allocation the migration holds (the source's, old flavor) goes back to the instance,
   * replacing what the instance held at the destination. False when the migration holds nothing.
   */
  private async revertAllocation(context: RequestContext, instance: Instance, migration: Migration): Promise<boolean> {
    const log = this.instanceLog(context, instance);
    const migrationUuid = String(migration.get('uuid'));
    let held: string[];
    try {
      held = Object.keys((await this.deps.placement.getAllocationsForConsumer(context, migrationUuid)).allocations);
    } catch (err) {
      log.warn({ err, consumer: migrationUuid }, 'Failed to get allocations for consumer %s', migrationUuid);
      held = [];
    }
    if (held.length === 0) {
      log.error(
        { migration_uuid: migrationUuid },
        'Did not find resource allocations for migration %s on source node %s. Unable to revert source node allocations back to the instance.',
        migrationUuid,
        String(migration.get('source_node')),
      );
      return false;
    }
    log.info({ rp_uuids: held, migration_uuid: migrationUuid }, 'Swapping old allocation on %s held by migration %s for instance', held.join(', '), migrationUuid);
    try {
      await this.deps.placement.moveAllocations(context, migrationUuid, this.uuidOf(instance));
    } catch (err) {
      if (err instanceof AllocationMoveFailed) {
        throw novaError('AllocationMoveFailed', { source_consumer: err.sourceConsumer, target_consumer: err.targetConsumer, error: err.message });
      }
      throw err;
    }
    return true;
  }

  /** _delete_allocation_after_move: the migration's allocation (the source node's, old flavor) goes. */
  private async deleteAllocationAfterMove(context: RequestContext, instance: Instance, migration: Migration): Promise<void> {
    const migrationUuid = String(migration.get('uuid'));
    try {
      await this.deps.placement.deleteAllocationsForConsumer(context, migrationUuid);
    } catch (err) {
      this.instanceLog(context, instance).error(
        { err, migration_uuid: migrationUuid },
        'Deleting allocation in placement for migration %s failed. The instance %s will be put to ERROR state but the allocation held by the migration is leaked.',
        migrationUuid,
        this.uuidOf(instance),
      );
      throw novaError('AllocationDeleteFailed', { consumer_uuid: migrationUuid, error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** _delete_stashed_flavor_info */
  private async deleteStashedFlavorInfo(context: RequestContext, instance: Instance): Promise<void> {
    instance.set('old_flavor', null);
    instance.set('new_flavor', null);
    const sysmeta = systemMetadata(instance);
    delete sysmeta['old_vm_state'];
    instance.set('system_metadata', sysmeta);
    await this.deps.conductor.instanceSave(context, instance);
  }

  /** Deletes the temporary image of a cross-host move; logged, never failing the step (Glance keeps what it can't delete). */
  private async deleteMigrationImage(context: RequestContext, instance: Instance, migration: Migration, why: string): Promise<void> {
    const images = this.deps.migrationImages;
    if (!images || !isCrossHost(migration)) return;
    const imageId = migrationImage(String(migration.get('uuid')), this.uuidOf(instance)).id;
    const log = this.instanceLog(context, instance);
    try {
      const deleted = await images.deleteMigrationImage(context, imageId);
      log.info({ image_id: imageId, deleted }, 'Temporary migration image %s deleted (%s)', imageId, why);
    } catch (err) {
      log.warn({ err, image_id: imageId }, 'Could not delete the temporary migration image %s (%s); delete it with the service credentials', imageId, why);
    }
  }

  private async powerState(ref: InstanceRef): Promise<PowerState> {
    try {
      return (await this.deps.driver.getInfo(ref)).powerState;
    } catch {
      return PowerState.NOSTATE;
    }
  }

  private async notify(context: RequestContext, instance: Instance, action: NotificationAction, phase: NotificationPhase, extras: InstanceNotificationExtras = {}): Promise<void> {
    await this.deps.notifier.instanceAction(context, instance, action, phase, extras);
  }

  /**
   * Fields a step needs that the RPC instance may lack, loaded as Instance.obj_load_attr would (`flavor` brings
   * old_flavor and new_flavor along), without marking them changed.
   */
  private async ensureFields(context: RequestContext, instance: Instance, attrs: ReadonlyArray<'flavor' | 'system_metadata' | 'migration_context'>): Promise<void> {
    const fieldsOf = { flavor: ['flavor', 'old_flavor', 'new_flavor'], system_metadata: ['system_metadata'], migration_context: ['migration_context'] } as const;
    const missing = attrs.filter((attr) => fieldsOf[attr].some((f) => !instance.has(f)));
    if (missing.length === 0) return;
    const fresh = await this.deps.conductor.instanceGetByUuid(context, this.uuidOf(instance), missing);
    const loaded: string[] = [];
    for (const attr of missing) {
      for (const field of fieldsOf[attr]) {
        if (instance.has(field)) continue;
        instance.set(field, (fresh.get(field) ?? null) as never);
        loaded.push(field);
      }
    }
    instance.resetChanges(loaded);
  }
}

/** True when the migration moves the instance to another host (a same-host resize has source == dest). */
function isCrossHost(migration: Migration): boolean {
  const dest = migration.get('dest_compute');
  return typeof dest === 'string' && dest !== migration.get('source_compute');
}

/** _set_instance_info: the flavor and the columns Nova keeps beside it. */
function setInstanceInfo(instance: Instance, flavor: Flavor): void {
  instance.set('instance_type_id', flavor.get('id') ?? null);
  instance.set('memory_mb', flavor.get('memory_mb') ?? null);
  instance.set('vcpus', flavor.get('vcpus') ?? null);
  instance.set('root_gb', flavor.get('root_gb') ?? null);
  instance.set('ephemeral_gb', flavor.get('ephemeral_gb') ?? null);
  instance.set('flavor', flavor.clone());
}
