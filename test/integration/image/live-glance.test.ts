// GlanceClient against the real Glance of the e2e control plane: the snapshot path (PATCH, streamed PUT) and the
// verified download of what was uploaded. The image it creates has a random name and is deleted again.
import assert from 'node:assert/strict';
import crypto, { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { KeystoneSession } from '../../../src/identity/keystone-session';
import { GlanceClient } from '../../../src/image/glance-client';
import { ImageNotFound } from '../../../src/image/glance-errors';
import { imagePatch } from '../../../src/image/image-patch';
import { liveSection, requireLiveControlPlane } from '../identity/live-control-plane';

describe('image/GlanceClient (live Glance)', function () {
  this.timeout(60_000);
  requireLiveControlPlane();

  const name = `berth-live-test-${randomUUID().slice(0, 8)}`;
  const data = crypto.randomBytes(2 * 1024 * 1024 + 3);
  let serviceUser: KeystoneSession;
  let glance: GlanceClient;
  let imageId: string | undefined;
  let dir: string;
  let ctx: { request_id: string; auth_token: string };

  before(async () => {
    serviceUser = new KeystoneSession(liveSection('service_user'));
    glance = new GlanceClient({ region_name: 'RegionOne', send_service_user_token: true }, { serviceUser });
    // the "user" of these calls: the service user's own token stands in for the RPC context's
    ctx = {
      request_id: `req-${randomUUID()}`,
      auth_token: await new KeystoneSession(liveSection('placement')).getToken(),
    };
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-live-glance-'));
    // nova-api creates the queued image before the snapshot cast (protocol §8.2)
    const base = await serviceUser.getEndpoint({ serviceType: 'image' });
    const created = await serviceUser.http.request<{ id: string }>({
      method: 'POST',
      url: `${base.replace(/\/v2\/?$/, '')}/v2/images`,
      headers: { 'X-Auth-Token': ctx.auth_token },
      json: { name, visibility: 'private', image_type: 'snapshot' },
    });
    imageId = created.data.id;
  });

  after(async () => {
    if (imageId !== undefined) await glance.deleteImage(ctx, imageId).catch(() => false);
    if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
  });

  it('getImage shows the queued image; updateImage sets formats and properties', async () => {
    const id = imageId as string;
    const queued = await glance.getImage(ctx, id);
    assert.equal(queued.status, 'queued');
    const updated = await glance.updateImage(
      ctx,
      id,
      imagePatch(queued, {
        set: { disk_format: 'raw', container_format: 'bare', image_location: 'snapshot', image_state: 'available' },
      }),
    );
    assert.equal(updated.disk_format, 'raw');
    assert.equal(updated['image_location'], 'snapshot');
  });

  it('uploadImageData streams the bytes; Glance computes the hashes and activates the image', async () => {
    const id = imageId as string;
    const chunks = Array.from({ length: 33 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    await glance.uploadImageData(ctx, id, Readable.from(chunks));
    const active = await glance.getImage(ctx, id);
    assert.equal(active.status, 'active');
    assert.equal(active.size, data.length);
    assert.equal(active.os_hash_value, crypto.createHash('sha512').update(data).digest('hex'));
  });

  it('downloadVerified gets exactly those bytes, checked against os_hash_value', async () => {
    const id = imageId as string;
    const image = await glance.getImage(ctx, id);
    const result = await glance.downloadVerified(ctx, image, dir);
    assert.equal(result.verification, 'os_hash_value');
    assert.equal(result.algorithm, 'sha512');
    assert.ok((await fs.readFile(result.path)).equals(data));
  });

  it('without a user token the [service_user] token is used, with its catalog', async () => {
    const image = await glance.getImage({ request_id: ctx.request_id }, imageId as string);
    assert.equal(image.name, name);
  });

  it('listImages finds it by name; deleteImage removes it once', async () => {
    const id = imageId as string;
    assert.deepEqual(
      (await glance.listImages(ctx, { name })).map((i) => i.id),
      [id],
    );
    assert.equal(await glance.deleteImage(ctx, id), true);
    assert.equal(await glance.deleteImage(ctx, id), false);
    await assert.rejects(glance.getImage(ctx, id), ImageNotFound);
    imageId = undefined;
  });
});
