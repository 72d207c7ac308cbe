// The oslo message envelope (format 2.0, double-encoded JSON) and the AMQP properties kombu puts on every message.
// We always send 2.0; we accept 2.0 and bare 1.0 dicts, like oslo's deserialize_msg. Protocol: §1.3–1.4.
import type { Options } from 'amqplib';
import { EnvelopeError } from './errors';

export const ENVELOPE_VERSION = '2.0';
const VERSION_KEY = 'oslo.version';
const MESSAGE_KEY = 'oslo.message';

/** kombu Producer.publish properties; `expiration` (ms, as a string) only on CALL requests. */
export function messageProperties(expirationMs?: number): Options.Publish {
  const props: Options.Publish = {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    deliveryMode: 2,
    priority: 0,
    headers: {},
  };
  if (expirationMs !== undefined) props.expiration = String(Math.max(0, Math.round(expirationMs)));
  return props;
}

/** The 2.0 envelope: `{"oslo.version": "2.0", "oslo.message": "<inner JSON>"}`. */
export function encodeEnvelope(message: Readonly<Record<string, unknown>>): Buffer {
  return Buffer.from(JSON.stringify({ [VERSION_KEY]: ENVELOPE_VERSION, [MESSAGE_KEY]: JSON.stringify(message) }), 'utf8');
}

/** A bare 1.0 message (notification driver `messaging`). */
export function encodeBare(message: Readonly<Record<string, unknown>>): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Python's type name of a JSON value, for messages that read like the exception Python would raise. */
export function pythonTypeName(value: unknown): string {
  if (value === null || value === undefined) return 'NoneType';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'string') return 'str';
  if (Array.isArray(value)) return 'list';
  return 'dict';
}

/** JSON text of a decoded value for logs and keys; a value nested too deeply to print does not throw. */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return `<${pythonTypeName(value)} nested too deeply to print>`;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new EnvelopeError((err as Error).message, 'JSONDecodeError', 'json.decoder');
  }
}

// Envelope 2.x with minor 0 is what oslo's version_is_compatible('2.0', v) accepts.
function envelopeVersionSupported(version: string): boolean {
  return /^2\.0+(?:\.0+)?$/.test(version);
}

/** Unwraps a parsed AMQP body: the inner message of a 2.0 envelope, or a bare (1.0) dict as it is. */
export function decodeEnvelope(body: unknown): Record<string, unknown> {
  if (!isPlainObject(body)) {
    throw new EnvelopeError(`message body is a JSON ${pythonTypeName(body)}, not an object`, 'TypeError', 'builtins');
  }
  if (!(VERSION_KEY in body && MESSAGE_KEY in body)) return body;
  const version = body[VERSION_KEY];
  if (typeof version !== 'string') {
    throw new EnvelopeError(`'${pythonTypeName(version)}' object has no attribute 'split'`, 'AttributeError', 'builtins');
  }
  if (!envelopeVersionSupported(version)) {
    throw new EnvelopeError(
      `Specified RPC envelope version, ${version}, not supported by this endpoint.`,
      'UnsupportedRpcEnvelopeVersion',
      'oslo_messaging._drivers.common',
    );
  }
  const encoded = body[MESSAGE_KEY];
  if (typeof encoded !== 'string') {
    throw new EnvelopeError(
      `the JSON object must be str, bytes or bytearray, not ${pythonTypeName(encoded)}`,
      'TypeError',
      'builtins',
    );
  }
  const inner = parseJson(encoded);
  if (!isPlainObject(inner)) {
    throw new EnvelopeError(`oslo.message is a JSON ${pythonTypeName(inner)}, not an object`, 'TypeError', 'builtins');
  }
  return inner;
}

/** Parses the raw AMQP body (UTF-8 JSON) and unwraps it. */
export function decodeBody(content: Buffer): Record<string, unknown> {
  return decodeEnvelope(parseJson(content.toString('utf8')));
}
