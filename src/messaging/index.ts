// src/messaging: oslo.messaging's rabbit driver over amqplib (RPC server, RPC client, notifier). Pure transport.
export type {
  CallOptions,
  IncomingCall,
  QueueFlags,
  RequestContext,
  RpcCaller,
  RpcEndpoint,
  RpcHandler,
  Target,
} from './types';
export type { FailurePayload } from './failure';
export { RemoteFailure, toRemoteFailure } from './failure';
export {
  EnvelopeError,
  InvalidTarget,
  MessagingTimeout,
  NoRouteError,
  PublishAbortedError,
  PublishNackedError,
  SessionClosedError,
  TopologyMismatchError,
  TransportUrlError,
} from './errors';
export type { TransportHost, TransportUrl } from './transport-url';
export { describeHost, parseTransportUrl, redactTransportUrl } from './transport-url';
export type {
  MessagingSessionOptions,
  PublishRequest,
  SessionEvents,
  SessionState,
  SessionTlsOptions,
  SetupContext,
  SetupFn,
  SetupRegistration,
} from './amqp-session';
export { MessagingSession } from './amqp-session';
export type { ExchangeSpec, QueueSpec } from './topology';
export { DEFAULT_QUEUE_FLAGS, resolveQueueFlags } from './topology';
export { ENVELOPE_VERSION, decodeBody, decodeEnvelope, encodeEnvelope, messageProperties } from './envelope';
export { adminContext, newRequestId, notificationContext, packContext, unpackContext } from './context';
export { noSuchMethod, unsupportedVersion, versionIsCompatible } from './dispatcher';
export type { DrainReport, InFlightMessage, RpcServerOptions, RpcServerState } from './rpc-server';
export { DEFAULT_MAX_MESSAGE_BYTES, RpcServer } from './rpc-server';
export type { RpcClientOptions } from './rpc-client';
export { RpcClient } from './rpc-client';
export type { NotificationDriver, NotificationMessage, NotificationPriority, NotifierOptions } from './notifier';
export { NOTIFICATION_PRIORITIES, Notifier, buildNotification } from './notifier';
