// The runtime contract, modelled on Nova's nova/virt/driver.py ComputeDriver.
//
// The compute manager (src/compute) is the only caller. A driver knows its runtime (Docker, or nothing for the
// fake) and this file; it never imports anything from src/. Everything Nova-specific that a driver needs arrives
// as plain data (InstanceSpec, ImageSource); everything it reports goes back as plain data (InstanceInfo,
// HostResources, LifecycleEvent). The docstrings below are the contract: driver/fake is its executable form,
// driver/power-transitions.ts the state table every driver follows, and test/unit/driver/conformance.ts the suite
// that runs against every driver.

import type { Readable } from 'node:stream';

/** Nova's power_state integers (nova/compute/power_state.py). */
export const PowerState = {
  NOSTATE: 0,
  RUNNING: 1,
  PAUSED: 3,
  SHUTDOWN: 4,
  CRASHED: 6,
  SUSPENDED: 7,
} as const;
export type PowerState = (typeof PowerState)[keyof typeof PowerState];

/** The string form Nova uses for power states in Diagnostics objects and logs. */
export const POWER_STATE_NAMES: Record<PowerState, string> = {
  0: 'pending',
  1: 'running',
  3: 'paused',
  4: 'shutdown',
  6: 'crashed',
  7: 'suspended',
};

/**
 * What a driver can do. Everything is false unless the driver implements it; the manager refuses an operation
 * whose capability is false with NotImplementedError (as Nova does) and exports the capabilities as Placement
 * traits (see CAPABILITY_TRAITS).
 */
export interface DriverCapabilities {
  readonly supportsPause: boolean;
  readonly supportsSuspend: boolean;
  readonly supportsSoftReboot: boolean;
  readonly supportsSnapshot: boolean;
  readonly supportsRebuild: boolean;
  /** Change the flavor (limits) of an instance on this host. */
  readonly supportsResize: boolean;
  readonly supportsConsoleOutput: boolean;
  readonly supportsDiagnostics: boolean;
  readonly supportsAttachInterface: boolean;
  readonly supportsDeviceTagging: boolean;
  readonly supportsMultiattach: boolean;
  /** Images are `docker save` tarballs stored in Glance with disk_format=raw. */
  readonly supportsImageTypeRaw: boolean;
  readonly supportsImageTypeQcow2: boolean;
  /**
   * Nova's has_imagecache: the driver keeps the Glance images it booted from, implements manageImageCache (the
   * periodic clean-up) and cacheImage (pre-caching). Without it the manager skips the pass and cache_images answers
   * 'unsupported' for every image.
   */
  readonly hasImageCache: boolean;
}

/** Nova's capability → trait table (nova/virt/driver.py CAPABILITY_TRAITS_MAP), for the capabilities we model. */
export const CAPABILITY_TRAITS: Partial<Record<keyof DriverCapabilities, string>> = {
  supportsAttachInterface: 'COMPUTE_NET_ATTACH_INTERFACE',
  supportsDeviceTagging: 'COMPUTE_DEVICE_TAGGING',
  supportsMultiattach: 'COMPUTE_VOLUME_MULTI_ATTACH',
  supportsImageTypeRaw: 'COMPUTE_IMAGE_TYPE_RAW',
  supportsImageTypeQcow2: 'COMPUTE_IMAGE_TYPE_QCOW2',
};

/** The flavor as the runtime needs it. */
export interface FlavorSpec {
  readonly name: string;
  readonly flavorId: string;
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly rootGb: number;
  readonly ephemeralGb: number;
  readonly swapMb: number;
  /** Flavor extra specs; a driver honours only the keys its operator allowed and rejects the others. */
  readonly extraSpecs: Readonly<Record<string, string>>;
}

/** The identity of an instance on the runtime. */
export interface InstanceRef {
  readonly uuid: string;
  /** Nova's instance name (`instance_name_template`, e.g. `instance-0000002a`). */
  readonly name: string;
}

/** Everything a driver needs to create an instance. */
export interface InstanceSpec extends InstanceRef {
  readonly hostname: string;
  readonly displayName: string;
  readonly projectId: string;
  readonly userId: string;
  readonly flavor: FlavorSpec;
  /** Instance metadata (`openstack server set --property`). */
  readonly metadata: Readonly<Record<string, string>>;
  /** True when Nova gave the instance network ports; without ports the container gets no network at all. */
  readonly hasNetwork: boolean;
}

/** A Glance image, as handed to spawn. */
export interface ImageSource {
  readonly id: string;
  readonly name: string;
  readonly containerFormat: string;
  readonly diskFormat: string;
  readonly size: number | null;
  /** Glance image properties (e.g. `os_command_line`). */
  readonly properties: Readonly<Record<string, unknown>>;
  /**
   * Downloads the image and verifies Glance's hash; resolves to the path of a local file that holds exactly the
   * verified bytes. The driver calls it only on a cache miss, and removes the file when it no longer needs it.
   */
  fetch(): Promise<string>;
}

export interface InstanceInfo extends InstanceRef {
  readonly powerState: PowerState;
  /** Runtime-specific id (the Docker container id). */
  readonly runtimeId: string;
  /** Runtime-specific state word, for logs (`running`, `exited`, …). */
  readonly runtimeState: string;
  /** When the runtime last started it, if known. */
  readonly startedAt: Date | null;
}

export interface HostResources {
  readonly vcpus: number;
  readonly memoryMb: number;
  /** Size of the filesystem that holds the runtime's data, GB. */
  readonly localGb: number;
  /** Free space on that filesystem, GB (Nova's disk_available_least). */
  readonly diskAvailableLeastGb: number;
  readonly hypervisorType: string;
  /** Dotted version as Nova's int: each component × 1000 (24.0.7 → 24000007). */
  readonly hypervisorVersion: number;
  /** JSON-serialisable description for ComputeNode.cpu_info. */
  readonly cpuInfo: Readonly<Record<string, unknown>>;
  /** [arch, hv_type, vm_mode] triples for ComputeNode.supported_hv_specs. */
  readonly supportedInstances: ReadonlyArray<readonly [string, string, string]>;
}

export interface DiagnosticsCpu {
  readonly id: number;
  readonly time: number | null;
  readonly utilisation: number | null;
}
export interface DiagnosticsNic {
  readonly macAddress: string | null;
  readonly rxOctets: number;
  readonly rxPackets: number;
  readonly rxErrors: number;
  readonly rxDrop: number;
  readonly txOctets: number;
  readonly txPackets: number;
  readonly txErrors: number;
  readonly txDrop: number;
}
export interface DiagnosticsDisk {
  readonly readBytes: number;
  readonly readRequests: number;
  readonly writeBytes: number;
  readonly writeRequests: number;
  readonly errorsCount: number;
}
/** Mirrors Nova's Diagnostics object (nova/objects/diagnostics.py); sizes in the units Nova uses (MB for memory). */
export interface InstanceDiagnostics {
  readonly state: PowerState;
  readonly hypervisor: string;
  readonly hypervisorOs: string;
  readonly uptimeSec: number | null;
  readonly numCpus: number;
  readonly cpuDetails: readonly DiagnosticsCpu[];
  readonly memoryMaxMb: number;
  readonly memoryUsedMb: number;
  readonly nicDetails: readonly DiagnosticsNic[];
  readonly diskDetails: readonly DiagnosticsDisk[];
  readonly configDrive: boolean;
}

/** Nova's libvirt driver caps console output the same way (MAX_CONSOLE_BYTES = 100 KiB). */
export const MAX_CONSOLE_BYTES = 100 * 1024;

export type LifecycleTransition = 'started' | 'stopped' | 'paused' | 'resumed' | 'suspended' | 'died';

/** An event the runtime reports about an instance, whoever caused it (Nova or someone behind Nova's back). */
export interface LifecycleEvent {
  readonly uuid: string;
  readonly transition: LifecycleTransition;
  readonly at: Date;
}

export type RebootType = 'SOFT' | 'HARD';

export interface SpawnOptions {
  /** Base64-decoded injected files ([path, contents]); a container driver may ignore them. */
  readonly injectedFiles?: ReadonlyArray<readonly [string, Buffer]>;
  readonly adminPassword?: string | null;
}

export interface SnapshotTarget {
  /** The Glance image id the snapshot is uploaded to. */
  readonly imageId: string;
  /**
   * Called with a readable stream of the snapshot (a `docker save` tarball for driver/docker) once it is ready;
   * resolves when the upload has finished.
   */
  upload(data: Readable): Promise<void>;
  /** Nova's update_task_state callback: `image_pending_upload`, then `image_uploading`. */
  updateTaskState(taskState: 'image_pending_upload' | 'image_uploading'): Promise<void>;
}

/** How one image cache manager pass treats unused images ([image_cache] in nova.conf). */
export interface ImageCacheOptions {
  /** remove_unused_base_images: false only reports what would be removed. */
  readonly removeUnused: boolean;
  /** remove_unused_original_minimum_age_seconds: how long an image must have been unused before it goes. */
  readonly minimumAgeSec: number;
  /** The pass's clock (default: now). Ages are measured against it. */
  readonly now?: Date;
}

/** Why a cached image stayed, in the pass's report. */
export type ImageCacheKeepReason = 'instance' | 'container' | 'in-flight' | 'too-young' | 'removal-disabled' | 'removal-failed';

/** What one manageImageCache pass did, by Glance image id (for logs and tests). */
export interface ImageCacheReport {
  readonly removed: readonly string[];
  readonly kept: ReadonlyArray<{ readonly imageId: string; readonly reason: ImageCacheKeepReason }>;
}

/** cacheImage's answer: 'cached' when it downloaded the image now (Nova's True), 'existing' when it had it. */
export type CacheImageResult = 'cached' | 'existing';

export interface ComputeDriver {
  readonly capabilities: DriverCapabilities;
  /** Short name for logs and hypervisor_type (`docker`, `fake`). */
  readonly type: string;

  /** Connects to the runtime (negotiating its API version) and checks it works. Throws RuntimeUnavailable. */
  init(): Promise<void>;
  /** Stops event streams and timers. The runtime and its instances keep running. */
  close(): Promise<void>;

  getAvailableResource(): Promise<HostResources>;
  /** Every instance this driver manages on this host (labelled containers for Docker), whatever its state. */
  listInstances(): Promise<InstanceInfo[]>;
  /** Throws InstanceNotFound when the runtime has no such instance. */
  getInfo(instance: InstanceRef): Promise<InstanceInfo>;

  /**
   * Creates and starts the instance; resolves when it runs. On failure it leaves nothing behind (no container)
   * and throws: InvalidImage for an unusable image, FlavorNotAllowed for a forbidden extra spec,
   * RuntimeUnavailable when the runtime is unreachable, DriverError otherwise.
   */
  spawn(instance: InstanceSpec, image: ImageSource, options?: SpawnOptions): Promise<void>;
  /**
   * Nova's finish_migration for a cross-host move: creates the instance from `image` (the source's committed
   * instance, carried through Glance) with this host's labels and the spec's (new) flavor, and starts it only when
   * `powerOn` (the instance was not STOPPED). Like spawn, it leaves nothing behind when it fails; the same errors.
   * The source half is powerOff + snapshot (the committed writable layer streamed to the transfer image).
   */
  finishMigration(instance: InstanceSpec, image: ImageSource, powerOn: boolean): Promise<void>;
  /** Removes the instance and everything it owns on the runtime. Idempotent: a missing instance is success. */
  destroy(instance: InstanceRef): Promise<void>;

  /** Stops the instance: graceful for timeoutSec seconds, then forced. timeoutSec 0 forces at once. */
  powerOff(instance: InstanceRef, timeoutSec: number): Promise<void>;
  powerOn(instance: InstanceRef): Promise<void>;
  /** SOFT: graceful restart (forced after timeoutSec); HARD: kill and start. Leaves it running. */
  reboot(instance: InstanceRef, type: RebootType, timeoutSec: number): Promise<void>;
  pause(instance: InstanceRef): Promise<void>;
  unpause(instance: InstanceRef): Promise<void>;
  /** Suspends the instance (power state SUSPENDED). For containers the processes are frozen in memory. */
  suspend(instance: InstanceRef): Promise<void>;
  resume(instance: InstanceRef): Promise<void>;

  snapshot(instance: InstanceRef, target: SnapshotTarget): Promise<void>;
  /** Applies a new flavor's limits to an existing instance (same host). */
  changeFlavor(instance: InstanceRef, flavor: FlavorSpec): Promise<void>;

  /**
   * The instance's console output (container stdout+stderr); the last tailLines lines when given. At most the last
   * MAX_CONSOLE_BYTES bytes, so a chatty guest cannot blow up an RPC reply.
   */
  getConsoleOutput(instance: InstanceRef, tailLines: number | null): Promise<string>;
  getDiagnostics(instance: InstanceRef): Promise<InstanceDiagnostics>;

  /** Subscribes to lifecycle events; returns the unsubscribe function. */
  onLifecycleEvent(listener: (event: LifecycleEvent) => void): () => void;

  /**
   * Nova's manage_image_cache: one pass over the driver's image cache. `inUse` holds the Glance image ids of every
   * instance Nova places on this host. An image stays while an instance in `inUse`, a container of the runtime or a
   * spawn or load in flight uses it; any other image goes once it has been unused for options.minimumAgeSec (a clock
   * that survives a restart), unless options.removeUnused is false. A removal that fails is reported, never thrown;
   * the pass throws only when it cannot look at the cache at all (RuntimeUnavailable). NotSupported without
   * capabilities.hasImageCache.
   */
  manageImageCache(inUse: ReadonlySet<string>, options: ImageCacheOptions): Promise<ImageCacheReport>;
  /**
   * Nova's cache_image: puts the image into the cache as a spawn would (the same download, checks and load) without
   * running it. Throws InvalidImage for an image this driver cannot run, NotSupported without hasImageCache.
   */
  cacheImage(image: ImageSource): Promise<CacheImageResult>;
}

// ---------------------------------------------------------------------------------------------------------------
// Typed errors. The manager maps them to Nova exception names in RPC replies and instance faults.

export class DriverError extends Error {
  override readonly name: string = 'DriverError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The runtime has no such instance. destroy() treats it as success. */
export class InstanceNotFound extends DriverError {
  override readonly name = 'InstanceNotFound';
  constructor(readonly uuid: string, options?: { cause?: unknown }) {
    super(`Instance ${uuid} could not be found.`, options);
  }
}

/** The driver does not implement this operation (Nova: NotImplementedError). */
export class NotSupported extends DriverError {
  override readonly name = 'NotSupported';
  constructor(readonly operation: string) {
    super(`The ${operation} operation is not supported by this driver.`);
  }
}

/** The image cannot be run by this driver (wrong container_format, not a docker tarball, bad hash…). */
export class InvalidImage extends DriverError {
  override readonly name = 'InvalidImage';
  constructor(readonly imageId: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`Image ${imageId} is unacceptable: ${reason}`, options);
  }
}

/** A flavor or image asks for something the operator has not allowed (e.g. an extra spec adding a capability). */
export class FlavorNotAllowed extends DriverError {
  override readonly name = 'FlavorNotAllowed';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The instance is in a state where the operation cannot run (e.g. pause of a stopped container). */
export class InstanceInvalidState extends DriverError {
  override readonly name = 'InstanceInvalidState';
  constructor(readonly uuid: string, readonly state: string, readonly operation: string) {
    super(`Cannot ${operation} instance ${uuid} while it is ${state}.`);
  }
}

/** The runtime cannot be reached or answers with server errors. */
export class RuntimeUnavailable extends DriverError {
  override readonly name = 'RuntimeUnavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
