// Replays fake-driver-lifecycle.jsonl from the compute's side: for every legacy instance notification the Python
// nova-compute sent, the Instance it held at that moment (the RPC argument, then each Instance.save/destroy it sent
// with the conductor's updates applied), the RPC's context, the versioned notification that followed, and the
// conductor's answers to its lazy-loads (Instance.get_by_uuid with expected_attrs) in the same RPC.
import { NovaObject, type Instance } from '../../../src/objects';
import { contextOf, publishedMessages } from '../objects/capture-fixtures';

export interface NotificationPoint {
  readonly rpcMethod: string;
  readonly rpcArgs: Readonly<Record<string, unknown>>;
  readonly context: { request_id: string; [key: string]: unknown };
  /** The instance as nova-compute held it when it sent the legacy notification (before its lazy-loads). */
  readonly instance: Instance;
  readonly legacy: Record<string, unknown>;
  readonly versioned: Record<string, unknown>;
  /** Fields the conductor returned to Instance.get_by_uuid(expected_attrs=[…]) during this RPC. */
  readonly lazyLoaded: ReadonlyMap<string, NovaObject>;
}

const HOST_QUEUE = 'compute.fake-1';

/**
 * Changes the Python compute made to its Instance before a notification without saving them first, so the
 * capture shows them only in the next Instance.save: reboot_instance sets REBOOT_PENDING(_HARD) (manager.py
 * reboot_instance, before reboot.start).
 */
const UNSAVED_CHANGES: Readonly<Record<string, (instance: Instance, rpcArgs: Record<string, unknown>) => void>> = {
  'reboot_instance compute.instance.reboot.start': (instance, rpcArgs) =>
    instance.set('task_state', rpcArgs['reboot_type'] === 'SOFT' ? 'reboot_pending' : 'reboot_pending_hard'),
};

export function notificationPoints(): NotificationPoint[] {
  const messages = publishedMessages();
  const replies = new Map<string, Record<string, unknown>>();
  for (const m of messages) {
    const id = m.message['_msg_id'];
    if (m.exchange === '' && typeof id === 'string') replies.set(id, m.message);
  }
  const points: Array<Omit<NotificationPoint, 'versioned'> & { versioned?: Record<string, unknown> }> = [];
  let rpc:
    | { method: string; args: Record<string, unknown>; context: NotificationPoint['context']; lazy: Map<string, NovaObject> }
    | undefined;
  let instance: Instance | undefined;
  for (const { routingKey, message } of messages) {
    const args = message['args'] as Record<string, unknown> | undefined;
    if (routingKey === HOST_QUEUE && args?.['instance'] !== undefined) {
      rpc = { method: message['method'] as string, args, context: contextOf(message), lazy: new Map() };
      instance = NovaObject.fromPrimitive(args['instance']) as Instance;
      continue;
    }
    if (!rpc || !instance) continue;
    if (routingKey === 'conductor' && args) {
      const reply = replies.get(message['_msg_id'] as string);
      const objinst = args['objinst'] as Record<string, unknown> | undefined;
      if (objinst?.['nova_object.name'] === 'Instance' && reply) {
        instance = NovaObject.fromPrimitive(objinst) as Instance;
        instance.applyUpdates((reply['result'] as unknown[])[0]);
      } else if (args['objname'] === 'Instance' && args['objmethod'] === 'get_by_uuid' && reply) {
        const loaded = NovaObject.fromPrimitive(reply['result']);
        const kwargs = args['kwargs'] as { expected_attrs?: string[] };
        for (const field of kwargs.expected_attrs ?? []) rpc.lazy.set(field, loaded.get(field) as NovaObject);
      }
      continue;
    }
    const eventType = message['event_type'];
    if (typeof eventType !== 'string') continue;
    if (eventType.startsWith('compute.instance.')) {
      UNSAVED_CHANGES[`${rpc.method} ${eventType}`]?.(instance, rpc.args);
      points.push({
        rpcMethod: rpc.method,
        rpcArgs: rpc.args,
        context: rpc.context,
        instance: instance.clone(),
        legacy: message,
        lazyLoaded: rpc.lazy,
      });
    } else if (eventType.startsWith('instance.')) {
      const point = points[points.length - 1];
      if (point && point.versioned === undefined) point.versioned = message;
    }
  }
  return points.map((p) => {
    if (!p.versioned) throw new Error(`no versioned notification after ${String(p.legacy['event_type'])}`);
    return p as NotificationPoint;
  });
}
