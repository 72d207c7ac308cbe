import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import nock from 'nock';
import { EndpointNotFound } from '../../../src/identity/service-catalog';
import { GlanceClient, stripVersion, type GlanceClientOptions } from '../../../src/image/glance-client';
import {
  GlanceConnectionFailed,
  GlanceCredentialsMissing,
  ImageNotAuthorized,
  ImageNotFound,
} from '../../../src/image/glance-errors';
import { imagePatch } from '../../../src/image/image-patch';
import { RequestError } from '../../../src/identity/request-error';
import { GLANCE, interceptTokens, passwordSession, useNock } from '../identity/keystone-fixtures';

const IMAGE = '1271781e-5153-43b9-a96c-9851e9bec3c0';
const USER_TOKEN = 'user-token-from-the-rpc-context';
const CATALOG_GLANCE = 'http://127.0.0.1:39393';
const CTX = {
  request_id: 'req-a278591d-5601-472b-867a-33b93007acda',
  global_request_id: null,
  auth_token: USER_TOKEN,
  // v2 style, as in captures/fake-driver-lifecycle.jsonl
  service_catalog: [
    {
      type: 'image',
      name: 'glance',
      endpoints: [
        {
          region: 'RegionOne',
          publicURL: 'http://127.0.0.2:9292',
          adminURL: 'http://127.0.0.2:9292',
          internalURL: `${CATALOG_GLANCE}/v2/`,
        },
      ],
    },
  ],
};
const record = { id: IMAGE, name: 'tiny', status: 'active', size: 5, disk_format: 'raw', container_format: 'bare' };

function glance(options: GlanceClientOptions = {}, withServiceUser = false): GlanceClient {
  return new GlanceClient(
    { num_retries: 3, ...options },
    { retryDelayMs: 0, ...(withServiceUser ? { serviceUser: passwordSession() } : {}) },
  );
}

describe('image/glance-client', () => {
  useNock();
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    assert.deepEqual(pending, [], 'every expected request was made');
  });

  it('stripVersion drops a /vN[.M] suffix and trailing slashes', () => {
    assert.equal(stripVersion('http://127.0.0.1:9292/v2/'), 'http://127.0.0.1:9292');
    assert.equal(stripVersion('http://127.0.0.1:9292/v2.1'), 'http://127.0.0.1:9292');
    assert.equal(stripVersion('http://127.0.0.1/image'), 'http://127.0.0.1/image');
  });

  describe('credentials', () => {
    it("the user's token from the context, the request id, and no service token by default", async () => {
      nock(CATALOG_GLANCE, {
        reqheaders: {
          'x-auth-token': USER_TOKEN,
          'x-openstack-request-id': CTX.request_id,
          accept: 'application/json',
        },
        badheaders: ['x-service-token'],
      })
        .get(`/v2/images/${IMAGE}`)
        .reply(200, record);
      assert.deepEqual(await glance({}, true).getImage(CTX, IMAGE), record);
    });

    it('send_service_user_token: X-Service-Token from the [service_user] session', async () => {
      interceptTokens(1);
      nock(CATALOG_GLANCE, { reqheaders: { 'x-auth-token': USER_TOKEN, 'x-service-token': 'tok-1' } })
        .get(`/v2/images/${IMAGE}`)
        .reply(200, record);
      await glance({ send_service_user_token: true }, true).getImage(CTX, IMAGE);
    });

    it('a 401 with our service token re-authenticates that session once and retries', async () => {
      interceptTokens(2);
      nock(CATALOG_GLANCE, { reqheaders: { 'x-service-token': 'tok-1' } })
        .get(`/v2/images/${IMAGE}`)
        .reply(401, {});
      nock(CATALOG_GLANCE, { reqheaders: { 'x-service-token': 'tok-2' } })
        .get(`/v2/images/${IMAGE}`)
        .reply(200, record);
      await glance({ send_service_user_token: true }, true).getImage(CTX, IMAGE);
    });

    it('no user token: the fallback session token as X-Auth-Token, and its catalog', async () => {
      interceptTokens(1);
      nock(GLANCE, { reqheaders: { 'x-auth-token': 'tok-1' }, badheaders: ['x-service-token'] })
        .get(`/v2/images/${IMAGE}`)
        .reply(200, record);
      // the fixture catalog's image endpoint ends in /v2: it is stripped
      await glance({ send_service_user_token: true }, true).getImage({ request_id: 'req-x' }, IMAGE);
    });

    it('neither a user token nor a session: GlanceCredentialsMissing', async () => {
      await assert.rejects(
        glance({ endpoint_override: GLANCE }).getImage({ request_id: 'req-x', auth_token: null }, IMAGE),
        GlanceCredentialsMissing,
      );
    });

    it('401 with only the user token → ImageNotAuthorized; 404 → ImageNotFound', async () => {
      nock(CATALOG_GLANCE).get(`/v2/images/${IMAGE}`).reply(401, {});
      nock(CATALOG_GLANCE).get(`/v2/images/${IMAGE}`).reply(404, {});
      const c = glance();
      await assert.rejects(
        c.getImage(CTX, IMAGE),
        (e: unknown) => e instanceof ImageNotAuthorized && e.cause instanceof RequestError,
      );
      await assert.rejects(c.getImage(CTX, IMAGE), (e: unknown) => e instanceof ImageNotFound && e.imageId === IMAGE);
    });
  });

  describe('endpoint', () => {
    it('api_servers win, and each retry takes the next one', async () => {
      const hits: string[] = [];
      const server = (url: string) =>
        nock(url)
          .get(`/v2/images/${IMAGE}`)
          .times(2)
          .optionally()
          .reply(() => {
            hits.push(url);
            return hits.length === 1 ? [503, 'busy'] : [200, record];
          });
      server('http://127.0.0.1:39001');
      server('http://127.0.0.1:39002');
      const c = glance({
        api_servers: ['http://127.0.0.1:39001', 'http://127.0.0.1:39002/v2'],
        endpoint_override: 'http://127.0.0.1:1',
      });
      assert.equal((await c.getImage(CTX, IMAGE)).id, IMAGE);
      assert.equal(hits.length, 2);
      assert.notEqual(hits[0], hits[1], 'the retry went to the other server');
    });

    it('endpoint_override wins over the catalog', async () => {
      nock('http://127.0.0.1:39003').get(`/v2/images/${IMAGE}`).reply(200, record);
      await glance({ endpoint_override: 'http://127.0.0.1:39003/v2' }).getImage(CTX, IMAGE);
    });

    it('no endpoint anywhere: EndpointNotFound', async () => {
      await assert.rejects(glance().getImage({ request_id: 'r', auth_token: USER_TOKEN }, IMAGE), EndpointNotFound);
    });
  });

  describe('retries (num_retries on connection errors and 503)', () => {
    it('503, connection reset, then success', async () => {
      nock(CATALOG_GLANCE).get(`/v2/images/${IMAGE}`).reply(503, 'busy');
      nock(CATALOG_GLANCE)
        .get(`/v2/images/${IMAGE}`)
        .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      nock(CATALOG_GLANCE).get(`/v2/images/${IMAGE}`).reply(200, record);
      await glance().getImage(CTX, IMAGE);
    });

    it('gives up after 1 + num_retries attempts with GlanceConnectionFailed', async () => {
      nock(CATALOG_GLANCE).get(`/v2/images/${IMAGE}`).times(3).reply(503, 'busy');
      await assert.rejects(
        glance({ num_retries: 2 }).getImage(CTX, IMAGE),
        (e: unknown) =>
          e instanceof GlanceConnectionFailed && e.server === CATALOG_GLANCE && e.cause instanceof RequestError,
      );
    });

    it('other errors are not retried', async () => {
      nock(CATALOG_GLANCE).get(`/v2/images/${IMAGE}`).reply(500, 'oops');
      await assert.rejects(
        glance().getImage(CTX, IMAGE),
        (e: unknown) => e instanceof RequestError && e.status === 500,
      );
    });
  });

  describe('snapshot side', () => {
    it('updateImage: PATCH with the v2.1 json-patch media type', async () => {
      const ops = imagePatch(record, { set: { container_format: 'docker', image_location: 'snapshot' } });
      nock(CATALOG_GLANCE, {
        reqheaders: { 'content-type': 'application/openstack-images-v2.1-json-patch', 'x-auth-token': USER_TOKEN },
      })
        .patch(`/v2/images/${IMAGE}`, [
          { op: 'replace', path: '/container_format', value: 'docker' },
          { op: 'add', path: '/image_location', value: 'snapshot' },
        ])
        .reply(200, { ...record, container_format: 'docker', image_location: 'snapshot' });
      const updated = await glance().updateImage(CTX, IMAGE, ops);
      assert.equal(updated['image_location'], 'snapshot');
    });

    it('uploadImageData: PUT /file with application/octet-stream and the streamed bytes', async () => {
      let received = '';
      nock(CATALOG_GLANCE, { reqheaders: { 'content-type': 'application/octet-stream', 'x-auth-token': USER_TOKEN } })
        .put(`/v2/images/${IMAGE}/file`)
        .reply(204, function (_uri, body) {
          received = String(body);
          return '';
        });
      await glance().uploadImageData(CTX, IMAGE, Readable.from(['docker ', 'save ', 'tarball']));
      assert.equal(received, 'docker save tarball');
    });

    it('uploadImageData: not retried on 503 (a stream cannot be replayed)', async () => {
      nock(CATALOG_GLANCE).put(`/v2/images/${IMAGE}/file`).reply(503, 'busy');
      await assert.rejects(
        glance().uploadImageData(CTX, IMAGE, Readable.from(['x'])),
        (e: unknown) => e instanceof RequestError && e.status === 503,
      );
    });

    it('deleteImage: 204 → true, 404 → false', async () => {
      nock(CATALOG_GLANCE).delete(`/v2/images/${IMAGE}`).reply(204);
      nock(CATALOG_GLANCE).delete(`/v2/images/${IMAGE}`).reply(404, {});
      const c = glance();
      assert.equal(await c.deleteImage(CTX, IMAGE), true);
      assert.equal(await c.deleteImage(CTX, IMAGE), false);
    });

    it('listImages: passes the filters and follows next links', async () => {
      nock(CATALOG_GLANCE)
        .get('/v2/images')
        .query({ instance_uuid: 'inst-1', image_type: 'backup', sort_key: 'created_at', sort_dir: 'desc' })
        .reply(200, { images: [{ id: 'b1' }, { id: 'b2' }], next: '/v2/images?marker=b2&instance_uuid=inst-1' });
      nock(CATALOG_GLANCE)
        .get('/v2/images')
        .query({ marker: 'b2', instance_uuid: 'inst-1' })
        .reply(200, { images: [{ id: 'b3' }], first: '/v2/images' });
      const images = await glance().listImages(CTX, {
        instance_uuid: 'inst-1',
        image_type: 'backup',
        sort_key: 'created_at',
        sort_dir: 'desc',
      });
      assert.deepEqual(
        images.map((i) => i.id),
        ['b1', 'b2', 'b3'],
      );
    });
  });
});
