// What nova/compute/manager.py (Zed) sends for each instance action and phase, as one table: the versioned payload
// class, whether the manager hands the BDMs to the versioned payload (block_devices [] rather than null), whether it
// hands network_info to the legacy payload (fixed_ips present), and the legacy extra_usage_info.
import type { NotificationAction } from '../compute/states';
import type { InstanceNotificationExtras, NotificationPhase } from './types';

/** The versioned payload classes of instance actions (nova/notifications/objects/instance.py). */
export type InstancePayloadClass =
  | 'InstanceActionPayload'
  | 'InstanceCreatePayload'
  | 'InstanceActionRebuildPayload'
  | 'InstanceActionSnapshotPayload'
  | 'InstanceActionResizePrepPayload';

export interface InstanceActionSpec {
  readonly payload: InstancePayloadClass;
  /** Phases whose versioned notification gets `bdms=` from the manager. */
  readonly bdmsPassed: readonly NotificationPhase[];
  /** Phases whose legacy notification gets `network_info=` (and so a `fixed_ips` key). */
  readonly legacyFixedIps: readonly NotificationPhase[];
  /** Phases Nova's LegacyValidatingNotifier knows as `compute.instance.<action>.<phase>`. */
  readonly legacyPhases: readonly NotificationPhase[];
  /** The legacy event's action when it is not the versioned one (`resize.prep` for resize_prep). */
  readonly legacyName?: string;
  /** The legacy extra_usage_info of a phase, from the caller's extras. */
  readonly legacyExtras?: (phase: NotificationPhase, extras: InstanceNotificationExtras) => Record<string, unknown>;
}

const ALL: readonly NotificationPhase[] = ['start', 'end', 'error'];
const START_END: readonly NotificationPhase[] = ['start', 'end'];
const NONE: readonly NotificationPhase[] = [];

/** Nova's plain start/end actions whose manager passes no BDMs (stop, start, pause, unpause, suspend). */
const PLAIN: InstanceActionSpec = {
  payload: 'InstanceActionPayload',
  bdmsPassed: NONE,
  legacyFixedIps: NONE,
  legacyPhases: START_END,
};

/** Plain start/end actions whose manager loads the BDMs first (delete, shutdown, resume). */
const WITH_BDMS: InstanceActionSpec = { ...PLAIN, bdmsPassed: ALL };

export const INSTANCE_ACTIONS: Readonly<Record<NotificationAction, InstanceActionSpec>> = {
  // _build_and_run_instance: create.start carries image.get('name'), create.end message _('Success').
  create: {
    payload: 'InstanceCreatePayload',
    bdmsPassed: ALL,
    legacyFixedIps: ['end'],
    legacyPhases: ALL,
    legacyExtras: (phase, extras) => {
      if (phase === 'start') return { image_name: extras.imageName ?? null };
      if (phase === 'end') return { message: extras.message ?? 'Success' };
      return {};
    },
  },
  delete: WITH_BDMS,
  shutdown: WITH_BDMS,
  power_off: PLAIN,
  power_on: PLAIN,
  reboot: { ...WITH_BDMS, legacyPhases: ALL },
  pause: PLAIN,
  unpause: PLAIN,
  suspend: PLAIN,
  resume: WITH_BDMS,
  // notify_about_instance_snapshot passes no BDMs.
  snapshot: { ...PLAIN, payload: 'InstanceActionSnapshotPayload' },
  // _do_rebuild_instance: image_name of the new image on start and end; end also gets network_info.
  rebuild: {
    payload: 'InstanceActionRebuildPayload',
    bdmsPassed: ALL,
    legacyFixedIps: ['end'],
    legacyPhases: ALL,
    legacyExtras: (phase, extras) => (phase === 'error' ? {} : { image_name: extras.imageName ?? '' }),
  },
  // _send_prep_resize_notifications: notify_about_resize_prep_instance (no BDMs); the legacy end names the flavor.
  resize_prep: {
    payload: 'InstanceActionResizePrepPayload',
    bdmsPassed: NONE,
    legacyFixedIps: NONE,
    legacyPhases: START_END,
    legacyName: 'resize.prep',
    legacyExtras: (phase, extras) =>
      phase === 'end' ? { new_instance_type: extras.newFlavor?.get('name') ?? null, new_instance_type_id: extras.newFlavor?.get('id') ?? null } : {},
  },
  // _send_resize_instance_notifications (start/end, with BDMs and network_info); resize.error has neither.
  resize: { payload: 'InstanceActionPayload', bdmsPassed: START_END, legacyFixedIps: START_END, legacyPhases: ALL },
  // _send_finish_resize_notifications: the legacy event is finish_resize.*.
  resize_finish: { payload: 'InstanceActionPayload', bdmsPassed: START_END, legacyFixedIps: START_END, legacyPhases: START_END, legacyName: 'finish_resize' },
  // _confirm_resize: only the legacy end gets network_info; no BDMs.
  resize_confirm: { ...PLAIN, legacyFixedIps: ['end'], legacyName: 'resize.confirm' },
  // _finish_revert_resize: BDMs on both phases, no network_info.
  resize_revert: { ...WITH_BDMS, legacyName: 'resize.revert' },
};
