import assert from 'node:assert/strict';
import nock from 'nock';
import { HttpClient } from '../../../src/identity/http-client';
import { ConnectionError, InvalidResponse, RequestError } from '../../../src/identity/request-error';
import { collectingLogger, useNock } from './keystone-fixtures';

const SERVICE = 'http://127.0.0.1:38000';
const TOKEN = 'gAAAAA-very-secret-token';

describe('identity/http-client', () => {
  useNock();
  afterEach(() => nock.cleanAll());

  it('defaults() layers headers over a copy; the original client is unchanged', async () => {
    const root = HttpClient.create({ headers: { Accept: 'application/json', 'X-A': 'root' } });
    const child = root.defaults({ headers: { 'X-A': 'child', 'X-B': 'b' } });
    nock(SERVICE)
      .get('/child')
      .matchHeader('x-a', 'child')
      .matchHeader('x-b', 'b')
      .matchHeader('accept', 'application/json')
      .reply(200, {});
    nock(SERVICE)
      .get('/root')
      .matchHeader('x-a', 'root')
      .matchHeader('x-b', (value: string | undefined) => value === undefined)
      .reply(200, {});
    await child.request({ method: 'GET', url: `${SERVICE}/child` });
    await root.request({ method: 'GET', url: `${SERVICE}/root` });
  });

  it('sends JSON bodies with Content-Type application/json unless the caller sets one', async () => {
    const client = HttpClient.create();
    nock(SERVICE).put('/a', { x: 1 }).matchHeader('content-type', 'application/json').reply(200, { ok: 1 });
    nock(SERVICE)
      .patch('/b', [{ op: 'add' }])
      .matchHeader('content-type', 'application/openstack-images-v2.1-json-patch')
      .reply(200, {});
    assert.deepEqual((await client.request({ method: 'PUT', url: `${SERVICE}/a`, json: { x: 1 } })).data, { ok: 1 });
    await client.request({
      method: 'PATCH',
      url: `${SERVICE}/b`,
      headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' },
      json: [{ op: 'add' }],
    });
  });

  it('an empty 2xx body is null; headers come back lower-cased', async () => {
    nock(SERVICE).delete('/a').reply(204, '', { 'X-OpenStack-Request-ID': 'req-1' });
    const res = await HttpClient.create().request({ method: 'DELETE', url: `${SERVICE}/a` });
    assert.equal(res.status, 204);
    assert.equal(res.data, null);
    assert.equal(res.headers['x-openstack-request-id'], 'req-1');
  });

  it('a non-2xx is a RequestError with method, url, status, parsed body and request id — never the token', async () => {
    const body = { errors: [{ status: 409, code: 'placement.concurrent_update', detail: 'generation conflict' }] };
    nock(SERVICE).put('/rp').reply(409, body, { 'openstack-request-id': 'req-abc' });
    const client = HttpClient.create();
    const err = await client
      .request({ method: 'PUT', url: `${SERVICE}/rp`, headers: { 'X-Auth-Token': TOKEN }, json: { password: 'pw' } })
      .then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof RequestError);
    assert.equal(err.name, 'RequestError');
    assert.equal(err.status, 409);
    assert.deepEqual(err.request, { method: 'PUT', url: `${SERVICE}/rp` });
    assert.deepEqual(err.response, { status: 409, body, requestId: 'req-abc' });
    assert.equal(err.errorCode, 'placement.concurrent_update');
    assert.match(err.message, /PUT http:\/\/127\.0\.0\.1:38000\/rp returned 409: .*generation conflict/);
    const everything = JSON.stringify(err) + err.message + String(err.stack) + JSON.stringify(Object.entries(err));
    assert.doesNotMatch(everything, new RegExp(TOKEN));
    assert.doesNotMatch(everything, /"pw"/);
  });

  it('a non-JSON error body is kept as text; errorCode is null', async () => {
    nock(SERVICE).get('/x').reply(502, '<html>Bad Gateway</html>');
    const err = await HttpClient.create()
      .request({ method: 'GET', url: `${SERVICE}/x` })
      .catch((e: unknown) => e);
    assert.ok(err instanceof RequestError);
    assert.equal(err.response.body, '<html>Bad Gateway</html>');
    assert.equal(err.errorCode, null);
  });

  it('a 2xx that is not JSON is an InvalidResponse', async () => {
    nock(SERVICE).get('/x').reply(200, 'not json', { 'Content-Type': 'application/json' });
    await assert.rejects(
      HttpClient.create().request({ method: 'GET', url: `${SERVICE}/x` }),
      (e: unknown) => e instanceof InvalidResponse && e.status === 200 && /not JSON/.test(e.message),
    );
  });

  it('a transport failure is a ConnectionError without axios internals (headers, config)', async () => {
    // nock 14 only emits Error instances, not plain objects.
    nock(SERVICE)
      .get('/x')
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const err = await HttpClient.create()
      .request({ method: 'GET', url: `${SERVICE}/x`, headers: { 'X-Auth-Token': TOKEN } })
      .catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.name, 'ConnectionError');
    assert.equal(err.code, 'ECONNRESET');
    assert.equal(err.timedOut, false);
    assert.equal('config' in err, false);
    assert.equal(err.cause, undefined);
    assert.doesNotMatch(JSON.stringify(err) + String(err.stack), new RegExp(TOKEN));
  });

  it('strips credentials from URLs in errors', async () => {
    nock('http://127.0.0.1:38001').get('/x').reply(500, '');
    const err = await HttpClient.create()
      .request({ method: 'GET', url: 'http://user:pass@127.0.0.1:38001/x' })
      .catch((e: unknown) => e);
    assert.ok(err instanceof RequestError);
    assert.equal(err.request.url, 'http://user:***@127.0.0.1:38001/x');
  });

  it('logs each request at debug with the caller fields and without headers', async () => {
    nock(SERVICE).get('/x').reply(200, {}, { 'x-openstack-request-id': 'req-srv' });
    const { logger, lines } = collectingLogger();
    await HttpClient.create({ logger }).request({
      method: 'GET',
      url: `${SERVICE}/x`,
      headers: { 'X-Auth-Token': TOKEN },
      log: { request_id: 'req-ours' },
    });
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(line['request_id'], 'req-ours');
    assert.equal(line['method'], 'GET');
    assert.equal(line['status'], 200);
    assert.equal(line['openstack_request_id'], 'req-srv');
    assert.doesNotMatch(lines[0] as string, new RegExp(TOKEN));
  });
});
