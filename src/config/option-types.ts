// The value types of the schema (oslo.config's types.py, plus the few Berth needs) and the `option` constructor.
// A value type turns one raw string into a typed value or says what it expected; the loader adds section, option and
// file to that, and hides the value of a secret option.
import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { normalizeCapability } from './capabilities';
import { parseTransportUrl, TransportUrlError } from '../messaging';

/** Thrown by a value type; `message` completes "… is not valid: ". */
export class OptionValueError extends Error {
  override readonly name = 'OptionValueError';
}

export interface ValueType<V> {
  /** oslo's type name, shown in the sample config ("integer value"). */
  readonly label: string;
  /** What a valid value looks like ("an integer >= 1"). */
  readonly expected: string;
  /** Extra sample-config lines ("Minimum value: 1"). */
  readonly notes: readonly string[];
  /**
   * Converts a raw value (already trimmed by the INI parser and `$`-substituted); throws OptionValueError, whose
   * message never quotes the value (the loader decides whether a value may be shown).
   */
  convert(raw: string): V;
  /** Writes a value as it would appear in a config file. */
  format(value: V): string;
}

const expectation = (expected: string): OptionValueError => new OptionValueError(`expected ${expected}`);

function range(what: string, min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `${what} between ${min} and ${max}`;
  if (min !== undefined) return `${what} >= ${min}`;
  if (max !== undefined) return `${what} <= ${max}`;
  return what;
}

function rangeNotes(min: number | undefined, max: number | undefined): string[] {
  return [
    ...(min !== undefined ? [`Minimum value: ${min}`] : []),
    ...(max !== undefined ? [`Maximum value: ${max}`] : []),
  ];
}

export interface Bounds {
  readonly min?: number;
  readonly max?: number;
}

export function integer(bounds: Bounds = {}): ValueType<number> {
  const expected = range('an integer', bounds.min, bounds.max);
  return {
    label: 'integer value',
    expected,
    notes: rangeNotes(bounds.min, bounds.max),
    convert(raw) {
      const value = /^[+-]?\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(value)) throw expectation(expected);
      if (bounds.min !== undefined && value < bounds.min) throw expectation(expected);
      if (bounds.max !== undefined && value > bounds.max) throw expectation(expected);
      return value;
    },
    format: String,
  };
}

export function float(bounds: Bounds = {}): ValueType<number> {
  const expected = range('a number', bounds.min, bounds.max);
  return {
    label: 'floating point value',
    expected,
    notes: rangeNotes(bounds.min, bounds.max),
    convert(raw) {
      const value = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(value)) throw expectation(expected);
      if (bounds.min !== undefined && value < bounds.min) throw expectation(expected);
      if (bounds.max !== undefined && value > bounds.max) throw expectation(expected);
      return value;
    },
    // Python writes floats with a decimal point; keep that so the sample matches nova.conf's ("16.0").
    format: (value) => (Number.isInteger(value) ? value.toFixed(1) : String(value)),
  };
}

const TRUE_VALUES = ['true', '1', 'on', 'yes'];
const FALSE_VALUES = ['false', '0', 'off', 'no'];

const BOOLEAN_EXPECTED = 'a boolean (true/false, yes/no, on/off or 1/0)';

export const boolean: ValueType<boolean> = {
  label: 'boolean value',
  expected: BOOLEAN_EXPECTED,
  notes: [],
  convert(raw) {
    const lower = raw.toLowerCase();
    if (TRUE_VALUES.includes(lower)) return true;
    if (FALSE_VALUES.includes(lower)) return false;
    throw expectation(BOOLEAN_EXPECTED);
  },
  format: (value) => (value ? 'true' : 'false'),
};

export interface StringRules {
  /** An anchored pattern the whole value must match, and how to say so. */
  readonly pattern?: RegExp;
  readonly expected?: string;
}

/** A non-empty string (an empty value of an optional option means "unset" and never reaches a type). */
export function string(rules: StringRules = {}): ValueType<string> {
  const expected = rules.expected ?? 'a non-empty string';
  return {
    label: 'string value',
    expected,
    notes: [],
    convert(raw) {
      if (raw === '' || (rules.pattern !== undefined && !rules.pattern.test(raw))) throw expectation(expected);
      return raw;
    },
    format: (value) => value,
  };
}

/** One of fixed choices, compared case-sensitively as oslo does. */
export function choice<const C extends string>(choices: readonly C[]): ValueType<C> {
  const expected = `one of ${choices.join(', ')}`;
  return {
    label: 'string value',
    expected,
    notes: [`Possible values: ${choices.join(', ')}`],
    convert(raw) {
      if (!(choices as readonly string[]).includes(raw)) throw expectation(expected);
      return raw as C;
    },
    format: (value) => value,
  };
}

/**
 * oslo's ListOpt: comma-separated, items trimmed, a trailing comma ignored, an empty value is the empty list.
 * `what` names the items in messages ("Linux capability names").
 */
export function list<V>(item: ValueType<V>, what: string): ValueType<readonly V[]> {
  const expected = `a comma-separated list of ${what}`;
  return {
    label: 'list value',
    expected,
    notes: item.notes,
    convert(raw) {
      const text = raw.trim().replace(/,+$/, '');
      if (text === '') return [];
      return text.split(',').map((part, index) => {
        try {
          return item.convert(part.trim());
        } catch (error) {
          if (!(error instanceof OptionValueError)) throw error;
          throw new OptionValueError(`expected ${expected}; item ${index + 1}: ${error.message}`);
        }
      });
    },
    format: (values) => values.map((value) => item.format(value)).join(','),
  };
}

/** An absolute URL with a host, restricted to `schemes` (without the colon: "http", "https"). */
export function url(schemes: readonly string[]): ValueType<string> {
  const expected = `a ${schemes.map((s) => `${s}://`).join(' or ')} URL with a host`;
  return {
    label: 'URI value',
    expected,
    notes: [],
    convert(raw) {
      let parsed: URL;
      try {
        parsed = new URL(raw);
      } catch {
        throw expectation(expected);
      }
      if (!schemes.includes(parsed.protocol.slice(0, -1)) || parsed.hostname === '') throw expectation(expected);
      return raw;
    },
    format: (value) => value,
  };
}

/** oslo.messaging's transport URL, limited to the rabbit driver. */
const TRANSPORT_URL_EXPECTED =
  'a transport URL rabbit://user:password@host:port[,user:password@host:port...]/virtual_host';

/** Parsed by src/messaging's parser, the one that connects, so both agree on what a valid URL is. */
export const transportUrl: ValueType<string> = {
  label: 'string value',
  expected: TRANSPORT_URL_EXPECTED,
  notes: [],
  convert(raw) {
    try {
      parseTransportUrl(raw);
    } catch (error) {
      if (!(error instanceof TransportUrlError)) throw error;
      // Only the problem: the rest of that message repeats the URL (password masked, user and hosts not).
      const problem = error.message.slice(`invalid transport_url ${error.redactedUrl}: `.length);
      throw new OptionValueError(`expected ${TRANSPORT_URL_EXPECTED} (${problem})`);
    }
    return raw;
  },
  format: (value) => value,
};

/** Docker's -H address: a unix socket, or a TCP endpoint (https://, or tcp:// which means TLS when certs are set). */
const DOCKER_HOST_EXPECTED = 'unix:///path/to/docker.sock, tcp://host:port or https://host:port';

export const dockerHostUrl: ValueType<string> = {
  label: 'URI value',
  expected: DOCKER_HOST_EXPECTED,
  notes: [],
  convert(raw) {
    const unix = /^unix:\/\/(\/.+)$/.exec(raw);
    if (unix !== null) return raw;
    try {
      const parsed = new URL(raw);
      if ((parsed.protocol === 'tcp:' || parsed.protocol === 'https:') && parsed.hostname !== '') return raw;
    } catch {
      // falls through to the error below
    }
    throw expectation(DOCKER_HOST_EXPECTED);
  },
  format: (value) => value,
};

/**
 * A filesystem path, made absolute against the working directory at start-up so later logs show where it points.
 * With `readableFile`, the file must exist and be readable now, so a typo stops start-up instead of the first TLS
 * handshake.
 */
export function path(rules: { readonly readableFile?: boolean } = {}): ValueType<string> {
  const expected = rules.readableFile === true ? 'a readable file' : 'a path';
  return {
    label: 'string value',
    expected,
    notes: [],
    convert(raw) {
      if (raw === '' || raw.includes('\0')) throw expectation(expected);
      const absolute = resolvePath(raw);
      if (rules.readableFile === true) {
        try {
          if (!statSync(absolute).isFile()) throw new OptionValueError(`expected ${expected} (not a regular file)`);
          accessSync(absolute, constants.R_OK);
        } catch (error) {
          if (error instanceof OptionValueError) throw error;
          const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
          throw new OptionValueError(`expected ${expected} (${code})`);
        }
      }
      return absolute;
    },
    format: (value) => value,
  };
}

const DOMAIN_LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** oslo's HostDomain: an IP address, or a host name / FQDN whose labels may contain "_". */
const HOST_DOMAIN_EXPECTED = 'a host name, FQDN or IP address';

export const hostDomain: ValueType<string> = {
  label: 'host domain value',
  expected: HOST_DOMAIN_EXPECTED,
  notes: [],
  convert(raw) {
    if (isIP(raw) !== 0) return raw;
    const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
    const labels = name.split('.');
    const valid =
      name.length > 0 &&
      name.length <= 253 &&
      labels.every((label) => DOMAIN_LABEL.test(label)) &&
      /[A-Za-z_-]/.test(labels[labels.length - 1] ?? '');
    if (!valid) throw expectation(HOST_DOMAIN_EXPECTED);
    return raw;
  },
  format: (value) => value,
};

const IP_EXPECTED = 'an IPv4 or IPv6 address';

export const ipAddress: ValueType<string> = {
  label: 'IP address value',
  expected: IP_EXPECTED,
  notes: [],
  convert(raw) {
    if (isIP(raw) === 0) throw expectation(IP_EXPECTED);
    return raw;
  },
  format: (value) => value,
};

/** A Linux capability name, with or without CAP_, any case; normalized to Docker's "NET_RAW" form. */
const CAPABILITY_EXPECTED = 'a Linux capability name such as CHOWN or CAP_NET_RAW';

export const capability: ValueType<string> = {
  label: 'string value',
  expected: CAPABILITY_EXPECTED,
  notes: [],
  convert(raw) {
    const name = normalizeCapability(raw);
    if (name === undefined) throw expectation(CAPABILITY_EXPECTED);
    return name;
  },
  format: (value) => value,
};

/** Docker's log-opt max-size: a positive integer with an optional k, m or g suffix. */
const LOG_SIZE_EXPECTED = 'a size such as 10m (a positive integer, optionally followed by k, m or g)';

export const logSize: ValueType<string> = {
  label: 'string value',
  expected: LOG_SIZE_EXPECTED,
  notes: [],
  convert(raw) {
    if (!/^[1-9]\d*[kmg]?$/i.test(raw)) throw expectation(LOG_SIZE_EXPECTED);
    return raw.toLowerCase();
  },
  format: (value) => value,
};

// ---------------------------------------------------------------------------------------------------------------
// Options

/** Another (section, name) under which an option used to be known; a missing part means "the same as now". */
export interface DeprecatedName {
  readonly section?: string;
  readonly name?: string;
}

/** Reads already-resolved options, for defaults that depend on other options. */
export interface OptionLookup {
  get(section: string, option: string): unknown;
}

/** A default computed at load time, from the host or from other options. `describe` is shown in the sample. */
export class DerivedDefault<V> {
  constructor(
    readonly describe: string,
    readonly derive: (lookup: OptionLookup) => V,
  ) {}
}

export function derived<V>(describe: string, derive: (lookup: OptionLookup) => V): DerivedDefault<V> {
  return new DerivedDefault(describe, derive);
}

export type OptionDefault<T> =
  | { readonly kind: 'value'; readonly value: T }
  | { readonly kind: 'derived'; readonly derived: DerivedDefault<T> }
  /** No default: the value is null unless set. */
  | { readonly kind: 'none' }
  /** Start-up stops unless it is set. */
  | { readonly kind: 'required' };

export interface Option<T> {
  readonly type: ValueType<unknown>;
  readonly default: OptionDefault<T>;
  readonly help: string;
  readonly secret: boolean;
  /** Multi-valued (oslo MultiStrOpt): every assignment, in every file, adds its values. */
  readonly multi: boolean;
  readonly deprecatedNames: readonly DeprecatedName[];
}

interface OptionSpec {
  readonly help: string;
  readonly secret?: boolean;
  readonly deprecatedNames?: readonly DeprecatedName[];
}

/** An option with a default (a value, or `derived(...)`). The type alone decides V, so choices stay literal. */
export function option<V>(
  type: ValueType<V>,
  spec: OptionSpec & { readonly default: NoInfer<V> | DerivedDefault<NoInfer<V>> },
): Option<V>;
/** A required option. */
export function option<V>(type: ValueType<V>, spec: OptionSpec & { readonly required: true }): Option<V>;
/** An optional option: null unless set; an empty value also means unset. */
export function option<V>(type: ValueType<V>, spec: OptionSpec): Option<V | null>;
export function option<V>(
  type: ValueType<V>,
  spec: OptionSpec & { readonly default?: V | DerivedDefault<V>; readonly required?: true },
): Option<V | null> {
  return makeOption(type, spec, false);
}

/** A multi-valued option whose values are lists: each assignment is split on commas and all are concatenated. */
export function multiOption<V>(
  type: ValueType<readonly V[]>,
  spec: OptionSpec & { readonly default: readonly V[] },
): Option<readonly V[]> {
  return makeOption(type, spec, true) as Option<readonly V[]>;
}

function makeOption<V>(
  type: ValueType<V>,
  spec: OptionSpec & { readonly default?: V | DerivedDefault<V>; readonly required?: true },
  multi: boolean,
): Option<V | null> {
  let defaultValue: OptionDefault<V | null>;
  if (spec.required === true) defaultValue = { kind: 'required' };
  else if (spec.default instanceof DerivedDefault) defaultValue = { kind: 'derived', derived: spec.default };
  else if (spec.default !== undefined) defaultValue = { kind: 'value', value: spec.default };
  else defaultValue = { kind: 'none' };
  return {
    type: type as ValueType<unknown>,
    default: defaultValue,
    help: spec.help,
    secret: spec.secret ?? false,
    multi,
    deprecatedNames: spec.deprecatedNames ?? [],
  };
}

/** The TypeScript type of an option's value. */
export type OptionValue<O> = O extends Option<infer T> ? T : never;
