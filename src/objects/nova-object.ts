// A nova_object as oslo.versionedobjects models it: a class name and version, the fields that are *set* (unset is
// not null), and the set of changed fields the conductor will write. Wire format: nova-compute-protocol.md §2.
import {
  classSpec,
  coerceEnum,
  coerceScalar,
  decodeEnum,
  decodeScalar,
  describe,
  encodeScalar,
  InvalidFieldValue,
  isPlainObject,
  type ClassSpec,
  type FieldSpec,
  type FieldType,
} from './field-types';
import { ObjectDecodeError, ObjectFieldError, UnknownObjectClassError } from './object-errors';
import type { FieldsOf, ObjectName } from './object-types';

export const OBJECT_NAMESPACE = 'nova';

export const PRIMITIVE_KEYS = {
  name: 'nova_object.name',
  namespace: 'nova_object.namespace',
  version: 'nova_object.version',
  data: 'nova_object.data',
  changes: 'nova_object.changes',
} as const;

/** The wire form of an object (§2.1). */
export interface NovaObjectPrimitive {
  'nova_object.name': string;
  'nova_object.namespace': string;
  'nova_object.version': string;
  'nova_object.data': Record<string, unknown>;
  'nova_object.changes'?: string[];
}

/** A field's value, plus the wire value it was decoded from when re-encoding would not reproduce it byte for byte. */
interface Slot {
  value: unknown;
  wire?: unknown;
  /** JSON of encode(value) at decode time: while it still matches, `wire` is sent instead. */
  wireOf?: string;
}

export class NovaObject<F extends object = Record<string, unknown>> {
  readonly name: string;
  /** The version we received it at (or this release's version when we created it); sent back unchanged. */
  readonly version: string;
  readonly #spec: ClassSpec | undefined;
  readonly #slots = new Map<string, Slot>();
  readonly #changed = new Set<string>();
  /** Value-tracked fields (Instance.metadata, …) as they were at the last decode or reset. */
  readonly #tracked = new Map<string, unknown>();

  /** An empty object (no field set, no change). Use newObject() to build one for sending, fromPrimitive() to decode. */
  constructor(name: string, version: string) {
    this.name = name;
    this.version = version;
    this.#spec = classSpec(name);
  }

  /** Decodes a primitive (§2.1); nested objects become NovaObjects. Throws ObjectDecodeError. */
  static fromPrimitive(primitive: unknown, path?: string): NovaObject {
    if (!isPlainObject(primitive)) throw new ObjectDecodeError(path ?? 'object', `not an object primitive (${describe(primitive)})`);
    const name = primitive[PRIMITIVE_KEYS.name];
    const where = path ?? (typeof name === 'string' ? name : 'object');
    if (typeof name !== 'string' || name === '') throw new ObjectDecodeError(where, 'nova_object.name is missing');
    const namespace = primitive[PRIMITIVE_KEYS.namespace];
    if (namespace !== OBJECT_NAMESPACE) {
      throw new ObjectDecodeError(where, `unsupported namespace ${describe(namespace)} (UnsupportedObjectError)`, { osloClass: 'UnsupportedObjectError' });
    }
    const version = primitive[PRIMITIVE_KEYS.version];
    if (typeof version !== 'string' || !/^\d+\.\d+(\.\d+)?$/.test(version)) {
      throw new ObjectDecodeError(where, `nova_object.version is missing or malformed (${describe(version)})`);
    }
    const data = primitive[PRIMITIVE_KEYS.data];
    if (!isPlainObject(data)) throw new ObjectDecodeError(where, `nova_object.data is not an object (${describe(data)})`);
    const changes = primitive[PRIMITIVE_KEYS.changes] ?? [];
    if (!Array.isArray(changes) || !changes.every((c) => typeof c === 'string')) {
      throw new ObjectDecodeError(where, 'nova_object.changes is not a list of field names');
    }
    const obj = new NovaObject(name, version);
    const spec = obj.#spec;
    if (spec && majorOf(version) !== majorOf(spec.version)) {
      throw new ObjectDecodeError(where, `version ${version} is incompatible with ${spec.version} (IncompatibleObjectVersion)`, {
        osloClass: 'IncompatibleObjectVersion',
      });
    }
    for (const [field, wire] of Object.entries(data)) {
      const fieldSpec = spec?.fields.get(field);
      obj.#slots.set(field, fieldSpec ? decodeSlot(fieldSpec.type, wire, `${where}.${field}`) : { value: wire });
    }
    for (const field of changes) obj.#changed.add(field);
    obj.#snapshotTracked();
    return obj;
  }

  /** The field's value, or undefined when it is not set. Dicts and lists are live: editing them edits the object. */
  get<K extends keyof F & string>(field: K): F[K] | undefined {
    return this.#slots.get(field)?.value as F[K] | undefined;
  }

  has(field: keyof F & string): boolean {
    return this.#slots.has(field);
  }

  /** Sets a field as oslo's setattr does: coerces or throws ObjectFieldError, and marks the field changed. */
  set<K extends keyof F & string>(field: K, value: F[K]): void {
    const spec = this.#spec;
    const fieldSpec = spec?.fields.get(field);
    if (spec && !fieldSpec) throw new ObjectFieldError(this.name, field, `${this.name} has no field ${field}`);
    let coerced: unknown = value;
    if (fieldSpec) {
      try {
        coerced = coerceField(fieldSpec, value);
      } catch (err) {
        if (err instanceof InvalidFieldValue) throw new ObjectFieldError(this.name, field, err.message);
        throw err;
      }
      const current = this.#slots.get(field);
      if (fieldSpec.readOnly && current) {
        if (jsonEqual(encodeValue(fieldSpec.type, current.value), encodeValue(fieldSpec.type, coerced))) return;
        throw new ObjectFieldError(this.name, field, 'is read-only (ReadOnlyFieldError)');
      }
    }
    this.#slots.set(field, { value: coerced });
    this.#changed.add(field);
  }

  /** Makes the field unset (Python `del obj.field`); it is no longer sent nor listed as changed. */
  unset(field: keyof F & string): void {
    this.#slots.delete(field);
    this.#changed.delete(field);
    this.#tracked.delete(field);
  }

  /**
   * The changed fields, as obj_what_changed(): fields set since the last reset, object fields whose object has
   * changes, `objects` of a list class when an element changed, and value-tracked dicts edited in place.
   */
  changes(): string[] {
    const out = [...this.#changed].filter((field) => this.#slots.has(field));
    const add = (field: string): void => {
      if (!out.includes(field)) out.push(field);
    };
    for (const [field, slot] of this.#slots) {
      if (slot.value instanceof NovaObject && slot.value.changes().length > 0) add(field);
    }
    const objects = this.#slots.get('objects')?.value;
    if (this.#spec?.list && Array.isArray(objects) && objects.some((o) => o instanceof NovaObject && o.changes().length > 0)) {
      add('objects');
    }
    for (const [field, snapshot] of this.#tracked) {
      const slot = this.#slots.get(field);
      if (slot && !jsonEqual(slot.value, snapshot)) add(field);
    }
    return out;
  }

  /**
   * Forgets changes (obj_reset_changes): of `fields`, or all. `recursive` also resets the nested objects of the
   * fields being reset.
   */
  resetChanges(fields?: readonly string[], recursive = false): void {
    if (recursive) {
      for (const field of this.changes()) {
        if (fields && !fields.includes(field)) continue;
        const value = this.#slots.get(field)?.value;
        if (value instanceof NovaObject) value.resetChanges(undefined, true);
        if (Array.isArray(value)) for (const v of value) if (v instanceof NovaObject) v.resetChanges(undefined, true);
      }
    }
    if (fields) for (const field of fields) this.#changed.delete(field);
    else this.#changed.clear();
    this.#snapshotTracked(fields);
  }

  /**
   * The wire form: set fields only, in the class's field order as Python sends them (fields this release does not
   * know last), `nova_object.changes` only when something changed (§2.1).
   */
  toPrimitive(): NovaObjectPrimitive {
    const data: Record<string, unknown> = {};
    for (const field of this.#spec?.fields.keys() ?? []) {
      const slot = this.#slots.get(field);
      if (slot) data[field] = this.#encodeSlot(field, slot);
    }
    for (const [field, slot] of this.#slots) if (!Object.hasOwn(data, field)) data[field] = this.#encodeSlot(field, slot);
    const primitive: NovaObjectPrimitive = {
      'nova_object.name': this.name,
      'nova_object.namespace': OBJECT_NAMESPACE,
      'nova_object.version': this.version,
      'nova_object.data': data,
    };
    const changes = this.changes();
    if (changes.length > 0) primitive['nova_object.changes'] = changes;
    return primitive;
  }

  /**
   * Applies the `updates` half of an object_action reply (§5.2) the way oslo's remotable wrapper does: every field
   * in it is set from its wire form, then the changed set becomes exactly `obj_what_changed`. All or nothing: a bad
   * update throws ObjectDecodeError and leaves the object as it was.
   */
  applyUpdates(updates: unknown): void {
    const where = `${this.name} object_action updates`;
    if (!isPlainObject(updates)) throw new ObjectDecodeError(where, `not an object (${describe(updates)})`);
    const whatChanged = updates['obj_what_changed'] ?? [];
    if (!Array.isArray(whatChanged) || !whatChanged.every((c) => typeof c === 'string')) {
      throw new ObjectDecodeError(where, 'obj_what_changed is not a list of field names');
    }
    const decoded: Array<[string, Slot]> = [];
    for (const [field, wire] of Object.entries(updates)) {
      if (field === 'obj_what_changed') continue;
      const fieldSpec = this.#spec?.fields.get(field);
      decoded.push([field, fieldSpec ? decodeSlot(fieldSpec.type, wire, `${where}.${field}`) : { value: wire }]);
    }
    for (const [field, slot] of decoded) this.#slots.set(field, slot);
    this.resetChanges();
    for (const field of whatChanged) this.#changed.add(field);
  }

  /** A deep copy (obj_clone), changes and value-tracking included. */
  clone(): NovaObject<F> {
    const copy = new NovaObject<F>(this.name, this.version);
    for (const [field, slot] of this.#slots) {
      copy.#slots.set(field, { ...slot, value: cloneValue(slot.value), wire: cloneValue(slot.wire) });
    }
    for (const field of this.#changed) copy.#changed.add(field);
    for (const [field, snapshot] of this.#tracked) copy.#tracked.set(field, cloneValue(snapshot));
    return copy;
  }

  #encodeSlot(field: string, slot: Slot): unknown {
    const type = this.#spec?.fields.get(field)?.type;
    if (!type) return slot.value;
    const encoded = encodeValue(type, slot.value);
    if (slot.wire !== undefined && JSON.stringify(encoded) === slot.wireOf) return slot.wire;
    return encoded;
  }

  #snapshotTracked(fields?: readonly string[]): void {
    for (const field of this.#spec?.valueTracked ?? []) {
      if (fields && !fields.includes(field)) continue;
      const slot = this.#slots.get(field);
      if (slot) this.#tracked.set(field, cloneValue(slot.value));
      else this.#tracked.delete(field);
    }
  }
}

/** Builds an object of this Nova release's version of class N; every given field is set (and so changed). */
export function newObject<N extends ObjectName>(name: N, data: Partial<FieldsOf<N>> = {}): NovaObject<FieldsOf<N>> {
  const spec = classSpec(name);
  if (!spec) throw new UnknownObjectClassError(name);
  const obj = new NovaObject(name, spec.version);
  for (const [field, value] of Object.entries(data)) {
    if (value !== undefined) obj.set(field, value);
  }
  // ObjectListBase.__init__ starts with an empty, unchanged list.
  if (spec.list && !obj.has('objects')) {
    obj.set('objects', []);
    obj.resetChanges(['objects']);
  }
  // NovaEphemeralObject.__init__ sets every defaulted field (through setattr, so they count as changed).
  if (spec.ephemeral) {
    for (const [field, fieldSpec] of spec.fields) {
      if ('default' in fieldSpec && !obj.has(field)) obj.set(field, defaultValue(fieldSpec));
    }
  }
  return obj as unknown as NovaObject<FieldsOf<N>>;
}

/** Type guard for decoded RPC arguments: `isNovaObject(arg, 'Instance')` narrows to Instance. */
export function isNovaObject<N extends ObjectName>(value: unknown, name: N): value is NovaObject<FieldsOf<N>> {
  return value instanceof NovaObject && value.name === name;
}

function majorOf(version: string): string {
  return version.split('.')[0] ?? version;
}

function decodeSlot(type: FieldType, wire: unknown, path: string): Slot {
  const value = decodeValue(type, wire, path);
  if (containsObjects(type)) return { value };
  // Keep the wire form when re-encoding would not reproduce it (datetimes with fractions, JSON-text models, …).
  const encoded = encodeValue(type, value);
  const encodedJson = JSON.stringify(encoded);
  return encodedJson === JSON.stringify(wire) ? { value } : { value, wire, wireOf: encodedJson };
}

function containsObjects(type: FieldType): boolean {
  if (type.kind === 'object') return true;
  if (type.kind === 'list' || type.kind === 'set' || type.kind === 'dict') return containsObjects(type.element);
  return false;
}

/** from_primitive: wire → value. Like oslo, null decodes to null whatever the field's nullability. */
function decodeValue(type: FieldType, wire: unknown, path: string): unknown {
  if (wire === null) return null;
  try {
    switch (type.kind) {
      case 'scalar':
        return decodeScalar(type.scalar, wire);
      case 'enum':
        return decodeEnum(type, wire);
      case 'object': {
        const obj = wire instanceof NovaObject ? wire : NovaObject.fromPrimitive(wire, path);
        if (!type.accepts.includes(obj.name)) {
          throw new ObjectDecodeError(path, `an object of type ${type.className} is required, not ${obj.name}`);
        }
        return obj;
      }
      case 'list':
      case 'set':
        if (!Array.isArray(wire)) throw new InvalidFieldValue(`a list is required, not ${describe(wire)}`);
        return wire.map((element, i) => decodeValue(type.element, element, `${path}[${i}]`));
      case 'dict': {
        if (!isPlainObject(wire)) throw new InvalidFieldValue(`a dict is required, not ${describe(wire)}`);
        const out: Record<string, unknown> = {};
        for (const [key, element] of Object.entries(wire)) out[key] = decodeValue(type.element, element, `${path}["${key}"]`);
        return out;
      }
    }
  } catch (err) {
    if (err instanceof InvalidFieldValue) throw new ObjectDecodeError(path, err.message);
    throw err;
  }
}

/** to_primitive: value → wire. */
function encodeValue(type: FieldType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (type.kind) {
    case 'scalar':
      return encodeScalar(type.scalar, value);
    case 'enum':
      return value;
    case 'object':
      return (value as NovaObject).toPrimitive();
    case 'list':
    case 'set':
      return (value as unknown[]).map((element) => encodeValue(type.element, element));
    case 'dict': {
      const out: Record<string, unknown> = {};
      for (const [key, element] of Object.entries(value as Record<string, unknown>)) out[key] = encodeValue(type.element, element);
      return out;
    }
  }
}

/** Field.coerce: null handling (nullable, else the default, else an error), then the type's coercion. */
function coerceField(spec: Pick<FieldSpec, 'type' | 'default'>, value: unknown): unknown {
  const type = spec.type;
  if (value === null || value === undefined) {
    if (type.nullable) return null;
    if ('default' in spec) return coerceField({ type }, defaultValue(spec));
    throw new InvalidFieldValue('cannot be None');
  }
  switch (type.kind) {
    case 'scalar':
      return coerceScalar(type.scalar, value);
    case 'enum':
      return coerceEnum(type, value);
    case 'object': {
      if (!(value instanceof NovaObject) || !type.accepts.includes(value.name)) {
        const actual = value instanceof NovaObject ? value.name : describe(value);
        throw new InvalidFieldValue(`an object of type ${type.className} is required, not ${actual}`);
      }
      return value;
    }
    case 'list':
    case 'set': {
      const items = value instanceof Set ? [...value] : value;
      if (!Array.isArray(items)) throw new InvalidFieldValue(`a ${type.kind} is required, not ${describe(value)}`);
      const coerced = items.map((item) => coerceField({ type: type.element }, item));
      if (type.kind === 'list') return coerced;
      const seen = new Set<string>();
      return coerced.filter((item) => {
        const key = JSON.stringify(item);
        return seen.has(key) ? false : (seen.add(key), true);
      });
    }
    case 'dict': {
      if (!isPlainObject(value)) throw new InvalidFieldValue(`a dict is required, not ${describe(value)}`);
      const out: Record<string, unknown> = {};
      for (const [key, element] of Object.entries(value)) out[key] = coerceField({ type: type.element }, element);
      return out;
    }
  }
}

function defaultValue(spec: Pick<FieldSpec, 'type' | 'default'>): unknown {
  // A fresh copy each time, decoded (object defaults are stored as primitives).
  return decodeValue(spec.type, structuredClone(spec.default), 'default');
}

function cloneValue(value: unknown): unknown {
  if (value instanceof NovaObject) return value.clone();
  if (value instanceof Date) return new Date(value.getTime());
  if (Array.isArray(value)) return value.map(cloneValue);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, element] of Object.entries(value)) out[key] = cloneValue(element);
    return out;
  }
  return value;
}

/** Structural equality of JSON-like values (key order ignored), as Python's == on dicts and lists. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}
