// Keystone v3 token responses for nock-based tests of the identity, placement and image clients.
import nock from 'nock';
export { collectingLogger } from './log-capture';
import { KeystoneSession, type KeystoneSessionDeps } from '../../../src/identity/keystone-session';
import type { KeystoneAuthOptions } from '../../../src/identity/auth-options';

export const KEYSTONE = 'http://127.0.0.1:35357';
export const PLACEMENT = 'http://127.0.0.1:38778';
export const GLANCE = 'http://127.0.0.1:39292';
export const PASSWORD = 'pw-Sup3r-s3cret';

export const PASSWORD_AUTH: KeystoneAuthOptions = {
  auth_type: 'password',
  auth_url: `${KEYSTONE}/v3`,
  username: 'nova',
  password: PASSWORD,
  user_domain_name: 'Default',
  project_name: 'service',
  project_domain_name: 'Default',
  region_name: 'RegionOne',
};

export function v3Catalog(): unknown[] {
  const endpoints = (url: string, region = 'RegionOne') =>
    ['public', 'internal', 'admin'].map((iface, i) => ({
      id: `${url}-${i}`,
      interface: iface,
      region_id: region,
      region,
      url: iface === 'internal' ? url : `${url.replace('127.0.0.1', '127.0.0.2')}`,
    }));
  return [
    { id: 'k', type: 'identity', name: 'keystone', endpoints: endpoints(KEYSTONE) },
    { id: 'p', type: 'placement', name: 'placement', endpoints: endpoints(PLACEMENT) },
    { id: 'g', type: 'image', name: 'glance', endpoints: endpoints(`${GLANCE}/v2`) },
  ];
}

export interface TokenBodyOptions {
  readonly issuedAt?: Date;
  readonly lifetimeSeconds?: number;
  readonly catalog?: unknown[];
}

export function tokenBody(options: TokenBodyOptions = {}): Record<string, unknown> {
  const issued = options.issuedAt ?? new Date();
  const expires = new Date(issued.getTime() + (options.lifetimeSeconds ?? 3600) * 1000);
  const iso = (d: Date) => d.toISOString().replace('Z', '000Z');
  return {
    token: {
      methods: ['password'],
      user: { domain: { id: 'default', name: 'Default' }, id: 'nova-user-id', name: 'nova' },
      audit_ids: ['a1'],
      issued_at: iso(issued),
      expires_at: iso(expires),
      project: { domain: { id: 'default', name: 'Default' }, id: 'service-project-id', name: 'service' },
      is_domain: false,
      roles: [{ id: 'r', name: 'admin' }],
      catalog: options.catalog ?? v3Catalog(),
    },
  };
}

/** Intercepts `times` token requests, answering with tokens tok-1, tok-2, …; returns what it received. */
export function interceptTokens(
  times = 1,
  options: TokenBodyOptions = {},
): { bodies: unknown[]; headers: Array<Record<string, string | string[]>>; scope: nock.Scope } {
  const bodies: unknown[] = [];
  const headers: Array<Record<string, string | string[]>> = [];
  let n = 0;
  const scope = nock(KEYSTONE)
    .post('/v3/auth/tokens')
    .times(times)
    .reply(function (_uri, body) {
      bodies.push(body);
      headers.push(this.req.headers);
      n += 1;
      return [201, tokenBody(options), { 'X-Subject-Token': `tok-${n}`, 'Content-Type': 'application/json' }];
    });
  return { bodies, headers, scope };
}

export function passwordSession(
  deps: KeystoneSessionDeps = {},
  extra: Partial<KeystoneAuthOptions> = {},
): KeystoneSession {
  return new KeystoneSession({ ...PASSWORD_AUTH, ...extra }, deps);
}

/**
 * nock intercepts every HTTP request of the process from the moment it is loaded, which breaks the real-server
 * tests that run in the same mocha process; each nock suite switches it on for itself and off again.
 */
export function useNock(): void {
  before(() => {
    if (!nock.isActive()) nock.activate();
    nock.disableNetConnect();
  });
  after(() => {
    nock.cleanAll();
    nock.enableNetConnect();
    nock.restore();
  });
}
