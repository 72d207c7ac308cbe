// What the compute manager asks of notifications. The implementation decides, from [notifications] and
// [oslo_messaging_notifications], whether to send the legacy (compute.instance.*) stream, the versioned
// (instance.*) stream, both or none. Notifications are informational: these calls never throw.
import type { RemoteFailure } from '../messaging/failure';
import type { RequestContext } from '../messaging/types';
import type { Flavor, Instance } from '../objects';
import type { NotificationAction } from '../compute/states';

export type NotificationPhase = 'start' | 'end' | 'error';

export interface InstanceNotificationExtras {
  /** The exception of an `.error` phase (legacy payload `exception`/`message`/`code`, versioned `fault`). */
  readonly fault?: RemoteFailure;
  /** Legacy create.start carries the image name (rebuild.start/end: the new image's name). */
  readonly imageName?: string;
  /** Legacy create.end carries message "Success". */
  readonly message?: string;
  /** The snapshot's image id: versioned snapshot.* (InstanceActionSnapshotPayload.snapshot_image_id) needs it. */
  readonly snapshotImageId?: string;
  /** The flavor a resize goes to: versioned resize_prep.* (new_flavor), legacy resize.prep.end (new_instance_type*). */
  readonly newFlavor?: Flavor;
}

export interface InstanceNotifier {
  instanceAction(
    context: RequestContext,
    instance: Instance,
    action: NotificationAction,
    phase: NotificationPhase,
    extras?: InstanceNotificationExtras,
  ): Promise<void>;
  /** nova.exception_wrapper.wrap_exception: legacy `<method>` at ERROR and versioned `compute.exception`. */
  exception(context: RequestContext, method: string, error: RemoteFailure, args: Record<string, unknown>): Promise<void>;
}

/** A notifier that sends nothing (notifications disabled, and unit tests). */
export const NO_NOTIFICATIONS: InstanceNotifier = {
  instanceAction: async () => undefined,
  exception: async () => undefined,
};
