// Nova's state vocabulary (nova/compute/vm_states.py, task_states.py, power_state.py) and the one table that says,
// for each simple instance operation, which task state it expects, where it ends, what it notifies and which
// driver capability it needs. The operations with their own flow (build, delete, reboot, snapshot, rebuild) keep
// their transitions in their functions in manager.ts, spelled with these constants.
import type { DriverCapabilities } from '../../driver/driver';

export const VmState = {
  ACTIVE: 'active',
  BUILDING: 'building',
  PAUSED: 'paused',
  SUSPENDED: 'suspended',
  STOPPED: 'stopped',
  RESCUED: 'rescued',
  RESIZED: 'resized',
  SOFT_DELETED: 'soft-delete',
  DELETED: 'deleted',
  ERROR: 'error',
  SHELVED: 'shelved',
  SHELVED_OFFLOADED: 'shelved_offloaded',
} as const;
export type VmState = (typeof VmState)[keyof typeof VmState];

export const TaskState = {
  SCHEDULING: 'scheduling',
  BLOCK_DEVICE_MAPPING: 'block_device_mapping',
  NETWORKING: 'networking',
  SPAWNING: 'spawning',
  IMAGE_SNAPSHOT: 'image_snapshot',
  IMAGE_SNAPSHOT_PENDING: 'image_snapshot_pending',
  IMAGE_PENDING_UPLOAD: 'image_pending_upload',
  IMAGE_UPLOADING: 'image_uploading',
  IMAGE_BACKUP: 'image_backup',
  UPDATING_PASSWORD: 'updating_password',
  RESIZE_PREP: 'resize_prep',
  RESIZE_MIGRATING: 'resize_migrating',
  RESIZE_MIGRATED: 'resize_migrated',
  RESIZE_FINISH: 'resize_finish',
  RESIZE_REVERTING: 'resize_reverting',
  RESIZE_CONFIRMING: 'resize_confirming',
  REBOOTING: 'rebooting',
  REBOOT_PENDING: 'reboot_pending',
  REBOOT_STARTED: 'reboot_started',
  REBOOTING_HARD: 'rebooting_hard',
  REBOOT_PENDING_HARD: 'reboot_pending_hard',
  REBOOT_STARTED_HARD: 'reboot_started_hard',
  PAUSING: 'pausing',
  UNPAUSING: 'unpausing',
  SUSPENDING: 'suspending',
  RESUMING: 'resuming',
  POWERING_OFF: 'powering-off',
  POWERING_ON: 'powering-on',
  RESCUING: 'rescuing',
  UNRESCUING: 'unrescuing',
  REBUILDING: 'rebuilding',
  REBUILD_BLOCK_DEVICE_MAPPING: 'rebuild_block_device_mapping',
  REBUILD_SPAWNING: 'rebuild_spawning',
  MIGRATING: 'migrating',
  DELETING: 'deleting',
  SOFT_DELETING: 'soft-deleting',
  RESTORING: 'restoring',
  SHELVING: 'shelving',
  SHELVING_IMAGE_PENDING_UPLOAD: 'shelving_image_pending_upload',
  SHELVING_IMAGE_UPLOADING: 'shelving_image_uploading',
  SHELVING_OFFLOADING: 'shelving_offloading',
  UNSHELVING: 'unshelving',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

export const SOFT_REBOOT_STATES: readonly string[] = [TaskState.REBOOTING, TaskState.REBOOT_PENDING, TaskState.REBOOT_STARTED];
export const HARD_REBOOT_STATES: readonly string[] = [
  TaskState.REBOOTING_HARD,
  TaskState.REBOOT_PENDING_HARD,
  TaskState.REBOOT_STARTED_HARD,
];
/** vm_states.ALLOW_SOFT_REBOOT / ALLOW_HARD_REBOOT */
export const ALLOW_SOFT_REBOOT: readonly string[] = [VmState.ACTIVE];
export const ALLOW_HARD_REBOOT: readonly string[] = [
  VmState.ACTIVE,
  VmState.STOPPED,
  VmState.PAUSED,
  VmState.SUSPENDED,
  VmState.ERROR,
];
/** Task states that mean a build is in flight (init_host errors these out). */
export const BUILD_TASK_STATES: readonly string[] = [
  TaskState.SCHEDULING,
  TaskState.BLOCK_DEVICE_MAPPING,
  TaskState.NETWORKING,
  TaskState.SPAWNING,
];
export const REBUILD_TASK_STATES: readonly string[] = [
  TaskState.REBUILDING,
  TaskState.REBUILD_BLOCK_DEVICE_MAPPING,
  TaskState.REBUILD_SPAWNING,
];
export const SNAPSHOT_TASK_STATES: readonly string[] = [
  TaskState.IMAGE_SNAPSHOT_PENDING,
  TaskState.IMAGE_PENDING_UPLOAD,
  TaskState.IMAGE_UPLOADING,
  TaskState.IMAGE_SNAPSHOT,
];

/** Notification action names (nova.objects.fields.NotificationAction) used by the legacy and versioned streams. */
export type NotificationAction =
  | 'create'
  | 'delete'
  | 'shutdown'
  | 'power_off'
  | 'power_on'
  | 'reboot'
  | 'pause'
  | 'unpause'
  | 'suspend'
  | 'resume'
  | 'snapshot'
  | 'rebuild'
  | 'resize_prep'
  | 'resize'
  | 'resize_finish'
  | 'resize_confirm'
  | 'resize_revert';

/** The driver call a simple operation makes. */
export type SimpleDriverCall = 'powerOff' | 'powerOn' | 'pause' | 'unpause' | 'suspend' | 'resume';

export interface SimpleOperation {
  /** The RPC method (and, prefixed with `compute_`, the instance action event name). */
  readonly method: string;
  readonly expectedTaskState: TaskState;
  /** The final vm_state; `fromOldVmState` takes system_metadata.old_vm_state (resume). */
  readonly finalVmState: VmState | 'fromOldVmState';
  readonly notification: NotificationAction;
  readonly driverCall: SimpleDriverCall;
  readonly capability: keyof DriverCapabilities | null;
  /** Nova's _error_out_instance_on_exception around the driver call (suspend/resume). */
  readonly errorOutOnException: boolean;
}

/** One row per simple operation: nova/compute/manager.py {stop,start,pause,unpause,suspend,resume}_instance. */
export const SIMPLE_OPERATIONS: Readonly<Record<string, SimpleOperation>> = {
  stop_instance: {
    method: 'stop_instance',
    expectedTaskState: TaskState.POWERING_OFF,
    finalVmState: VmState.STOPPED,
    notification: 'power_off',
    driverCall: 'powerOff',
    capability: null,
    errorOutOnException: false,
  },
  start_instance: {
    method: 'start_instance',
    expectedTaskState: TaskState.POWERING_ON,
    finalVmState: VmState.ACTIVE,
    notification: 'power_on',
    driverCall: 'powerOn',
    capability: null,
    errorOutOnException: false,
  },
  pause_instance: {
    method: 'pause_instance',
    expectedTaskState: TaskState.PAUSING,
    finalVmState: VmState.PAUSED,
    notification: 'pause',
    driverCall: 'pause',
    capability: 'supportsPause',
    errorOutOnException: false,
  },
  unpause_instance: {
    method: 'unpause_instance',
    expectedTaskState: TaskState.UNPAUSING,
    finalVmState: VmState.ACTIVE,
    notification: 'unpause',
    driverCall: 'unpause',
    capability: 'supportsPause',
    errorOutOnException: false,
  },
  suspend_instance: {
    method: 'suspend_instance',
    expectedTaskState: TaskState.SUSPENDING,
    finalVmState: VmState.SUSPENDED,
    notification: 'suspend',
    driverCall: 'suspend',
    capability: 'supportsSuspend',
    errorOutOnException: true,
  },
  resume_instance: {
    method: 'resume_instance',
    expectedTaskState: TaskState.RESUMING,
    finalVmState: 'fromOldVmState',
    notification: 'resume',
    driverCall: 'resume',
    capability: 'supportsSuspend',
    errorOutOnException: true,
  },
};
