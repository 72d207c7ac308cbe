// Keystone v3 auth options, named exactly like keystoneauth's config options so a `[placement]`, `[glance]` or
// `[service_user]` section maps onto them 1:1, and the POST /v3/auth/tokens body they produce (keystoneauth1
// identity/v3/{base,password,application_credential}.py). Compiled and validated once, at construction. An option
// that is null is not set.
import { withoutNulls, type WithoutNulls } from './unset-options';

export type AuthType = 'password' | 'v3password' | 'applicationcredential' | 'v3applicationcredential';

export interface KeystoneAuthOptions {
  /** Required (null only so a config section can be passed as it is). */
  readonly auth_type: AuthType | null;
  /** Required; with or without the `/v3` suffix. */
  readonly auth_url: string | null;
  readonly username?: string | null;
  readonly user_id?: string | null;
  readonly password?: string | null;
  readonly user_domain_name?: string | null;
  readonly user_domain_id?: string | null;
  readonly project_name?: string | null;
  readonly project_id?: string | null;
  readonly project_domain_name?: string | null;
  readonly project_domain_id?: string | null;
  /** Used for the user's and the project's domain when those are not given (keystoneauth generic plugins). */
  readonly default_domain_id?: string | null;
  readonly default_domain_name?: string | null;
  /** Domain scope. */
  readonly domain_id?: string | null;
  readonly domain_name?: string | null;
  /** `all` is the only system scope Keystone has. */
  readonly system_scope?: string | null;
  readonly application_credential_id?: string | null;
  readonly application_credential_name?: string | null;
  readonly application_credential_secret?: string | null;
  readonly region_name?: string | null;
  /** Default `["internal", "public"]`. */
  readonly valid_interfaces?: readonly string[] | null;
  /** Used instead of the catalog for every endpoint this session is asked for. */
  readonly endpoint_override?: string | null;
  readonly cafile?: string | null;
  readonly certfile?: string | null;
  readonly keyfile?: string | null;
  /** Default false: TLS certificates are verified. */
  readonly insecure?: boolean | null;
  /** Seconds, per request. */
  readonly timeout?: number | null;
}

export class InvalidAuthOptions extends Error {
  override readonly name = 'InvalidAuthOptions';
}

export interface CompiledAuth {
  readonly tokenUrl: string;
  /** The JSON body of POST /v3/auth/tokens (contains the secret: never log it). */
  readonly body: Readonly<Record<string, unknown>>;
  /** Who we authenticate as, without secrets, for logs. */
  readonly principal: string;
  /** Options that were set but do not apply to this auth_type (keystoneauth ignores them too). */
  readonly ignored: readonly string[];
}

const SCOPE_OPTIONS = [
  'project_id',
  'project_name',
  'project_domain_id',
  'project_domain_name',
  'domain_id',
  'domain_name',
  'system_scope',
] as const;

export function compileAuth(options: KeystoneAuthOptions): CompiledAuth {
  const o = withoutNulls(options);
  if (o.auth_type === undefined) throw new InvalidAuthOptions('auth_type is not set');
  if (o.auth_url === undefined) throw new InvalidAuthOptions('auth_url is not set');
  const tokenUrl = tokenUrlFor(o.auth_url);
  switch (o.auth_type) {
    case 'password':
    case 'v3password': {
      const user = userRef(o, 'password');
      if (o.password === undefined) throw new InvalidAuthOptions(`auth_type ${o.auth_type} needs password`);
      const scope = scopeOf(o);
      const identity = { methods: ['password'], password: { user: { ...user, password: o.password } } };
      return {
        tokenUrl,
        body: { auth: scope === undefined ? { identity } : { identity, scope } },
        principal: describeUser(user),
        ignored: [],
      };
    }
    case 'applicationcredential':
    case 'v3applicationcredential': {
      if (o.application_credential_secret === undefined) {
        throw new InvalidAuthOptions(`auth_type ${o.auth_type} needs application_credential_secret`);
      }
      let credential: Record<string, unknown>;
      if (o.application_credential_id !== undefined) {
        credential = { id: o.application_credential_id };
      } else if (o.application_credential_name !== undefined) {
        credential = { name: o.application_credential_name, user: userRef(o, 'application credential') };
      } else {
        throw new InvalidAuthOptions(
          `auth_type ${o.auth_type} needs application_credential_id, or application_credential_name and a user`,
        );
      }
      // The scope is part of the application credential; Keystone refuses a requested one.
      const ignored = SCOPE_OPTIONS.filter((key) => o[key] !== undefined);
      return {
        tokenUrl,
        body: {
          auth: {
            identity: {
              methods: ['application_credential'],
              application_credential: { ...credential, secret: o.application_credential_secret },
            },
          },
        },
        principal: `application credential ${o.application_credential_id ?? o.application_credential_name ?? ''}`,
        ignored,
      };
    }
    default:
      throw new InvalidAuthOptions(`unsupported auth_type '${String((o as { auth_type: unknown }).auth_type)}'`);
  }
}

/** `<auth_url>/v3/auth/tokens`, whether or not auth_url already ends in /v3. */
export function tokenUrlFor(authUrl: string): string {
  let url: URL;
  try {
    url = new URL(authUrl);
  } catch {
    throw new InvalidAuthOptions(`auth_url '${authUrl}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidAuthOptions(`auth_url '${authUrl}' is not http(s)`);
  }
  const base = authUrl.replace(/\/+$/, '');
  return /\/v3$/.test(base) ? `${base}/auth/tokens` : `${base}/v3/auth/tokens`;
}

type Options = WithoutNulls<KeystoneAuthOptions>;

type UserRef = { id: string } | { name: string; domain: { id: string } | { name: string } };

function userRef(o: Options, what: string): UserRef {
  if (o.user_id !== undefined) return { id: o.user_id };
  if (o.username === undefined) throw new InvalidAuthOptions(`${what} auth needs user_id or username`);
  const domainId = o.user_domain_id ?? o.default_domain_id;
  const domainName = o.user_domain_name ?? o.default_domain_name;
  if (domainId !== undefined) return { name: o.username, domain: { id: domainId } };
  if (domainName !== undefined) return { name: o.username, domain: { name: domainName } };
  throw new InvalidAuthOptions(`username '${o.username}' needs user_domain_id or user_domain_name`);
}

function scopeOf(o: Options): Record<string, unknown> | undefined {
  const domainScoped = o.domain_id !== undefined || o.domain_name !== undefined;
  const projectScoped = o.project_id !== undefined || o.project_name !== undefined;
  if (domainScoped && projectScoped) {
    throw new InvalidAuthOptions('a token cannot be scoped to both a project and a domain: pick one');
  }
  if (o.domain_id !== undefined) return { domain: { id: o.domain_id } };
  if (o.domain_name !== undefined) return { domain: { name: o.domain_name } };
  if (o.project_id !== undefined) return { project: { id: o.project_id } };
  if (o.project_name !== undefined) {
    const domainId = o.project_domain_id ?? o.default_domain_id;
    const domainName = o.project_domain_name ?? o.default_domain_name;
    if (domainId !== undefined) return { project: { name: o.project_name, domain: { id: domainId } } };
    if (domainName !== undefined) return { project: { name: o.project_name, domain: { name: domainName } } };
    throw new InvalidAuthOptions(`project_name '${o.project_name}' needs project_domain_id or project_domain_name`);
  }
  if (o.system_scope !== undefined) {
    if (o.system_scope !== 'all') throw new InvalidAuthOptions(`system_scope must be 'all', not '${o.system_scope}'`);
    return { system: { all: true } };
  }
  return undefined;
}

function describeUser(user: UserRef): string {
  if ('id' in user) return `user id ${user.id}`;
  const domain = 'id' in user.domain ? `domain id ${user.domain.id}` : `domain ${user.domain.name}`;
  return `user ${user.name} (${domain})`;
}
