// The temporary image of a cross-host move on Glance v2 (GlanceImages as MigrationImagePort): every request carries
// the service session's token, never the user's, so the image belongs to the service project; and disk_info's shape.
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import nock from 'nock';
import { GlanceImages } from '../../../src/compute/glance-images';
import { migrationDiskInfo, migrationImage, migrationImageIdOf } from '../../../src/compute/migration-images';
import { GlanceClient } from '../../../src/image/glance-client';
import { GLANCE, interceptTokens, passwordSession, useNock } from '../identity/keystone-fixtures';

const MIGRATION = '0d3c52b6-8f1e-4a55-9d7e-4f7d2f1b9a10';
const INSTANCE = '6a1f7d4e-2b3c-4d5e-8f90-a1b2c3d4e5f6';
const USER_CTX = { request_id: 'req-1', auth_token: 'the-users-token', service_catalog: [] };

describe('compute: the migration image on Glance (service credentials)', () => {
  useNock();
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    assert.deepEqual(pending, [], 'every expected request was made');
  });

  const images = (): GlanceImages =>
    new GlanceImages(new GlanceClient({ num_retries: 0 }, { retryDelayMs: 0, fallbackAuth: passwordSession() }), tmpdir());

  it('creates berth-migration-<uuid> (private, docker/raw, berth_migration and instance_uuid) with the service token', async () => {
    interceptTokens(1);
    let body: unknown;
    nock(GLANCE, { reqheaders: { 'x-auth-token': 'tok-1' }, badheaders: ['x-service-token'] })
      .post('/v2/images', (b: unknown) => {
        body = b;
        return true;
      })
      .reply(201, { id: MIGRATION, status: 'queued' });
    await images().createMigrationImage(USER_CTX, migrationImage(MIGRATION, INSTANCE));
    assert.deepEqual(body, {
      id: MIGRATION,
      name: `berth-migration-${MIGRATION}`,
      container_format: 'docker',
      disk_format: 'raw',
      visibility: 'private',
      berth_migration: MIGRATION,
      instance_uuid: INSTANCE,
    });
  });

  it('uploads, downloads with the hash check, and deletes with the service token; a missing image is not an error', async () => {
    interceptTokens(1);
    const data = Buffer.from('the committed layer');
    const sha512 = createHash('sha512').update(data).digest('hex');
    const scope = nock(GLANCE, { reqheaders: { 'x-auth-token': 'tok-1' } });
    scope.put(`/v2/images/${MIGRATION}/file`, data.toString()).reply(204);
    scope.get(`/v2/images/${MIGRATION}`).reply(200, {
      id: MIGRATION, name: `berth-migration-${MIGRATION}`, status: 'active', size: data.length, container_format: 'docker',
      disk_format: 'raw', os_hash_algo: 'sha512', os_hash_value: sha512, berth_migration: MIGRATION,
    });
    scope.get(`/v2/images/${MIGRATION}/file`).reply(200, data);
    scope.delete(`/v2/images/${MIGRATION}`).reply(204);
    scope.delete(`/v2/images/${MIGRATION}`).reply(404, {});

    const port = images();
    await port.uploadMigrationImage(USER_CTX, MIGRATION, Readable.from([data]));
    const source = await port.migrationImageSource(USER_CTX, MIGRATION);
    assert.equal(source.containerFormat, 'docker');
    assert.equal(source.properties['berth_migration'], MIGRATION);
    const path = await source.fetch();
    assert.deepEqual(await readFile(path), data);
    await rm(path);
    assert.equal(await port.deleteMigrationImage(USER_CTX, MIGRATION), true);
    assert.equal(await port.deleteMigrationImage(USER_CTX, MIGRATION), false);
  });

  it('a download whose bytes do not match Glance\'s hash is refused', async () => {
    interceptTokens(1);
    const scope = nock(GLANCE);
    scope.get(`/v2/images/${MIGRATION}`).reply(200, {
      id: MIGRATION, status: 'active', container_format: 'docker', disk_format: 'raw', os_hash_algo: 'sha512', os_hash_value: 'ab'.repeat(64),
    });
    scope.get(`/v2/images/${MIGRATION}/file`).reply(200, Buffer.from('tampered'));
    const source = await images().migrationImageSource(USER_CTX, MIGRATION);
    await assert.rejects(source.fetch(), (err: Error & { className?: string }) => err.className === 'ImageUnacceptable');
  });

  it('disk_info names the image; anything else on the bus names none', () => {
    const info = migrationDiskInfo(migrationImage(MIGRATION, INSTANCE));
    assert.equal(typeof info, 'string');
    assert.equal(migrationImageIdOf(info), MIGRATION);
    assert.equal(migrationImageIdOf(JSON.parse(info)), MIGRATION);
    for (const bad of ['[]', '', 'not json', '{}', '[null]', '[{"type":"berth-glance-image","image_id":"../../etc"}]', null, 42, [{ image_id: MIGRATION }]]) {
      assert.equal(migrationImageIdOf(bad), null, JSON.stringify(bad));
    }
  });
});
