// Docker Engine failures → the contract's typed errors. dockerode rejects with an Error carrying `statusCode` for
// HTTP answers, and with a Node socket error (`code`) when the engine cannot be reached.

import { DriverError, InstanceNotFound, RuntimeUnavailable } from '../driver';

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EACCES', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED',
]);

/** OpenSSL verification failures and Node's TLS errors: the engine cannot be trusted, so it is not usable. */
const TLS_ERROR = /^(ERR_TLS|ERR_SSL|EPROTO$)|CERT|UNABLE_TO_|SELF_SIGNED/;

/** The HTTP status of a Docker API failure, or null for transport errors. */
export function dockerStatus(error: unknown): number | null {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : null;
}

/** The engine's own message (`{"message": …}`), else the error's. */
export function dockerMessage(error: unknown): string {
  const json = (error as { json?: unknown } | null)?.json;
  const message = (json as { message?: unknown } | null)?.message;
  if (typeof message === 'string') return message;
  return error instanceof Error ? error.message : String(error);
}

export function isUnavailable(error: unknown): boolean {
  const status = dockerStatus(error);
  if (status !== null) return status >= 500;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (CONNECTION_ERRORS.has(code) || TLS_ERROR.test(code))) return true;
  return error instanceof Error && /socket hang up|certificate|self.signed/i.test(error.message);
}

/**
 * Maps a failed Docker call on an instance's container: 404 → InstanceNotFound, unreachable or 5xx →
 * RuntimeUnavailable, anything else → DriverError. Typed driver errors pass through.
 */
export function toDriverError(error: unknown, operation: string, uuid?: string): DriverError {
  if (error instanceof DriverError) return error;
  const status = dockerStatus(error);
  if (status === 404 && uuid !== undefined) return new InstanceNotFound(uuid, { cause: error });
  if (isUnavailable(error)) {
    return new RuntimeUnavailable(`Docker ${operation} failed: ${dockerMessage(error)}`, { cause: error });
  }
  return new DriverError(`Docker ${operation} failed: ${dockerMessage(error)}`, { cause: error });
}
