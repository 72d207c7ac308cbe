// Field types of nova_object classes: the notation of ./object-schema.ts parsed into a tree, and the scalar rules
// of oslo.versionedobjects fields.py / nova/objects/fields.py — `coerce` (what a set() accepts and turns it into),
// `decode` (wire → value) and `encode` (value → wire). Object-valued types are handled by ./nova-object.ts.
import { isIP } from 'node:net';
import { formatNotificationTimestamp, formatObjectDateTime, parseIsoDateTime } from './date-time';
import { ENUM_VALUES, OBJECT_SCHEMAS } from './object-schema';

const SCALAR_NAMES = [
  'string', 'uuid', 'int', 'uint', 'float', 'ufloat', 'bool', 'flexbool', 'datetime', 'ip', 'ipv4', 'ipv6', 'ipv4v6',
  'mac', 'pci-address', 'resource-class', 'usb-address', 'scsi-address', 'ide-address', 'xen-address',
  'network-model', 'vif-model',
] as const;
export type ScalarName = (typeof SCALAR_NAMES)[number];
const SCALARS: ReadonlySet<string> = new Set(SCALAR_NAMES);

export type FieldType =
  | { readonly kind: 'scalar'; readonly scalar: ScalarName; readonly nullable: boolean }
  | { readonly kind: 'enum'; readonly enumName: string; readonly values: readonly string[]; readonly nullable: boolean }
  | {
      readonly kind: 'object';
      readonly className: string;
      /** The class names the field takes: className, or all its subclasses for `ObjectField(subclasses=True)`. */
      readonly accepts: readonly string[];
      readonly nullable: boolean;
    }
  | { readonly kind: 'list' | 'set' | 'dict'; readonly element: FieldType; readonly nullable: boolean };

export interface FieldSpec {
  readonly type: FieldType;
  /** JSON form of Nova's `default=` (object defaults as primitives); used when null is set on a non-nullable field. */
  readonly default?: unknown;
  readonly readOnly: boolean;
}

export interface ClassSpec {
  readonly name: string;
  readonly version: string;
  /** An ObjectListBase class: a changed element makes `objects` changed. */
  readonly list: boolean;
  /** A NovaEphemeralObject: fields with defaults are set when the object is created. */
  readonly ephemeral: boolean;
  /** Fields compared with their value at the last reset (Nova's obj_what_changed overrides). */
  readonly valueTracked: readonly string[];
  readonly fields: ReadonlyMap<string, FieldSpec>;
}

/** A value a field type rejects; callers turn it into ObjectFieldError or ObjectDecodeError. */
export class InvalidFieldValue extends Error {
  override readonly name = 'InvalidFieldValue';
}

export function parseFieldType(notation: string): FieldType {
  const nullable = notation.endsWith('?');
  const body = nullable ? notation.slice(0, -1) : notation;
  const generic = /^(list|set|dict|object|enum)<(.+)>$/.exec(body);
  if (generic) {
    const [, word, inner = ''] = generic;
    if (word === 'object') return { kind: 'object', className: inner, accepts: [inner], nullable };
    if (word === 'enum') {
      const values = (ENUM_VALUES as Readonly<Record<string, readonly string[]>>)[inner];
      if (!values) throw new Error(`object schema: unknown enum ${inner}`);
      return { kind: 'enum', enumName: inner, values, nullable };
    }
    return { kind: word as 'list' | 'set' | 'dict', element: parseFieldType(inner), nullable };
  }
  if (!SCALARS.has(body)) throw new Error(`object schema: unknown field type ${notation}`);
  return { kind: 'scalar', scalar: body as ScalarName, nullable };
}

type RawFieldSpec =
  | string
  | { readonly type: string; readonly default?: unknown; readonly readOnly?: boolean; readonly subclasses?: readonly string[] };
interface RawClassSpec {
  readonly version: string;
  readonly list?: boolean;
  readonly ephemeral?: boolean;
  readonly valueTracked?: readonly string[];
  readonly fields: Readonly<Record<string, RawFieldSpec>>;
}

const RAW_SCHEMAS: Readonly<Record<string, RawClassSpec>> = OBJECT_SCHEMAS;
const classSpecs = new Map<string, ClassSpec>();

/** The schema of a Nova class (parsed once), or undefined for a class this Nova release does not have. */
export function classSpec(name: string): ClassSpec | undefined {
  const cached = classSpecs.get(name);
  if (cached) return cached;
  if (!Object.hasOwn(RAW_SCHEMAS, name)) return undefined;
  const raw = RAW_SCHEMAS[name] as RawClassSpec;
  const fields = new Map<string, FieldSpec>();
  for (const [field, spec] of Object.entries(raw.fields)) {
    if (typeof spec === 'string') {
      fields.set(field, { type: parseFieldType(spec), readOnly: false });
    } else {
      let type = parseFieldType(spec.type);
      if (type.kind === 'object' && spec.subclasses) type = { ...type, accepts: spec.subclasses };
      fields.set(field, {
        type,
        readOnly: spec.readOnly ?? false,
        ...('default' in spec ? { default: spec.default } : {}),
      });
    }
  }
  const parsed: ClassSpec = {
    name,
    version: raw.version,
    list: raw.list ?? false,
    ephemeral: raw.ephemeral ?? false,
    valueTracked: raw.valueTracked ?? [],
    fields,
  };
  classSpecs.set(name, parsed);
  return parsed;
}

// ---- scalar rules ---------------------------------------------------------------------------------------------

const INT_LITERAL = /^\s*[+-]?\d+(?:_\d+)*\s*$/;
const FLOAT_LITERAL = /^\s*[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+)?\s*$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
// oslo's pattern, unescaped dot included.
const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f].[0-7]$/;
const RESOURCE_CLASS = /^[A-Z0-9_]+$/;
// nova AddressBase uses re.match: anchored at the start only.
const ADDRESS_PATTERNS: Readonly<Record<string, RegExp>> = {
  'usb-address': /^(?:[a-f0-9]+:[a-f0-9]+)/,
  'scsi-address': /^(?:[a-f0-9]+:[a-f0-9]+:[a-f0-9]+:[a-f0-9]+)/,
  'ide-address': /^(?:[0-1]:[0-1])/,
  'xen-address': /^(?:(00[0-9]{2}00)|[1-9][0-9]+)/,
};
const FLEX_TRUE = new Set(['1', 't', 'true', 'on', 'y', 'yes']);

/** Python's `str(value)` for what oslo's String field accepts (int, float, str, datetime; bool is an int). */
function pythonStr(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return `${formatNotificationTimestamp(value)}+00:00`;
  return undefined;
}

/** Python's truthiness, which `bool(value)` applies. */
function pythonTruthy(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') return value !== '';
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null && !(value instanceof Date)) return Object.keys(value).length > 0;
  return value !== undefined && value !== null;
}

function pythonInt(value: unknown): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string' && INT_LITERAL.test(value)) return Number(value.replace(/_/g, '').trim());
  throw new InvalidFieldValue(`an integer is required, not ${describe(value)}`);
}

function pythonFloat(value: unknown): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && FLOAT_LITERAL.test(value)) return Number(value.replace(/_/g, '').trim());
  throw new InvalidFieldValue(`a finite number is required, not ${describe(value)}`);
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new InvalidFieldValue(`${what} is required, not ${describe(value)}`);
  return value;
}

function parseJsonText(value: string, what: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw new InvalidFieldValue(`${what} must be valid JSON text`);
  }
}

/** A JSON-style dict (not an array, Date, NovaObject or other class instance). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`.slice(0, 80);
}

/** oslo `coerce` of a scalar type: what `set()` stores for `value`, or InvalidFieldValue. */
export function coerceScalar(scalar: ScalarName, value: unknown): unknown {
  switch (scalar) {
    case 'string':
    case 'uuid': {
      const s = pythonStr(value);
      if (s === undefined) throw new InvalidFieldValue(`a string is required, not ${describe(value)}`);
      return s;
    }
    case 'int':
      return pythonInt(value);
    case 'uint': {
      const n = pythonInt(value);
      if (n < 0) throw new InvalidFieldValue('value must be >= 0');
      return n;
    }
    case 'float':
      return pythonFloat(value);
    case 'ufloat': {
      const n = pythonFloat(value);
      if (n < 0) throw new InvalidFieldValue('value must be >= 0');
      return n;
    }
    case 'bool':
      return pythonTruthy(value);
    case 'flexbool':
      if (typeof value === 'boolean') return value;
      return FLEX_TRUE.has((pythonStr(value) ?? '').trim().toLowerCase());
    case 'datetime': {
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new InvalidFieldValue('an invalid Date');
        return new Date(value.getTime());
      }
      const parsed = parseIsoDateTime(requireString(value, 'a Date or an ISO 8601 string'));
      if (!parsed) throw new InvalidFieldValue(`not an ISO 8601 datetime: ${describe(value)}`);
      return parsed;
    }
    case 'ip':
    case 'ipv4':
    case 'ipv6':
    case 'ipv4v6': {
      const text = requireString(value, 'an IP address string');
      const family = isIP(text);
      const ok = scalar === 'ipv4' ? family === 4 : scalar === 'ipv6' ? family === 6 : family !== 0;
      if (!ok) throw new InvalidFieldValue(`not a valid ${scalar === 'ip' || scalar === 'ipv4v6' ? 'IP' : scalar} address: ${describe(value)}`);
      return text;
    }
    case 'mac': {
      const mac = requireString(value, 'a MAC address string').toLowerCase().replace(/-/g, ':');
      if (!MAC.test(mac)) throw new InvalidFieldValue(`malformed MAC ${describe(value)}`);
      return mac;
    }
    case 'pci-address': {
      const address = requireString(value, 'a PCI address string').toLowerCase();
      if (!PCI_ADDRESS.test(address)) throw new InvalidFieldValue(`malformed PCI address ${describe(value)}`);
      return address;
    }
    case 'resource-class': {
      const rc = requireString(value, 'a resource class string').toUpperCase();
      if (!RESOURCE_CLASS.test(rc)) throw new InvalidFieldValue(`malformed resource class ${describe(value)}`);
      return rc;
    }
    case 'usb-address':
    case 'scsi-address':
    case 'ide-address':
    case 'xen-address': {
      const text = pythonStr(value);
      const pattern = ADDRESS_PATTERNS[scalar] as RegExp;
      if (text === undefined || !pattern.test(text)) throw new InvalidFieldValue(`value must match ${pattern.source}`);
      return text;
    }
    case 'network-model': {
      const model = typeof value === 'string' ? parseJsonText(value, 'network_info') : value;
      if (!Array.isArray(model)) throw new InvalidFieldValue('a network model (a list of VIFs) is required');
      return model;
    }
    case 'vif-model': {
      const vif = typeof value === 'string' ? parseJsonText(value, 'a VIF') : value;
      if (!isPlainObject(vif)) throw new InvalidFieldValue('a VIF (an object) is required');
      return vif;
    }
  }
}

/** Wire → value. Only datetimes and the JSON-text network models change shape; the rest are coerced. */
export function decodeScalar(scalar: ScalarName, wire: unknown): unknown {
  switch (scalar) {
    case 'datetime': {
      const parsed = parseIsoDateTime(requireString(wire, 'an ISO 8601 string'));
      if (!parsed) throw new InvalidFieldValue(`not an ISO 8601 datetime: ${describe(wire)}`);
      return parsed;
    }
    default:
      return coerceScalar(scalar, wire);
  }
}

/** Value → wire (oslo `to_primitive`). */
export function encodeScalar(scalar: ScalarName, value: unknown): unknown {
  switch (scalar) {
    case 'datetime':
      return formatObjectDateTime(value as Date);
    case 'network-model':
    case 'vif-model':
      return JSON.stringify(value);
    default:
      return value;
  }
}

// Nova enum classes whose coerce() canonicalises before checking the valid values.
const LEGACY_VIF_MODELS: Readonly<Record<string, string>> = {
  virtuale1000: 'e1000',
  virtuale1000e: 'e1000e',
  virtualpcnet32: 'pcnet',
  virtualsriovethernetcard: 'sriov',
  virtualvmxnet: 'vmxnet',
  virtualvmxnet3: 'vmxnet3',
};
const ARCH_ALIASES: Readonly<Record<string, string>> = {
  i386: 'i686', i486: 'i686', i586: 'i686', x86_32: 'i686', x86_32p: 'i686', amd64: 'x86_64',
};
const lowerThen = (aliases: Readonly<Record<string, string>>) => (value: unknown): unknown => {
  if (typeof value !== 'string') return value;
  const lower = value.toLowerCase();
  return aliases[lower] ?? lower;
};
const CANONICALISE: Readonly<Record<string, (value: unknown) => unknown>> = {
  Architecture: lowerThen(ARCH_ALIASES),
  HVType: lowerThen({ xapi: 'xen' }),
  VMMode: lowerThen({ pv: 'xen', hv: 'hvm', baremetal: 'hvm' }),
  OSType: lowerThen({}),
  SCSIModel: lowerThen({ lsilogicsas: 'lsisas1068', paravirtual: 'vmpvscsi' }),
  VIFModel: lowerThen(LEGACY_VIF_MODELS),
  // InstancePowerState also takes the integer power_state (its index in the value list).
  InstancePowerState: (value) => {
    if (typeof value === 'number' || (typeof value === 'string' && INT_LITERAL.test(value))) {
      const index = Number(value);
      return ENUM_VALUES.InstancePowerState[index] ?? value;
    }
    return value;
  },
};

/** oslo Enum coerce: canonicalise (for the Nova enums that do), then require one of the valid values. */
export function coerceEnum(type: { readonly enumName: string; readonly values: readonly string[] }, value: unknown): string {
  const canonical = CANONICALISE[type.enumName]?.(value) ?? value;
  if (typeof canonical !== 'string' || !type.values.includes(canonical)) {
    throw new InvalidFieldValue(`field value ${describe(value)} is invalid (${type.enumName})`);
  }
  return canonical;
}

/** Decoding an enum keeps a value a newer Nova added (oslo does not check on from_primitive either). */
export function decodeEnum(type: { readonly enumName: string; readonly values: readonly string[] }, wire: unknown): string {
  try {
    return coerceEnum(type, wire);
  } catch (err) {
    if (typeof wire === 'string') return wire;
    throw err;
  }
}
