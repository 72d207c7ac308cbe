// The `args` of wrap_exception's legacy notification: the call's arguments without anything named like a password
// (_cleanse_dict), rendered as oslo's JsonPayloadSerializer renders them (jsonutils.to_primitive with
// convert_instances: objects become dicts of their set fields, datetimes strtime(), bytes text, depth-limited).
import { formatPlainDateTime, NovaObject } from '../objects';

/** jsonutils.to_primitive's max_depth: objects nested deeper than this become None. */
const MAX_DEPTH = 3;

export function wrapExceptionArgs(args: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    if (!key.includes('_pass')) out[key] = toPrimitive(value, 0);
  }
  return out;
}

function toPrimitive(value: unknown, level: number): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Date) return formatPlainDateTime(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (level > MAX_DEPTH) return null;
  if (value instanceof NovaObject) {
    const objects = value.get('objects');
    // An object list iterates as its elements; any other object as the dict of its set fields, one level deeper.
    if (Array.isArray(objects)) return objects.map((o) => toPrimitive(o, level));
    const dict: Record<string, unknown> = {};
    for (const field of Object.keys(value.toPrimitive()['nova_object.data'])) {
      dict[field] = toPrimitive(value.get(field), level + 1);
    }
    return dict;
  }
  if (Array.isArray(value)) return value.map((v) => toPrimitive(v, level));
  if (typeof value === 'object') {
    const dict: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) dict[k] = toPrimitive(v, level);
    return dict;
  }
  return String(value);
}
