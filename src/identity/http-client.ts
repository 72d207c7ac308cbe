// The one HTTP transport under the Keystone, Placement and Glance clients: axios with immutable defaults
// (`defaults()` returns a new client), a timeout on every request, TLS from keystoneauth's session options, and
// typed errors (request-error.ts) instead of axios errors, which would carry our headers and so the token.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { pipeline, Transform, type Readable } from 'node:stream';
import axios, { type AxiosInstance, type AxiosResponse, type RawAxiosRequestHeaders } from 'axios';
import { redactUrl, silentLogger, type Logger } from '../log';
import { ConnectionError, InvalidResponse, RequestError, type FailedRequest } from './request-error';

/** keystoneauth has no default timeout; we never wait forever on a service. */
export const DEFAULT_TIMEOUT_SECONDS = 60;
/** A JSON answer larger than this is not an OpenStack API answer; refuse it instead of buffering it. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** How much of an error body we keep (streams are drained only this far). */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** keystoneauth session options (`cafile`, `certfile`, `keyfile`, `insecure`). */
export interface TlsOptions {
  readonly cafile?: string;
  readonly certfile?: string;
  readonly keyfile?: string;
  /** Skip certificate verification (default false: verified). */
  readonly insecure?: boolean;
}

export interface HttpClientOptions {
  readonly timeoutMs?: number;
  readonly tls?: TlsOptions;
  readonly headers?: Readonly<Record<string, string>>;
  readonly logger?: Logger;
}

export interface HttpRequest {
  readonly method: HttpMethod;
  /** Absolute URL. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A JSON body; Content-Type defaults to application/json. */
  readonly json?: unknown;
  /** A streamed raw body (uploads); never buffered. */
  readonly body?: Readable;
  /** Resolve with the body as a Readable instead of parsed JSON. */
  readonly stream?: boolean;
  readonly timeoutMs?: number;
  /** Extra fields for the debug log line (request_id, instance_uuid). */
  readonly log?: Readonly<Record<string, unknown>>;
}

export interface HttpResponse<T> {
  readonly status: number;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly data: T;
}

interface Defaults {
  readonly timeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly logger: Logger;
}

export class HttpClient {
  private constructor(
    private readonly axios: AxiosInstance,
    private readonly settings: Defaults,
  ) {}

  static create(options: HttpClientOptions = {}): HttpClient {
    const tls = options.tls ?? {};
    // No keep-alive: the control plane's uwsgi http-socket closes every connection, and reusing a socket the
    // server is closing turns into a spurious ECONNRESET.
    const instance = axios.create({
      httpAgent: new http.Agent({ keepAlive: false }),
      httpsAgent: new https.Agent({
        keepAlive: false,
        rejectUnauthorized: tls.insecure !== true,
        ...(tls.cafile === undefined ? {} : { ca: fs.readFileSync(tls.cafile) }),
        ...(tls.certfile === undefined ? {} : { cert: fs.readFileSync(tls.certfile) }),
        ...(tls.keyfile === undefined ? {} : { key: fs.readFileSync(tls.keyfile) }),
      }),
      // No redirects: follow-redirects would buffer streamed uploads to replay them.
      maxRedirects: 0,
      // -1, not Infinity: any limit wraps response streams in another layer; ours are enforced in readText.
      maxBodyLength: -1,
      maxContentLength: -1,
      // Endpoints come from config and the catalog only; no proxy from the environment.
      proxy: false,
      validateStatus: () => true,
      transformResponse: [(data: unknown) => data],
      transitional: { clarifyTimeoutError: true, silentJSONParsing: false, forcedJSONParsing: false },
    });
    return new HttpClient(
      instance,
      Object.freeze({
        timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_SECONDS * 1000,
        headers: Object.freeze({ ...options.headers }),
        logger: options.logger ?? silentLogger(),
      }),
    );
  }

  /** A new client with these headers layered over ours (same transport); this one is unchanged. */
  defaults(options: { readonly headers: Readonly<Record<string, string>> }): HttpClient {
    return new HttpClient(
      this.axios,
      Object.freeze({
        timeoutMs: this.settings.timeoutMs,
        headers: Object.freeze({ ...this.settings.headers, ...options.headers }),
        logger: this.settings.logger,
      }),
    );
  }

  /** Sends one request. Resolves on 2xx; rejects with RequestError, ConnectionError or InvalidResponse. */
  async request<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
    const failed: FailedRequest = { method: req.method, url: req.url };
    const headers: Record<string, string> = { ...this.settings.headers, ...req.headers };
    if (req.json !== undefined && !hasHeader(headers, 'content-type')) headers['Content-Type'] = 'application/json';
    const timeoutMs = req.timeoutMs ?? this.settings.timeoutMs;
    const upload = req.body === undefined ? undefined : watchUpload(req.body, timeoutMs);
    let sourceError: unknown;
    req.body?.once('error', (err) => {
      sourceError = err;
    });
    const started = Date.now();
    let res: AxiosResponse<unknown>;
    try {
      res = await this.axios.request<unknown>({
        method: req.method,
        url: req.url,
        headers: headers as RawAxiosRequestHeaders,
        data: req.json !== undefined ? JSON.stringify(req.json) : upload?.body,
        // axios's timeout is wall-clock until the response: an upload is watched for progress instead.
        timeout: upload === undefined ? timeoutMs : 0,
        ...(upload === undefined ? {} : { signal: upload.signal }),
        responseType: 'stream',
      });
    } catch (err) {
      // The caller's own stream failed (e.g. the snapshot source): that error, not a connection error.
      if (sourceError !== undefined) throw sourceError;
      if (upload?.signal.aborted === true) {
        throw new ConnectionError(failed, 'ETIMEDOUT', `no progress for ${timeoutMs} ms`);
      }
      throw toConnectionError(failed, err);
    } finally {
      upload?.stop();
    }
    const status = res.status;
    const resHeaders = plainHeaders(res.headers);
    const body = res.data as Readable;
    abortWhenIdle(res, body, failed, timeoutMs);
    this.settings.logger.debug(
      {
        ...req.log,
        method: req.method,
        url: redactUrl(req.url),
        status,
        duration_ms: Date.now() - started,
        openstack_request_id: openstackRequestId(resHeaders),
      },
      'http request',
    );

    if (status < 200 || status > 299) {
      const text = await readText(body, MAX_ERROR_BODY_BYTES, failed, status).catch(() => '');
      throw new RequestError(failed, { status, body: parseLenient(text), requestId: openstackRequestId(resHeaders) });
    }
    if (req.stream === true) return { status, headers: resHeaders, data: body as T };
    const text = await readText(body, MAX_JSON_BYTES, failed, status);
    if (text === '') return { status, headers: resHeaders, data: null as T };
    try {
      return { status, headers: resHeaders, data: JSON.parse(text) as T };
    } catch {
      throw new InvalidResponse(failed, status, 'not JSON');
    }
  }
}

/** `openstack-request-id` (placement) or `x-openstack-request-id` (keystone, glance) of a response. */
export function openstackRequestId(headers: Readonly<Record<string, string>>): string | null {
  return headers['openstack-request-id'] ?? headers['x-openstack-request-id'] ?? null;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

function plainHeaders(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (typeof value === 'string') out[key.toLowerCase()] = value;
    else if (typeof value === 'number') out[key.toLowerCase()] = String(value);
    else if (Array.isArray(value)) out[key.toLowerCase()] = value.join(', ');
  }
  return out;
}

function parseLenient(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  }
}

/**
 * Passes an upload body through a progress watchdog: when no chunk moves for `timeoutMs` (the server stopped
 * reading), or the response does not start within `timeoutMs` after the last byte, the request is aborted.
 */
function watchUpload(source: Readable, timeoutMs: number): { body: Readable; signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const reset = (): void => {
    clearTimeout(timer);
    if (timeoutMs > 0) timer = setTimeout(() => controller.abort(), timeoutMs);
  };
  const body = new Transform({
    transform(chunk, _encoding, done) {
      reset();
      done(null, chunk);
    },
    flush(done) {
      reset();
      done();
    },
  });
  reset();
  // A failing source destroys `body` with its error, which aborts the request.
  pipeline(source, body, () => undefined);
  return { body, signal: controller.signal, stop: () => clearTimeout(timer) };
}

/**
 * axios stops enforcing its timeout once the headers are in; the socket's idle timer keeps firing, so a body that
 * stalls for `timeoutMs` is destroyed with a ConnectionError (ETIMEDOUT) instead of hanging its reader forever.
 */
function abortWhenIdle(res: AxiosResponse<unknown>, body: Readable, failed: FailedRequest, timeoutMs: number): void {
  const req = res.request as http.ClientRequest | undefined;
  if (req === undefined || typeof req.on !== 'function' || timeoutMs <= 0) return;
  req.setTimeout(timeoutMs);
  req.on('timeout', () => {
    body.destroy(new ConnectionError(failed, 'ETIMEDOUT', `no data for ${timeoutMs} ms`));
    req.destroy();
  });
}

/** Reads a body up to `limit` bytes; an error body is cut there, a JSON body past it is an InvalidResponse. */
async function readText(body: Readable, limit: number, failed: FailedRequest, status: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buf.length;
      if (size > limit) {
        chunks.push(buf.subarray(0, buf.length - (size - limit)));
        body.destroy();
        if (limit === MAX_ERROR_BODY_BYTES) break;
        throw new InvalidResponse(failed, status, `body larger than ${limit} bytes`);
      }
      chunks.push(buf);
    }
  } catch (err) {
    if (err instanceof InvalidResponse) throw err;
    throw toConnectionError(failed, err);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Maps axios / socket errors to ConnectionError with only a code and a message (no config, no headers). */
export function toConnectionError(failed: FailedRequest, err: unknown): ConnectionError {
  if (err instanceof ConnectionError) return err;
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : 'EIO';
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : code;
  return new ConnectionError(failed, code, message);
}
