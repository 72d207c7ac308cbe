// A versioned notification payload on the wire: an ordinary nova_object primitive whose changes were reset before
// emit (NotificationBase.emit), so it never has `nova_object.changes`. Payload classes are not in src/objects'
// schema (Nova registers them apart from the persistent objects), so each builder lists its fields in Python's
// order: the class's own fields first, then those inherited (oslo's _make_class_properties).
import { OBJECT_NAMESPACE } from '../objects';

export interface PayloadPrimitive {
  readonly 'nova_object.name': string;
  readonly 'nova_object.namespace': string;
  readonly 'nova_object.version': string;
  readonly 'nova_object.data': Record<string, unknown>;
}

export function payloadObject(name: string, version: string, data: Record<string, unknown>): PayloadPrimitive {
  return {
    'nova_object.name': name,
    'nova_object.namespace': OBJECT_NAMESPACE,
    'nova_object.version': version,
    'nova_object.data': data,
  };
}
