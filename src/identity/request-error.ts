// The errors every OpenStack HTTP client in Berth throws (octokit/request.js style). They carry the method, the URL
// and the response body, never a request header or body: a token or password cannot leak through an error or a log.
import { redactUrl } from '../log';

export interface FailedRequest {
  readonly method: string;
  readonly url: string;
}

export interface FailedResponse {
  readonly status: number;
  /** Parsed JSON when the body was JSON, else the text (truncated), else null. */
  readonly body: unknown;
  /** The service's `x-openstack-request-id` / `openstack-request-id`, for correlating with its logs. */
  readonly requestId: string | null;
}

/** A non-2xx answer from a service. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  readonly status: number;
  readonly request: FailedRequest;
  readonly response: FailedResponse;

  constructor(request: FailedRequest, response: FailedResponse) {
    const safe = { method: request.method, url: redactUrl(request.url) };
    super(`${safe.method} ${safe.url} returned ${response.status}${describeBody(response.body)}`);
    this.status = response.status;
    this.request = safe;
    this.response = response;
  }

  /** The first OpenStack error code (`placement.concurrent_update`, …) of an `{"errors": [...]}` body. */
  get errorCode(): string | null {
    const errors = (this.response.body as { errors?: unknown } | null)?.errors;
    if (!Array.isArray(errors)) return null;
    const code = (errors[0] as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : null;
  }
}

/** The request never got an HTTP answer: refused, reset, DNS, TLS, or timed out. */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  readonly request: FailedRequest;
  /** Node's error code (`ECONNREFUSED`, `ECONNRESET`, …) or `ETIMEDOUT` for our own timeouts. */
  readonly code: string;
  readonly timedOut: boolean;

  constructor(request: FailedRequest, code: string, detail: string) {
    const safe = { method: request.method, url: redactUrl(request.url) };
    super(`${safe.method} ${safe.url} failed: ${detail}`);
    this.request = safe;
    this.code = code;
    this.timedOut = code === 'ETIMEDOUT';
  }
}

/** A 2xx answer whose body is not what the API documents (bad JSON, missing fields). */
export class InvalidResponse extends Error {
  override readonly name = 'InvalidResponse';
  readonly request: FailedRequest;
  readonly status: number;

  constructor(request: FailedRequest, status: number, detail: string) {
    const safe = { method: request.method, url: redactUrl(request.url) };
    super(`${safe.method} ${safe.url} returned ${status} with an invalid body: ${detail}`);
    this.request = safe;
    this.status = status;
  }
}

function describeBody(body: unknown): string {
  if (body === null || body === undefined || body === '') return '';
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return `: ${text.length > 500 ? `${text.slice(0, 500)}…` : text}`;
}
