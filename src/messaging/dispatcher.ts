// oslo's RPCDispatcher: pick the endpoint for a request by namespace and version, and fail the way Python fails
// (NoSuchMethod, UnsupportedVersion, or the builtins error the same bad input raises in Python). Protocol: §1.7.
import { isPlainObject, jsonText, pythonTypeName } from './envelope';
import { RemoteFailure } from './failure';
import type { RpcEndpoint, RpcHandler } from './types';

const DISPATCHER_MODULE = 'oslo_messaging.rpc.dispatcher';

/** A failure as Python's serialize_remote_exception writes it; `tb` is the exception line, without fabricated frames. */
export function pythonException(className: string, module: string, message: string): RemoteFailure {
  const qualified = module === 'builtins' ? className : `${module}.${className}`;
  return new RemoteFailure(className, module, message, { args: [message], kwargs: {}, tb: [`${qualified}: ${message}\n`] });
}

/** `str(value)` of a JSON value as Python prints it, for exception texts. */
function pythonStr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return value;
  return jsonText(value);
}

function pythonRepr(text: string): string {
  const escaped = text.replace(/\\/g, '\\\\');
  return text.includes("'") && !text.includes('"') ? `"${escaped}"` : `'${escaped.replace(/'/g, "\\'")}'`;
}

export function noSuchMethod(method: string): RemoteFailure {
  return pythonException('NoSuchMethod', DISPATCHER_MODULE, `Endpoint does not support RPC method ${method}`);
}

export function unsupportedVersion(version: unknown, method: unknown): RemoteFailure {
  let message = `Endpoint does not support RPC version ${pythonStr(version)}`;
  if (method) message += `. Attempted method: ${pythonStr(method)}`;
  return pythonException('UnsupportedVersion', DISPATCHER_MODULE, message);
}

// Python's int(text): optional blanks and sign, digits with single underscores between them.
function pyInt(text: string): number {
  if (!/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(text)) {
    throw pythonException('ValueError', 'builtins', `invalid literal for int() with base 10: ${pythonRepr(text)}`);
  }
  return Number.parseInt(text.replace(/_/g, ''), 10);
}

function part(parts: readonly string[], index: number): string {
  const value = parts[index];
  if (value === undefined) throw pythonException('IndexError', 'builtins', 'list index out of range');
  return value;
}

/**
 * oslo_messaging._utils.version_is_compatible: same major, requested minor (and revision) not above the implemented
 * one. A requested version of null is never compatible; a malformed one raises what Python raises.
 */
export function versionIsCompatible(implemented: string, requested: unknown): boolean {
  if (requested === null || requested === undefined) return false;
  if (typeof requested !== 'string') {
    throw pythonException('AttributeError', 'builtins', `'${pythonTypeName(requested)}' object has no attribute 'split'`);
  }
  const want = requested.split('.');
  const have = implemented.split('.');
  const wantRev = want[2] ?? '0';
  const haveRev = have[2] ?? '0';
  if (pyInt(part(want, 0)) !== pyInt(part(have, 0))) return false;
  const wantMinor = pyInt(part(want, 1));
  const haveMinor = pyInt(part(have, 1));
  if (wantMinor > haveMinor) return false;
  if (wantMinor === haveMinor && pyInt(wantRev) > pyInt(haveRev)) return false;
  return true;
}

/** Throws unless every endpoint version is `major.minor[.rev]` (a bad endpoint is a programming error). */
export function validateEndpoints(endpoints: readonly RpcEndpoint[]): void {
  for (const endpoint of endpoints) {
    if (!/^\d+\.\d+(?:\.\d+)?$/.test(endpoint.version)) {
      throw new RangeError(`RPC endpoint version '${endpoint.version}' is not major.minor`);
    }
  }
}

/** The request fields the dispatcher looks at, as decoded (anything may be missing or of the wrong type). */
export interface DispatchRequest {
  readonly method: unknown;
  readonly namespace: unknown;
  readonly version: unknown;
  readonly args: unknown;
}

export interface Dispatch {
  readonly handler: RpcHandler;
  readonly method: string;
  readonly namespace: string | null;
  readonly version: string;
  readonly args: Readonly<Record<string, unknown>>;
}

/** RPCDispatcher.dispatch up to the method call: the handler to run, or the RemoteFailure Python would reply with. */
export function selectEndpoint(endpoints: readonly RpcEndpoint[], request: DispatchRequest): Dispatch {
  const { method, namespace: rawNamespace } = request;
  const namespace = rawNamespace === undefined ? null : rawNamespace;
  const version = request.version === undefined ? '1.0' : request.version;
  let foundCompatible = false;
  for (const endpoint of endpoints) {
    if (endpoint.namespace !== namespace || !versionIsCompatible(endpoint.version, version)) continue;
    if (typeof method !== 'string') {
      throw pythonException('TypeError', 'builtins', `attribute name must be string, not '${pythonTypeName(method)}'`);
    }
    const handler = Object.hasOwn(endpoint.methods, method) ? endpoint.methods[method] : undefined;
    if (typeof handler === 'function') {
      const args = request.args === undefined ? {} : request.args;
      if (!isPlainObject(args)) {
        throw pythonException('AttributeError', 'builtins', `'${pythonTypeName(args)}' object has no attribute 'items'`);
      }
      return { handler, method, namespace: endpoint.namespace, version: version as string, args };
    }
    foundCompatible = true;
  }
  if (foundCompatible) throw noSuchMethod(method as string);
  throw unsupportedVersion(version, method);
}
