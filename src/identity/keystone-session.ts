// A Keystone v3 session (keystoneauth's Session + auth plugin + Adapter endpoint options in one): it authenticates
// with the configured credentials, caches the token and renews it before it expires, shares one in-flight
// authentication between concurrent callers, finds endpoints in the token's catalog, and re-authenticates once when
// a service answers 401. Tokens and passwords never reach an error or a log line.
import { redactUrl, silentLogger, type Logger } from '../log';
import { compileAuth, type CompiledAuth, type KeystoneAuthOptions } from './auth-options';
import { DEFAULT_TIMEOUT_SECONDS, HttpClient } from './http-client';
import { withoutNulls, type WithoutNulls } from './unset-options';
import { InvalidResponse, RequestError } from './request-error';
import { DEFAULT_VALID_INTERFACES, EndpointNotFound, selectEndpoint } from './service-catalog';

/** keystoneauth's MIN_TOKEN_LIFE_SECONDS: a token closer than this to expiry is renewed first. */
export const DEFAULT_RENEW_BEFORE_EXPIRY_SECONDS = 120;

export interface KeystoneSessionDeps {
  readonly logger?: Logger;
  readonly renewBeforeExpirySeconds?: number;
  /** The clock (ms since the epoch); tests move it. */
  readonly now?: () => number;
}

/** What a successful authentication gave us. */
export interface AccessInfo {
  readonly token: string;
  /** `expires_at` as Keystone sent it. */
  readonly expiresAt: string;
  readonly catalog: readonly unknown[];
  readonly userId: string | null;
  readonly projectId: string | null;
}

export interface EndpointQuery {
  readonly serviceType: string;
  /** Default: the session's valid_interfaces. */
  readonly interfaces?: readonly string[];
  /** Default: the session's region_name. */
  readonly region?: string;
}

interface CachedAccess {
  readonly access: AccessInfo;
  /** Our clock (ms) after which the token is renewed before use. */
  readonly renewAt: number;
}

export class KeystoneSession {
  /** The transport (TLS, timeout) for this section's services; clients derive theirs with `defaults()`. */
  readonly http: HttpClient;
  private readonly options: WithoutNulls<KeystoneAuthOptions>;
  private readonly auth: CompiledAuth;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly renewMarginMs: number;
  private cached: CachedAccess | null = null;
  private inflight: Promise<AccessInfo> | null = null;

  /** Options as a config section holds them (null = unset); invalid combinations throw InvalidAuthOptions. */
  constructor(options: KeystoneAuthOptions, deps: KeystoneSessionDeps = {}) {
    this.options = withoutNulls(options);
    this.auth = compileAuth(options);
    this.logger = deps.logger ?? silentLogger();
    this.now = deps.now ?? Date.now;
    this.renewMarginMs = (deps.renewBeforeExpirySeconds ?? DEFAULT_RENEW_BEFORE_EXPIRY_SECONDS) * 1000;
    this.http = HttpClient.create({
      timeoutMs: (this.options.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
      tls: this.options,
      logger: this.logger,
    });
    if (this.auth.ignored.length > 0) {
      this.logger.warn(
        { auth_type: this.options.auth_type, ignored: this.auth.ignored },
        'options that do not apply to this auth_type are ignored',
      );
    }
  }

  /** A valid token, authenticating first when there is none or it expires within the renewal margin. */
  async getToken(): Promise<string> {
    return (await this.getAccess()).token;
  }

  async getAccess(): Promise<AccessInfo> {
    if (this.cached !== null && this.now() < this.cached.renewAt) return this.cached.access;
    if (this.inflight === null) {
      this.inflight = this.authenticate().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  /**
   * Forgets the cached token so the next caller authenticates. With `token`, only when that is still the cached
   * one: many requests failing with the same stale token cause one re-authentication, not many.
   */
  invalidate(token?: string): boolean {
    if (this.cached === null) return false;
    if (token !== undefined && this.cached.access.token !== token) return false;
    this.cached = null;
    return true;
  }

  /** The endpoint for a service: endpoint_override if configured, else the token's catalog. */
  async getEndpoint(query: EndpointQuery): Promise<string> {
    if (this.options.endpoint_override !== undefined) return this.options.endpoint_override;
    const filter = {
      serviceType: query.serviceType,
      interfaces: query.interfaces ?? this.options.valid_interfaces ?? DEFAULT_VALID_INTERFACES,
      region: query.region ?? this.options.region_name,
    };
    const url = selectEndpoint((await this.getAccess()).catalog, filter);
    if (url === null) throw new EndpointNotFound(filter);
    return url;
  }

  /**
   * Runs `send` with a token; when it fails with 401 (the token was revoked or expired early), invalidates that
   * token and runs `send` once more with a fresh one. `send` must be safe to repeat (no consumed stream body).
   */
  async withToken<T>(send: (token: string) => Promise<T>): Promise<T> {
    const token = await this.getToken();
    try {
      return await send(token);
    } catch (err) {
      if (!(err instanceof RequestError) || err.status !== 401) throw err;
      this.logger.info({ url: err.request.url }, 'service answered 401; re-authenticating once');
      this.invalidate(token);
      return send(await this.getToken());
    }
  }

  private async authenticate(): Promise<AccessInfo> {
    const sentAt = this.now();
    const res = await this.http.request<unknown>({
      method: 'POST',
      url: this.auth.tokenUrl,
      headers: { Accept: 'application/json' },
      json: this.auth.body,
    });
    const access = parseAccess(res.headers['x-subject-token'], res.data, this.auth.tokenUrl, res.status);
    const token = (res.data as { token: { issued_at?: unknown } }).token;
    const expiresMs = Date.parse(access.expiresAt);
    const issuedMs = typeof token.issued_at === 'string' ? Date.parse(token.issued_at) : NaN;
    // Lifetime by Keystone's own clock, so a skewed local clock does not make every call re-authenticate.
    const lifetimeMs = Number.isNaN(issuedMs) ? expiresMs - sentAt : expiresMs - issuedMs;
    const renewAt = sentAt + lifetimeMs - Math.min(this.renewMarginMs, lifetimeMs / 2);
    this.cached = { access, renewAt };
    this.logger.info(
      { auth_url: redactUrl(this.options.auth_url), principal: this.auth.principal, expires_at: access.expiresAt },
      'authenticated to keystone',
    );
    return access;
  }
}

function parseAccess(token: string | undefined, body: unknown, url: string, status: number): AccessInfo {
  const bad = (detail: string): InvalidResponse => new InvalidResponse({ method: 'POST', url }, status, detail);
  if (token === undefined || token === '') throw bad('no X-Subject-Token header');
  const t = (body as { token?: unknown } | null)?.token as Record<string, unknown> | undefined;
  if (typeof t !== 'object' || t === null) throw bad('no token in the body');
  const expiresAt = t['expires_at'];
  if (typeof expiresAt !== 'string' || Number.isNaN(Date.parse(expiresAt))) throw bad('no valid token.expires_at');
  const catalog = Array.isArray(t['catalog']) ? (t['catalog'] as unknown[]) : [];
  const userId = (t['user'] as { id?: unknown } | undefined)?.id;
  const projectId = (t['project'] as { id?: unknown } | undefined)?.id;
  return {
    token,
    expiresAt,
    catalog,
    userId: typeof userId === 'string' ? userId : null,
    projectId: typeof projectId === 'string' ? projectId : null,
  };
}
