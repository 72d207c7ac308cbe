// keystoneauth1's conf options (auth plugin + session + adapter), as Nova registers them in [placement],
// [service_user] and [glance], and the check that a section holds enough of them to get a token.
import { ConfigError } from './config-error';
import { boolean, choice, integer, list, option, path, string, url, type OptionValue } from './option-types';

export const AUTH_TYPES = ['password', 'v3password', 'v3applicationcredential', 'applicationcredential'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

/** The options that make up the credential (the rest say how to reach the service). */
export const KEYSTONE_CREDENTIAL_OPTIONS = [
  'auth_type',
  'auth_url',
  'username',
  'user_id',
  'password',
  'user_domain_name',
  'user_domain_id',
  'project_name',
  'project_id',
  'project_domain_name',
  'project_domain_id',
  'domain_name',
  'domain_id',
  'default_domain_name',
  'default_domain_id',
  'system_scope',
  'application_credential_id',
  'application_credential_name',
  'application_credential_secret',
] as const;

/** The keystoneauth options of a section that talks to `service`; `credentialNote` is appended to auth_type's help. */
export function keystoneAuthOptions(service: string, credentialNote = '') {
  return {
    auth_type: option(choice(AUTH_TYPES), {
      help:
        `How Berth gets a Keystone token for ${service}: password or v3password (Keystone v3 password), ` +
        `v3applicationcredential or applicationcredential (application credential).${credentialNote}`,
      deprecatedNames: [{ name: 'auth_plugin' }],
    }),
    auth_url: option(url(['http', 'https']), { help: 'Keystone v3 endpoint, e.g. http://127.0.0.1:5000/v3.' }),
    username: option(string(), { help: 'User name.', deprecatedNames: [{ name: 'user_name' }] }),
    user_id: option(string(), { help: 'User ID (instead of username and user domain).' }),
    password: option(string(), { help: "The user's password.", secret: true }),
    user_domain_name: option(string(), { help: "Name of the user's domain." }),
    user_domain_id: option(string(), { help: "ID of the user's domain." }),
    project_name: option(string(), {
      help: 'Project to scope the token to.',
      deprecatedNames: [{ name: 'tenant_name' }],
    }),
    project_id: option(string(), {
      help: 'Project ID to scope the token to.',
      deprecatedNames: [{ name: 'tenant_id' }],
    }),
    project_domain_name: option(string(), { help: "Name of the project's domain." }),
    project_domain_id: option(string(), { help: "ID of the project's domain." }),
    domain_name: option(string(), { help: 'Domain to scope the token to (instead of a project).' }),
    domain_id: option(string(), { help: 'Domain ID to scope the token to (instead of a project).' }),
    default_domain_name: option(string(), {
      help: "Domain of the user and the project when user_domain_* or project_domain_* are not set.",
    }),
    default_domain_id: option(string(), { help: 'Like default_domain_name, by ID.' }),
    system_scope: option(choice(['all']), {
      help: 'Scope the token to the whole system ("all") instead of a project.',
    }),
    application_credential_id: option(string(), { help: 'Application credential ID.' }),
    application_credential_name: option(string(), { help: 'Application credential name (needs the user).' }),
    application_credential_secret: option(string(), { help: 'Application credential secret.', secret: true }),
    region_name: option(string(), { help: 'Region whose endpoints to take from the service catalog.' }),
    valid_interfaces: option(list(choice(['internal', 'public', 'admin']), 'endpoint interfaces'), {
      default: ['internal', 'public'],
      help: 'Catalog endpoint interfaces to use, in order of preference.',
    }),
    endpoint_override: option(url(['http', 'https']), {
      help: 'An endpoint to use instead of the one in the service catalog.',
    }),
    cafile: option(path({ readableFile: true }), { help: 'PEM CA bundle to verify HTTPS servers with.' }),
    certfile: option(path({ readableFile: true }), { help: 'PEM client certificate.' }),
    keyfile: option(path({ readableFile: true }), { help: 'PEM client key.' }),
    insecure: option(boolean, { default: false, help: 'Do not verify HTTPS server certificates (tests only).' }),
    timeout: option(integer({ min: 1 }), { help: 'HTTP request timeout in seconds (unset: no timeout).' }),
  };
}

type KeystoneAuthSchema = ReturnType<typeof keystoneAuthOptions>;

/** The keystoneauth values of one section, as the identity client takes them. */
export type KeystoneAuthConfig = { readonly [K in keyof KeystoneAuthSchema]: OptionValue<KeystoneAuthSchema[K]> };

/** True when the section sets any credential option. */
export function hasCredential(auth: KeystoneAuthConfig): boolean {
  return KEYSTONE_CREDENTIAL_OPTIONS.some((name) => auth[name] !== null);
}

/**
 * Stops start-up unless the section holds a complete credential for its auth_type (the rules of keystoneauth's v3
 * plugins, which src/identity applies too). `why` says what needs the credential.
 */
export function checkCredential(section: string, auth: KeystoneAuthConfig, why: string): void {
  const fail = (message: string, option: string): ConfigError =>
    new ConfigError(`[${section}] ${message}`, { section, option });
  // "username (or user_id)" names the option username.
  const missing = (name: string, when: string): ConfigError =>
    fail(`${name} is required ${when}`, name.split(' ')[0] as string);
  const type = auth.auth_type;
  if (type === null) throw missing('auth_type', `(${why})`);
  const forType = `when auth_type = ${type}`;
  if (auth.auth_url === null) throw missing('auth_url', forType);
  const hasUser = auth.user_id !== null || auth.username !== null;
  const defaultDomain = auth.default_domain_name !== null || auth.default_domain_id !== null;
  const userDomainKnown =
    auth.user_id !== null || auth.user_domain_name !== null || auth.user_domain_id !== null || defaultDomain;

  if (type === 'password' || type === 'v3password') {
    if (auth.password === null) throw missing('password', forType);
    if (!hasUser) throw missing('username (or user_id)', forType);
    if (!userDomainKnown) throw missing('user_domain_name (or user_domain_id)', 'with username');
    const projectScope = auth.project_name !== null || auth.project_id !== null;
    const domainScope = auth.domain_name !== null || auth.domain_id !== null;
    if (projectScope && domainScope) {
      throw fail('a token is scoped to a project or to a domain: set project_* or domain_*, not both', 'domain_name');
    }
    if (
      auth.project_name !== null &&
      auth.project_id === null &&
      auth.project_domain_name === null &&
      auth.project_domain_id === null &&
      !defaultDomain
    ) {
      throw missing('project_domain_name (or project_domain_id)', 'with project_name');
    }
    if (!projectScope && !domainScope && auth.system_scope === null) {
      throw missing('project_name (or project_id or system_scope)', `${forType}: Berth needs a scoped token`);
    }
    return;
  }
  if (auth.application_credential_secret === null) throw missing('application_credential_secret', forType);
  if (auth.application_credential_id === null) {
    if (auth.application_credential_name === null) throw missing('application_credential_id (or _name)', forType);
    if (!hasUser) throw missing('username (or user_id)', 'with application_credential_name');
    if (!userDomainKnown) throw missing('user_domain_name (or user_domain_id)', 'with username');
  }
}
