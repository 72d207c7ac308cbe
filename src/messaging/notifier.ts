// Notifier: oslo.messaging's notifier with the drivers Nova deployments use. `messagingv2` publishes the 2.0 envelope,
// `messaging` the bare dict, to the control exchange with routing key `<topic>.<priority>`, after declaring a queue of
// that name so notifications wait for a consumer; `log` writes them to our log; `noop` or no driver sends nothing.
// A notification that cannot be sent is logged, never thrown at the operation that emitted it. Protocol: §4.11.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log';
import type { MessagingSession } from './amqp-session';
import { notificationContext, packContext } from './context';
import { encodeBare, encodeEnvelope, messageProperties } from './envelope';
import { controlExchange, notificationQueue, resolveQueueFlags } from './topology';
import type { QueueFlags, RequestContext } from './types';
import { pythonDatetimeStr } from './utc-time';

export const NOTIFICATION_PRIORITIES = ['audit', 'debug', 'info', 'warn', 'warning', 'error', 'critical', 'sample'] as const;
export type NotificationPriority = (typeof NOTIFICATION_PRIORITIES)[number];

const DRIVERS = ['messagingv2', 'messaging', 'noop', 'log'] as const;
export type NotificationDriver = (typeof DRIVERS)[number];

export interface NotifierOptions {
  /** Needed when a messaging driver is configured. */
  readonly session: MessagingSession | null;
  readonly logger: Logger;
  /** `[oslo_messaging_notifications] driver` (multi-valued); empty = notifications disabled. */
  readonly driver: string | readonly string[];
  /** `[oslo_messaging_notifications] topics` (or Nova's versioned_notifications_topics); default `notifications`. */
  readonly topics?: readonly string[];
  /** e.g. `compute.<host>` (legacy) or `nova-compute:<host>` (versioned). */
  readonly publisherId: string;
  /** `[DEFAULT] control_exchange`; default `nova`. */
  readonly exchange?: string;
  readonly queueFlags?: Partial<QueueFlags>;
  /** `[oslo_messaging_notifications] retry`: connection losses to ride out per message; default -1 = unlimited. */
  readonly retry?: number;
}

/** The notification as oslo builds it (before `_unique_id` and the context are added). */
export interface NotificationMessage {
  readonly message_id: string;
  readonly publisher_id: string;
  readonly event_type: string;
  readonly priority: string;
  readonly payload: unknown;
  readonly timestamp: string;
}

export function buildNotification(
  publisherId: string,
  eventType: string,
  payload: unknown,
  priority: NotificationPriority,
  timestamp: string = pythonDatetimeStr(),
): NotificationMessage {
  return {
    message_id: randomUUID(),
    publisher_id: publisherId,
    event_type: eventType,
    priority: priority.toUpperCase(),
    payload,
    timestamp,
  };
}

/** The message on the wire: the notification, `_unique_id`, then the sanitised context as `_context_*`. */
export function notificationWireMessage(context: Readonly<RequestContext>, notification: NotificationMessage): Record<string, unknown> {
  return { ...notification, _unique_id: randomUUID().replace(/-/g, ''), ...packContext(notificationContext(context)) };
}

function parseDrivers(driver: string | readonly string[]): NotificationDriver[] {
  const names = (typeof driver === 'string' ? driver.split(',') : [...driver]).map((d) => d.trim()).filter((d) => d !== '');
  for (const name of names) {
    if (!(DRIVERS as readonly string[]).includes(name)) {
      throw new RangeError(`[oslo_messaging_notifications] driver '${name}' is not one of ${DRIVERS.join(', ')}`);
    }
  }
  return names as NotificationDriver[];
}

interface Shared {
  readonly session: MessagingSession | null;
  readonly log: Logger;
  readonly drivers: readonly NotificationDriver[];
  readonly topics: readonly string[];
  readonly exchangeName: string;
  readonly flags: QueueFlags;
  readonly retry: number | undefined;
}

export class Notifier {
  readonly publisherId: string;
  private readonly options: NotifierOptions;
  private readonly shared: Shared;

  constructor(options: NotifierOptions) {
    const drivers = parseDrivers(options.driver);
    if (drivers.some((d) => d === 'messaging' || d === 'messagingv2') && options.session === null) {
      throw new RangeError('a messaging notification driver needs a messaging session');
    }
    this.options = options;
    this.publisherId = options.publisherId;
    this.shared = {
      session: options.session,
      log: options.logger.child({ component: 'notifier', publisher_id: options.publisherId }),
      drivers,
      topics: options.topics && options.topics.length > 0 ? [...options.topics] : ['notifications'],
      exchangeName: options.exchange ?? 'nova',
      flags: resolveQueueFlags(options.queueFlags),
      retry: options.retry === undefined || options.retry < 0 ? undefined : options.retry,
    };
  }

  /** False when no driver sends anything (the default configuration). */
  get enabled(): boolean {
    return this.shared.drivers.some((d) => d !== 'noop');
  }

  /** The same notifier with another publisher id (oslo Notifier.prepare). */
  prepare(publisherId: string): Notifier {
    return new Notifier({ ...this.options, publisherId });
  }

  audit(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'audit');
  }
  debug(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'debug');
  }
  info(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'info');
  }
  warn(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'warn');
  }
  warning(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'warning');
  }
  error(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'error');
  }
  critical(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'critical');
  }
  sample(context: RequestContext, eventType: string, payload: unknown): Promise<void> {
    return this.notify(context, eventType, payload, 'sample');
  }

  /** Sends through every configured driver and topic. Never rejects: a failure is logged with the event type. */
  async notify(context: RequestContext, eventType: string, payload: unknown, priority: NotificationPriority): Promise<void> {
    if (!this.enabled) return;
    const notification = buildNotification(this.publisherId, eventType, payload, priority);
    await Promise.all(this.shared.drivers.map((driver) => this.send(driver, context, notification, priority)));
  }

  private async send(
    driver: NotificationDriver,
    context: RequestContext,
    notification: NotificationMessage,
    priority: NotificationPriority,
  ): Promise<void> {
    const { log } = this.shared;
    if (driver === 'noop') return;
    if (driver === 'log') {
      this.logNotification(context, notification, priority);
      return;
    }
    await Promise.all(
      this.shared.topics.map(async (topic) => {
        const routingKey = `${topic}.${priority}`;
        try {
          await this.publish(driver, routingKey, context, notification);
        } catch (err) {
          log.error(
            { request_id: context.request_id, event_type: notification.event_type, topic: routingKey, err: String(err) },
            `Could not send notification to ${routingKey}`,
          );
        }
      }),
    );
  }

  private async publish(
    driver: 'messaging' | 'messagingv2',
    routingKey: string,
    context: RequestContext,
    notification: NotificationMessage,
  ): Promise<void> {
    const { session, exchangeName, flags, retry } = this.shared;
    if (!session) throw new Error('no messaging session');
    const exchange = controlExchange(exchangeName, flags);
    const message = notificationWireMessage(context, notification);
    await session.publish({
      exchange,
      routingKey,
      queue: notificationQueue(routingKey, exchange, flags),
      body: driver === 'messagingv2' ? encodeEnvelope(message) : encodeBare(message),
      properties: messageProperties(),
      ...(retry === undefined ? {} : { retry }),
    });
  }

  // oslo's LogDriver logs at the priority's level; audit and sample have no log level and are not logged.
  private logNotification(context: RequestContext, notification: NotificationMessage, priority: NotificationPriority): void {
    const fields = { request_id: context.request_id, notification };
    const log = this.shared.log;
    const text = `notification ${notification.event_type}`;
    switch (priority) {
      case 'debug':
        log.debug(fields, text);
        break;
      case 'info':
        log.info(fields, text);
        break;
      case 'warn':
      case 'warning':
        log.warn(fields, text);
        break;
      case 'error':
        log.error(fields, text);
        break;
      case 'critical':
        log.fatal(fields, text);
        break;
      case 'audit':
      case 'sample':
        break;
    }
  }
}
