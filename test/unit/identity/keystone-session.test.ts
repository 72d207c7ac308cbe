import assert from 'node:assert/strict';
import nock from 'nock';
import { KeystoneSession } from '../../../src/identity/keystone-session';
import { InvalidResponse, RequestError } from '../../../src/identity/request-error';
import { EndpointNotFound } from '../../../src/identity/service-catalog';
import { InvalidAuthOptions } from '../../../src/identity/auth-options';
import {
  collectingLogger,
  interceptTokens,
  KEYSTONE,
  PASSWORD,
  PASSWORD_AUTH,
  PLACEMENT,
  passwordSession,
  tokenBody,
  useNock,
} from './keystone-fixtures';

describe('identity/keystone-session', () => {
  useNock();
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    assert.deepEqual(pending, [], 'every expected request was made');
  });

  describe('getToken', () => {
    it('POSTs the password body as JSON and takes the token from X-Subject-Token', async () => {
      const { bodies, headers } = interceptTokens(1);
      const session = passwordSession();
      assert.equal(await session.getToken(), 'tok-1');
      assert.deepEqual(bodies, [
        {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: 'nova', domain: { name: 'Default' }, password: PASSWORD } },
            },
            scope: { project: { name: 'service', domain: { name: 'Default' } } },
          },
        },
      ]);
      assert.equal(headers[0]?.['content-type'], 'application/json');
      assert.equal(headers[0]?.['accept'], 'application/json');
      const access = await session.getAccess();
      assert.equal(access.userId, 'nova-user-id');
      assert.equal(access.projectId, 'service-project-id');
    });

    it('adds /v3 to an auth_url without it', async () => {
      interceptTokens(1);
      const session = new KeystoneSession({ ...PASSWORD_AUTH, auth_url: KEYSTONE });
      assert.equal(await session.getToken(), 'tok-1');
    });

    it('caches the token: a second call sends nothing', async () => {
      interceptTokens(1);
      const session = passwordSession();
      assert.equal(await session.getToken(), 'tok-1');
      assert.equal(await session.getToken(), 'tok-1', 'a second POST would fail: only one is intercepted');
    });

    it('renews before expiry: 120 s before expires_at by default', async () => {
      const issued = new Date('2030-01-01T00:00:00Z');
      interceptTokens(2, { issuedAt: issued, lifetimeSeconds: 3600 });
      let now = issued.getTime();
      const session = passwordSession({ now: () => now });
      assert.equal(await session.getToken(), 'tok-1');
      now = issued.getTime() + (3600 - 121) * 1000;
      assert.equal(await session.getToken(), 'tok-1', 'still more than the margin left');
      now = issued.getTime() + (3600 - 119) * 1000;
      assert.equal(await session.getToken(), 'tok-2', 'inside the margin: renewed');
    });

    it('a configurable margin; a token shorter-lived than twice the margin is renewed at half-life', async () => {
      const issued = new Date('2030-01-01T00:00:00Z');
      interceptTokens(2, { issuedAt: issued, lifetimeSeconds: 100 });
      let now = issued.getTime();
      const session = passwordSession({ now: () => now, renewBeforeExpirySeconds: 300 });
      assert.equal(await session.getToken(), 'tok-1');
      now += 49_000;
      assert.equal(await session.getToken(), 'tok-1');
      now += 2_000;
      assert.equal(await session.getToken(), 'tok-2');
    });

    it('measures the lifetime by Keystone clock, so local clock skew does not cause re-authentication', async () => {
      const keystoneNow = new Date('2030-01-01T00:00:00Z');
      interceptTokens(1, { issuedAt: keystoneNow, lifetimeSeconds: 3600 });
      const local = keystoneNow.getTime() + 2 * 3600 * 1000; // our clock is two hours ahead
      let now = local;
      const session = passwordSession({ now: () => now });
      assert.equal(await session.getToken(), 'tok-1');
      now = local + 3000 * 1000;
      assert.equal(await session.getToken(), 'tok-1');
    });

    it('concurrent callers share one in-flight authentication', async () => {
      interceptTokens(1);
      const session = passwordSession();
      const tokens = await Promise.all(Array.from({ length: 10 }, () => session.getToken()));
      assert.deepEqual(new Set(tokens), new Set(['tok-1']));
    });

    it('a failed authentication is a RequestError without the password, and the next call tries again', async () => {
      nock(KEYSTONE)
        .post('/v3/auth/tokens')
        .reply(401, {
          error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' },
        });
      interceptTokens(1);
      const { logger, lines } = collectingLogger();
      const session = passwordSession({ logger });
      const err = await session.getToken().then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RequestError);
      assert.equal(err.status, 401);
      assert.deepEqual(err.request, { method: 'POST', url: `${KEYSTONE}/v3/auth/tokens` });
      assert.doesNotMatch(JSON.stringify(err) + err.message + String(err.stack), new RegExp(PASSWORD));
      assert.equal(await session.getToken(), 'tok-1');
      const log = lines.join('\n');
      assert.doesNotMatch(log, new RegExp(PASSWORD));
      assert.doesNotMatch(log, /tok-1/);
      assert.match(log, /authenticated to keystone/);
    });

    it('a 201 without X-Subject-Token or without a valid expires_at is an InvalidResponse', async () => {
      nock(KEYSTONE).post('/v3/auth/tokens').reply(201, tokenBody());
      const body = tokenBody() as { token: Record<string, unknown> };
      body.token['expires_at'] = 'soon';
      nock(KEYSTONE).post('/v3/auth/tokens').reply(201, body, { 'X-Subject-Token': 't' });
      const session = passwordSession();
      await assert.rejects(
        session.getToken(),
        (e: unknown) => e instanceof InvalidResponse && /X-Subject-Token/.test(e.message),
      );
      await assert.rejects(
        session.getToken(),
        (e: unknown) => e instanceof InvalidResponse && /expires_at/.test(e.message),
      );
    });

    it('bad options fail at construction', () => {
      assert.throws(() => new KeystoneSession({ ...PASSWORD_AUTH, password: null }), InvalidAuthOptions);
    });
  });

  describe('invalidate', () => {
    it('drops the cached token; with a token argument only if it is still the cached one', async () => {
      interceptTokens(2);
      const session = passwordSession();
      assert.equal(session.invalidate(), false, 'nothing cached yet');
      await session.getToken();
      assert.equal(session.invalidate('some-older-token'), false);
      assert.equal(await session.getToken(), 'tok-1');
      assert.equal(session.invalidate('tok-1'), true);
      assert.equal(await session.getToken(), 'tok-2');
    });
  });

  describe('getEndpoint', () => {
    it('picks the first valid interface (internal, public) in region_name from the catalog', async () => {
      interceptTokens(1);
      const session = passwordSession();
      assert.equal(await session.getEndpoint({ serviceType: 'placement' }), PLACEMENT);
      assert.equal(
        await session.getEndpoint({ serviceType: 'placement', interfaces: ['public'] }),
        PLACEMENT.replace('127.0.0.1', '127.0.0.2'),
      );
    });

    it('honours valid_interfaces and region_name from the options', async () => {
      interceptTokens(2);
      const pub = passwordSession({}, { valid_interfaces: ['public'] });
      assert.equal(await pub.getEndpoint({ serviceType: 'placement' }), PLACEMENT.replace('127.0.0.1', '127.0.0.2'));
      const elsewhere = passwordSession({}, { region_name: 'RegionTwo' });
      await assert.rejects(
        elsewhere.getEndpoint({ serviceType: 'placement' }),
        (e: unknown) => e instanceof EndpointNotFound && /region RegionTwo/.test(e.message),
      );
    });

    it('endpoint_override wins, without authenticating', async () => {
      const session = passwordSession({}, { endpoint_override: 'http://127.0.0.1:9999/placement' });
      assert.equal(await session.getEndpoint({ serviceType: 'placement' }), 'http://127.0.0.1:9999/placement');
    });

    it('a service missing from the catalog is EndpointNotFound', async () => {
      interceptTokens(1);
      await assert.rejects(passwordSession().getEndpoint({ serviceType: 'volumev3' }), EndpointNotFound);
    });
  });

  describe('withToken (the 401 helper)', () => {
    it('on 401, invalidates that token, re-authenticates once and retries once', async () => {
      interceptTokens(2);
      nock(PLACEMENT).get('/x').matchHeader('x-auth-token', 'tok-1').reply(401, { error: 'expired' });
      nock(PLACEMENT).get('/x').matchHeader('x-auth-token', 'tok-2').reply(200, { ok: true });
      const session = passwordSession();
      const res = await session.withToken((token) =>
        session.http.request({ method: 'GET', url: `${PLACEMENT}/x`, headers: { 'X-Auth-Token': token } }),
      );
      assert.deepEqual(res.data, { ok: true });
    });

    it('a second 401 is thrown, not retried again', async () => {
      interceptTokens(2);
      nock(PLACEMENT).get('/x').times(2).reply(401, {});
      const session = passwordSession();
      let calls = 0;
      await assert.rejects(
        session.withToken((token) => {
          calls += 1;
          return session.http.request({ method: 'GET', url: `${PLACEMENT}/x`, headers: { 'X-Auth-Token': token } });
        }),
        (e: unknown) => e instanceof RequestError && e.status === 401,
      );
      assert.equal(calls, 2);
    });

    it('other errors are not retried', async () => {
      interceptTokens(1);
      nock(PLACEMENT).get('/x').reply(403, {});
      const session = passwordSession();
      await assert.rejects(
        session.withToken((token) =>
          session.http.request({ method: 'GET', url: `${PLACEMENT}/x`, headers: { 'X-Auth-Token': token } }),
        ),
        (e: unknown) => e instanceof RequestError && e.status === 403,
      );
    });

    it('many requests failing with the same stale token cause one re-authentication', async () => {
      interceptTokens(2);
      nock(PLACEMENT).get('/x').times(5).matchHeader('x-auth-token', 'tok-1').reply(401, {});
      nock(PLACEMENT).get('/x').times(5).matchHeader('x-auth-token', 'tok-2').reply(200, {});
      const session = passwordSession();
      await session.getToken();
      await Promise.all(
        Array.from({ length: 5 }, () =>
          session.withToken((token) =>
            session.http.request({ method: 'GET', url: `${PLACEMENT}/x`, headers: { 'X-Auth-Token': token } }),
          ),
        ),
      );
    });
  });
});
