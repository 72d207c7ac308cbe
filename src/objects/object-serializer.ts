// NovaObjectSerializer: the walk over RPC arguments and results that turns object primitives into NovaObjects and
// back. Any dict carrying `nova_object.name` is an object, at any depth inside lists and dicts.
import { formatPlainDateTime } from './date-time';
import { isPlainObject } from './field-types';
import { NovaObject, PRIMITIVE_KEYS } from './nova-object';

/**
 * Decodes every object primitive inside `value` (a new container is returned; the input is not modified).
 * Throws ObjectDecodeError for a primitive that is not one (wrong namespace, no name/version/data, bad field value);
 * `path` names the value in that error, e.g. `args.instance`.
 */
export function deserializeEntity(value: unknown, path = 'value'): unknown {
  if (Array.isArray(value)) return value.map((element, i) => deserializeEntity(element, `${path}[${i}]`));
  if (isPlainObject(value)) {
    if (Object.hasOwn(value, PRIMITIVE_KEYS.name)) return NovaObject.fromPrimitive(value, path);
    const out: Record<string, unknown> = {};
    for (const [key, element] of Object.entries(value)) out[key] = deserializeEntity(element, `${path}.${key}`);
    return out;
  }
  return value;
}

/**
 * Encodes `value` for the wire: NovaObjects become primitives, Sets lists, and bare Dates the plain datetime
 * format (oslo jsonutils), anywhere inside lists and dicts.
 */
export function serializeEntity(value: unknown): unknown {
  if (value instanceof NovaObject) return value.toPrimitive();
  if (value instanceof Date) return formatPlainDateTime(value);
  if (value instanceof Set) return [...value].map(serializeEntity);
  if (Array.isArray(value)) return value.map(serializeEntity);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, element] of Object.entries(value)) out[key] = serializeEntity(element);
    return out;
  }
  return value;
}
