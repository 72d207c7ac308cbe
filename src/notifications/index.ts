// src/notifications: Nova's legacy (compute.instance.*) and versioned (instance.*) instance notifications and
// wrap_exception's error notifications, built from Instance objects exactly as nova-compute builds them.
export type { InstanceNotificationExtras, InstanceNotifier, NotificationPhase } from './types';
export { NO_NOTIFICATIONS } from './types';
export {
  createInstanceNotifier,
  type InstanceLazyField,
  type InstanceNotifierOptions,
  type LoadInstanceFields,
  type NotificationFormat,
  type NotificationTransport,
} from './instance-notifier';
