// What the compute manager needs from the services around it, each as the smallest interface that says so.
// src/main.ts wires the real clients; unit tests pass fakes.
import type { Readable } from 'node:stream';
import type { ImageSource } from '../../driver/driver';
import type { RequestContext } from '../messaging/types';
import type { Flavor, Instance, Migration } from '../objects';
import type { PlacementClient } from '../placement';

/** Allocations the manager removes (delete, failed build, reschedule, evacuation), reads (orphans) and moves (resize). */
export type PlacementPort = Pick<
  PlacementClient,
  | 'deleteAllocationsForConsumer'
  | 'getProviderAllocations'
  | 'getAllocationsForConsumer'
  | 'moveAllocations'
  | 'removeProviderTreeFromInstanceAllocation'
>;

export interface ImagePort {
  /** The Glance image of an RPC `image` dict, as the driver takes it (fetch() downloads and verifies). */
  source(context: RequestContext, image: Readonly<Record<string, unknown>>): ImageSource;
  /** GET the image metadata (used by rebuild, which only gets an image ref). */
  show(context: RequestContext, imageId: string): Promise<Record<string, unknown>>;
  /** Sets the snapshot's formats and properties, then streams the data into the queued image. */
  uploadSnapshot(
    context: RequestContext,
    imageId: string,
    data: Readable,
    properties: Readonly<Record<string, string>>,
  ): Promise<void>;
  /** Deletes a snapshot image after a failure (ignores a missing image). */
  delete(context: RequestContext, imageId: string): Promise<void>;
  /** Image ids of this instance's backups of a type, newest first (backup rotation). */
  listBackups(context: RequestContext, instanceUuid: string, backupType: string): Promise<string[]>;
}

/** The scheduler's instance-info fanout (nova/scheduler/rpcapi.py 4.2), when track_instance_changes is on. */
export interface SchedulerPort {
  updateInstanceInfo(context: RequestContext, instances: readonly Instance[]): Promise<void>;
  deleteInstanceInfo(context: RequestContext, instanceUuid: string): Promise<void>;
  syncInstanceInfo(context: RequestContext, instanceUuids: readonly string[]): Promise<void>;
}

/** The resource tracker as the manager uses it (src/compute/resource-tracker.ts). */
export interface ResourceTrackerPort {
  readonly nodeUuid: string | null;
  /** This node's ComputeNode uuid when the record (or the state file) already has one; nothing is created. */
  lookupNodeUuid(context: RequestContext): Promise<string | null>;
  /**
   * Nova's instance_claim: checks the flavor fits this host, sets host / node / launched_on on the instance (the
   * caller's next Instance.save writes them) and counts its usage. Throws ComputeResourcesUnavailable.
   */
  instanceClaim(context: RequestContext, instance: Instance): Promise<void>;
  /** Stops counting an instance (failed build, deleted, rescheduled). */
  dropInstance(context: RequestContext, instanceUuid: string): Promise<void>;
  /** Counts an instance found on this host (init_host). */
  trackInstance(instance: Instance): void;
  /**
   * Nova's resize_claim on this node: the migration becomes this node's (pre-migrating, saved), the new flavor must
   * fit the host (ComputeResourcesUnavailable), the instance gets its MigrationContext (saved), and the new flavor
   * counts beside the old one until the resize is confirmed or reverted.
   */
  resizeClaim(context: RequestContext, instance: Instance, flavor: Flavor, migration: Migration): Promise<void>;
  /** MoveClaim.abort: a resize that failed after its claim; the new flavor stops counting, the context goes. */
  abortResizeClaim(context: RequestContext, instance: Instance): Promise<void>;
  /** drop_move_claim_at_source (confirm): migration confirmed; the old flavor stops counting; context dropped. */
  dropMoveClaimAtSource(context: RequestContext, instance: Instance, migration: Migration): Promise<void>;
  /** drop_move_claim_at_dest (revert): migration reverted; the new flavor stops counting; old context values back. */
  dropMoveClaimAtDest(context: RequestContext, instance: Instance, migration: Migration): Promise<void>;
}
