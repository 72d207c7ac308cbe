// The InstanceNotifier Nova's compute manager would have: nova.rpc's two notifiers (legacy `compute.<host>` on
// [oslo_messaging_notifications] topics, versioned `nova-compute:<host>` on [notifications]
// versioned_notifications_topics), switched by notification_format exactly as nova.rpc.init and
// if_notifications_enabled do, feeding compute.utils.notify_about_instance_usage / notify_about_instance_action /
// exception_wrapper. Notifications are informational: nothing here throws at the operation that emits them.
import type { Logger } from '../log';
import { Notifier, type NotifierOptions } from '../messaging/notifier';
import type { RemoteFailure } from '../messaging/failure';
import type { RequestContext } from '../messaging/types';
import type { NotificationAction } from '../compute/states';
import { NovaObject, type Instance, type InstanceFields } from '../objects';
import { wrapExceptionArgs } from './call-args';
import { exceptionPayload, exceptionRepr, exceptionToDict } from './exception-payload';
import { INSTANCE_ACTIONS, type InstanceActionSpec } from './instance-actions';
import { infoFromInstance } from './legacy-payload';
import { instanceNetworkInfo } from './network-info';
import { pyStr } from './python-format';
import type { InstanceNotificationExtras, InstanceNotifier, NotificationPhase } from './types';
import { instanceActionPayload } from './versioned-payload';

/** [notifications] notification_format */
export type NotificationFormat = 'unversioned' | 'versioned' | 'both';

/** Instance fields a payload reads that the RPC instance may lack (Python lazy-loads them). */
export type InstanceLazyField = keyof InstanceFields &
  ('flavor' | 'info_cache' | 'metadata' | 'system_metadata' | 'keypairs' | 'tags' | 'trusted_certs');

/**
 * Loads missing fields onto the instance, as Instance.obj_load_attr does (Instance.get_by_uuid with
 * expected_attrs through the conductor), setting them without marking them changed.
 */
export type LoadInstanceFields = (context: RequestContext, instance: Instance, fields: readonly InstanceLazyField[]) => Promise<void>;

/** The notification transport both streams share (nova.rpc's NOTIFICATION_TRANSPORT and the driver list). */
export type NotificationTransport = Pick<NotifierOptions, 'session' | 'driver' | 'exchange' | 'queueFlags' | 'retry'>;

export interface InstanceNotifierOptions {
  /** [DEFAULT] host */
  readonly host: string;
  readonly notificationFormat: NotificationFormat;
  /** Session and [oslo_messaging_notifications] driver (empty or only noop: no notifications at all). */
  readonly transport: NotificationTransport;
  /** [oslo_messaging_notifications] topics: the legacy stream. */
  readonly legacyTopics: readonly string[];
  /** [notifications] versioned_notifications_topics */
  readonly versionedTopics: readonly string[];
  /**
   * The Glance endpoint for the legacy `image_ref_url` (`<endpoint>/images/<image_ref>`, Nova's
   * glance.API().generate_image_url); without one, the bare image ref as Nova falls back to.
   */
  readonly imageApiServer?: (context: RequestContext) => string | undefined | Promise<string | undefined>;
  /** Instance.name (the compute manager's `[DEFAULT] instance_name_template` rendering). */
  readonly instanceName: (instance: Instance) => string;
  readonly loadFields: LoadInstanceFields;
  readonly logger: Logger;
}

type Stream = 'legacy' | 'versioned';

/**
 * Builds the instance notifier. Throws RangeError only for a transport the Notifier rejects (an unknown driver, or
 * a messaging driver without a session), i.e. at start-up.
 */
export function createInstanceNotifier(options: InstanceNotifierOptions): InstanceNotifier {
  return new NovaInstanceNotifier(options);
}

class NovaInstanceNotifier implements InstanceNotifier {
  private readonly options: InstanceNotifierOptions;
  private readonly log: Logger;
  private readonly enabled: Readonly<Record<Stream, boolean>>;

  constructor(options: InstanceNotifierOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'notifications' });
    const format = options.notificationFormat;
    // nova.rpc.init puts the stream a format leaves out on the noop driver; an empty or noop driver list mutes both.
    this.enabled = {
      legacy: format !== 'versioned' && this.notifier('legacy', null).enabled,
      versioned: format !== 'unversioned' && this.notifier('versioned', null).enabled,
    };
  }

  async instanceAction(
    context: RequestContext,
    instance: Instance,
    action: NotificationAction,
    phase: NotificationPhase,
    extras: InstanceNotificationExtras = {},
  ): Promise<void> {
    if (!this.enabled.legacy && !this.enabled.versioned) return;
    const log = this.log.child({
      request_id: context.request_id,
      instance_uuid: instanceUuidOf(instance),
      event_type: `instance.${action}.${phase}`,
    });
    await attempt(log, 'could not send the instance notification', async () => {
      const spec: InstanceActionSpec | undefined = INSTANCE_ACTIONS[action];
      if (spec === undefined) {
        log.error({ action }, 'no instance notification is defined for this action; none sent');
        return;
      }
      await this.lazyLoad(context, instance, this.fieldsNeeded(spec, phase), log);
      if (!instance.has('flavor')) {
        log.error('the instance has no flavor and it could not be loaded; notification not sent');
        return;
      }
      // One stream's failure does not cost the other its notification.
      if (this.enabled.legacy) {
        await attempt(log, 'could not send the legacy instance notification', () =>
          this.sendLegacy(context, instance, action, phase, spec, extras, log),
        );
      }
      if (this.enabled.versioned) {
        await attempt(log, 'could not send the versioned instance notification', () =>
          this.sendVersioned(context, instance, action, phase, spec, extras, log),
        );
      }
    });
  }

  async exception(context: RequestContext, method: string, error: RemoteFailure, args: Record<string, unknown>): Promise<void> {
    if (!this.enabled.legacy && !this.enabled.versioned) return;
    const uuid = instanceUuidOf(args['instance']);
    const log = this.log.child({ request_id: context.request_id, instance_uuid: uuid, event_type: method });
    if (this.enabled.legacy) {
      await attempt(log, 'could not send the legacy exception notification', () =>
        this.notifier('legacy', uuid).error(context, method, { exception: exceptionRepr(error), args: wrapExceptionArgs(args) }),
      );
    }
    if (this.enabled.versioned) {
      await attempt(log, 'could not send the versioned exception notification', () =>
        this.notifier('versioned', uuid).error(context, 'compute.exception', exceptionPayload(error)),
      );
    }
  }

  /** notify_about_instance_usage */
  private async sendLegacy(
    context: RequestContext,
    instance: Instance,
    action: NotificationAction,
    phase: NotificationPhase,
    spec: InstanceActionSpec,
    extras: InstanceNotificationExtras,
    log: Logger,
  ): Promise<void> {
    const eventType = `compute.instance.${spec.legacyName ?? action}.${phase}`;
    if (!spec.legacyPhases.includes(phase)) {
      // LegacyValidatingNotifier warns and still sends.
      log.warn({ event_type: eventType }, `${eventType} is not a versioned notification and not whitelisted`);
    }
    const payload = infoFromInstance({
      instance,
      imageRefUrl: await this.imageRefUrl(context, instance, log),
      ...(spec.legacyFixedIps.includes(phase) ? { networkInfo: instanceNetworkInfo(instance) } : {}),
      extra: { ...spec.legacyExtras?.(phase, extras), ...(extras.fault ? exceptionToDict(extras.fault) : {}) },
    });
    const notifier = this.notifier('legacy', instanceUuidOf(instance));
    await (phase === 'error' ? notifier.error(context, eventType, payload) : notifier.info(context, eventType, payload));
  }

  /** notify_about_instance_action / _create / _rebuild / _snapshot */
  private async sendVersioned(
    context: RequestContext,
    instance: Instance,
    action: NotificationAction,
    phase: NotificationPhase,
    spec: InstanceActionSpec,
    extras: InstanceNotificationExtras,
    log: Logger,
  ): Promise<void> {
    const eventType = `instance.${action}.${phase}`;
    if (spec.payload === 'InstanceActionSnapshotPayload' && extras.snapshotImageId === undefined) {
      log.error({ event_type: eventType }, 'snapshot notification without the snapshot image id; versioned notification not sent');
      return;
    }
    const payload = instanceActionPayload({
      payloadClass: spec.payload,
      context,
      instance,
      fault: extras.fault,
      blockDevices: spec.bdmsPassed.includes(phase) ? [] : null,
      instanceName: spec.payload === 'InstanceCreatePayload' ? this.options.instanceName(instance) : '',
      snapshotImageId: extras.snapshotImageId,
      newFlavor: extras.newFlavor,
    });
    const notifier = this.notifier('versioned', instanceUuidOf(instance));
    // _get_fault_and_priority_from_exception: ERROR exactly when there is an exception.
    await (extras.fault ? notifier.error(context, eventType, payload) : notifier.info(context, eventType, payload));
  }

  private fieldsNeeded(spec: InstanceActionSpec, phase: NotificationPhase): InstanceLazyField[] {
    const fields = new Set<InstanceLazyField>(['flavor', 'system_metadata', 'metadata']);
    if (this.enabled.legacy && spec.legacyFixedIps.includes(phase)) fields.add('info_cache');
    if (this.enabled.versioned) {
      fields.add('info_cache');
      if (spec.payload === 'InstanceCreatePayload') for (const f of ['keypairs', 'tags', 'trusted_certs'] as const) fields.add(f);
      if (spec.payload === 'InstanceActionRebuildPayload') fields.add('trusted_certs');
    }
    return [...fields];
  }

  private async lazyLoad(context: RequestContext, instance: Instance, fields: readonly InstanceLazyField[], log: Logger): Promise<void> {
    const missing = fields.filter((f) => !instance.has(f));
    if (missing.length === 0) return;
    try {
      await this.options.loadFields(context, instance, missing);
    } catch (err) {
      log.warn({ err, fields: missing }, 'could not load instance fields for the notification');
    }
  }

  private async imageRefUrl(context: RequestContext, instance: Instance, log: Logger): Promise<unknown> {
    const imageRef = instance.get('image_ref') ?? null;
    let server: string | undefined;
    try {
      server = await this.options.imageApiServer?.(context);
    } catch (err) {
      log.warn({ err }, 'no image endpoint for image_ref_url; using the image ref');
    }
    return server === undefined ? imageRef : `${server}/images/${pyStr(imageRef)}`;
  }

  /** A Notifier per message, so that a publish failure it logs names the instance. */
  private notifier(stream: Stream, instanceUuid: string | null): Notifier {
    const { host, transport } = this.options;
    return new Notifier({
      ...transport,
      topics: stream === 'legacy' ? this.options.legacyTopics : this.options.versionedTopics,
      publisherId: stream === 'legacy' ? `compute.${host}` : `nova-compute:${host}`,
      logger: instanceUuid === null ? this.log : this.log.child({ instance_uuid: instanceUuid }),
    });
  }
}

/** Runs one notification step; whatever it throws is logged, never passed on. */
async function attempt(log: Logger, message: string, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (err) {
    log.error({ err }, message);
  }
}

/** The uuid of an Instance, or the uuid string RPC arguments carry. */
function instanceUuidOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  const uuid = value instanceof NovaObject ? value.get('uuid') : undefined;
  return typeof uuid === 'string' ? uuid : null;
}
