// The request context on the wire: flattened into the message as `_context_<key>` (oslo amqp.pack_context /
// unpack_context), the admin context Nova makes for its own work, and the sanitised copy notifications carry.
// Protocol: §1.6 and §4.11.
import { randomUUID } from 'node:crypto';
import type { RequestContext } from './types';
import { contextTimestamp } from './utc-time';

const PREFIX = '_context_';

export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

export interface UnpackedMessage {
  readonly context: RequestContext;
  /** `_msg_id`, `_reply_q`, `_timeout` as they came (validated by the caller). */
  readonly msgId: unknown;
  readonly replyQ: unknown;
  readonly clientTimeout: unknown;
  /** Everything else (method, args, version, namespace, `_unique_id`, …). */
  readonly rest: Record<string, unknown>;
}

/** Splits `_context_*` and the call keys off a decoded message. A context without a request id gets a fresh one. */
export function unpackContext(message: Readonly<Record<string, unknown>>): UnpackedMessage {
  const context: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    if (key.startsWith(PREFIX)) context[key.slice(PREFIX.length)] = value;
    else if (key !== '_msg_id' && key !== '_reply_q' && key !== '_timeout') rest[key] = value;
  }
  // oslo.context generates a request id when the sender gave none.
  const requestId = context['request_id'];
  if (typeof requestId !== 'string' || requestId === '') context['request_id'] = newRequestId();
  return {
    context: context as RequestContext,
    msgId: message['_msg_id'],
    replyQ: message['_reply_q'],
    clientTimeout: message['_timeout'],
    rest,
  };
}

/** `_context_<key>` entries for every key of the context, in its order. */
export function packContext(context: Readonly<RequestContext>): Record<string, unknown> {
  const packed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) {
    if (value !== undefined) packed[PREFIX + key] = value;
  }
  return packed;
}

type Nullable = string | null;

function userIdentity(user: unknown, project: unknown, domain: unknown, userDomain: unknown, projectDomain: unknown): string {
  return [user, project, domain, userDomain, projectDomain].map((v) => (typeof v === 'string' && v !== '' ? v : '-')).join(' ');
}

interface NovaContextValues {
  userId: Nullable;
  projectId: Nullable;
  domainId: Nullable;
  userDomainId: Nullable;
  projectDomainId: Nullable;
  systemScope: unknown;
  isAdmin: boolean;
  requestId: string;
  globalRequestId: unknown;
  roles: unknown[];
  userName: unknown;
  projectName: unknown;
}

/** nova.context.RequestContext.to_dict() of a context built from these values (keys in Nova's order). */
function novaContextDict(v: NovaContextValues): RequestContext {
  return {
    user: v.userId,
    project_id: v.projectId,
    system_scope: v.systemScope,
    project: v.projectId,
    domain: v.domainId,
    user_domain: v.userDomainId,
    project_domain: v.projectDomainId,
    is_admin: v.isAdmin,
    read_only: false,
    show_deleted: false,
    auth_token: null,
    request_id: v.requestId,
    global_request_id: v.globalRequestId as string | null,
    resource_uuid: null,
    roles: v.roles as string[],
    user_identity: userIdentity(v.userId, v.projectId, v.domainId, v.userDomainId, v.projectDomainId),
    is_admin_project: true,
    user_id: v.userId,
    read_deleted: 'no',
    remote_address: null,
    timestamp: contextTimestamp(),
    quota_class: null,
    user_name: v.userName,
    service_catalog: [],
    project_name: v.projectName,
  };
}

/** nova.context.get_admin_context(): what Nova sends for its own periodic and start-up work. */
export function adminContext(): RequestContext {
  return novaContextDict({
    userId: null,
    projectId: null,
    domainId: null,
    userDomainId: null,
    projectDomainId: null,
    systemScope: null,
    isAdmin: true,
    requestId: newRequestId(),
    globalRequestId: null,
    roles: [],
    userName: null,
    projectName: null,
  });
}

const str = (value: unknown): Nullable => (typeof value === 'string' ? value : null);

/**
 * The context a notification carries: oslo's notifier keeps only the safe keys (ids, names, is_admin, request ids,
 * roles, system_scope) and rebuilds a Nova context from them, so the token, catalog and address are gone and the
 * timestamp is new.
 */
export function notificationContext(context: Readonly<RequestContext>): RequestContext {
  return novaContextDict({
    userId: str(context['user_id']),
    projectId: str(context['project_id']),
    domainId: str(context['domain']),
    userDomainId: str(context['user_domain']),
    projectDomainId: str(context['project_domain']),
    systemScope: context['system_scope'] ?? null,
    isAdmin: context['is_admin'] === true,
    requestId: typeof context.request_id === 'string' && context.request_id !== '' ? context.request_id : newRequestId(),
    globalRequestId: context['global_request_id'] ?? null,
    roles: Array.isArray(context['roles']) ? [...(context['roles'] as unknown[])] : [],
    userName: context['user_name'] ?? null,
    projectName: context['project_name'] ?? null,
  });
}
