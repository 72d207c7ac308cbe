// KeystoneSession against the real Keystone of the e2e control plane.
import assert from 'node:assert/strict';
import { KeystoneSession } from '../../../src/identity/keystone-session';
import { RequestError } from '../../../src/identity/request-error';
import { EndpointNotFound } from '../../../src/identity/service-catalog';
import { liveSection, requireLiveControlPlane } from './live-control-plane';

describe('identity/KeystoneSession (live Keystone)', function () {
  this.timeout(30_000);
  requireLiveControlPlane();

  it('authenticates with [placement] and finds the placement and image endpoints in the catalog', async () => {
    const session = new KeystoneSession(liveSection('placement'));
    const access = await session.getAccess();
    assert.ok(access.token.length > 20);
    assert.ok(access.projectId !== null && access.userId !== null);
    assert.ok(Date.parse(access.expiresAt) > Date.now());
    assert.equal(await session.getEndpoint({ serviceType: 'placement' }), 'http://127.0.0.1:8778');
    assert.match(await session.getEndpoint({ serviceType: 'image' }), /^http:\/\/127\.0\.0\.1:9292/);
    await assert.rejects(session.getEndpoint({ serviceType: 'no-such-service' }), EndpointNotFound);
  });

  it('the token validates at Keystone; invalidate() gets a different one', async () => {
    const session = new KeystoneSession(liveSection('placement'));
    const first = await session.getToken();
    const check = (token: string) =>
      session.http.request({
        method: 'GET',
        url: 'http://127.0.0.1:5000/v3/auth/tokens',
        headers: { 'X-Auth-Token': token, 'X-Subject-Token': token },
      });
    assert.equal((await check(first)).status, 200);
    session.invalidate(first);
    const second = await session.getToken();
    assert.notEqual(second, first);
    assert.equal((await check(second)).status, 200);
  });

  it('a wrong password is a 401 RequestError that does not contain the password', async () => {
    const session = new KeystoneSession({ ...liveSection('placement'), password: 'wrong-Pa55word' });
    const err = await session.getToken().catch((e: unknown) => e);
    assert.ok(err instanceof RequestError);
    assert.equal(err.status, 401);
    assert.doesNotMatch(JSON.stringify(err) + err.message, /wrong-Pa55word/);
  });

  it('concurrent first calls share one authentication', async () => {
    const session = new KeystoneSession(liveSection('service_user'));
    const tokens = await Promise.all(Array.from({ length: 8 }, () => session.getToken()));
    assert.equal(new Set(tokens).size, 1);
  });
});
