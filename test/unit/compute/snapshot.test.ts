// snapshot_instance and backup_instance: the task states of nova-compute-protocol.md §4.4 (image_snapshot, then the
// driver's image_pending_upload / image_uploading, each expecting the one before), the upload, delete_image_on_error
// and backup rotation.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DriverError } from '../../../driver/driver';
import { RemoteFailure } from '../../../src/messaging/failure';
import { Harness } from './harness';
import { berthSaves } from './lifecycle-capture';

describe('compute: snapshot and backup', () => {
  let h: Harness;
  let uuid: string;

  beforeEach(async () => {
    h = await Harness.create();
    uuid = await h.activeInstance();
  });
  afterEach(async () => {
    await h.close();
  });

  it('snapshot: image_snapshot, power state, pending upload, uploading, done — each save expecting the previous state', async () => {
    const imageId = randomUUID();
    const { context, instance } = h.api(uuid, { taskState: 'image_snapshot_pending', action: 'createImage' });
    await h.rpc('snapshot_instance', { image_id: imageId, instance }, context);
    assert.deepEqual(berthSaves(h.conductor.requests, context.request_id), [
      { fields: ['task_state'], task_state: 'image_snapshot', expected_task_state: 'image_snapshot_pending' },
      { fields: ['power_state'], expected_task_state: '<absent>' },
      { fields: ['task_state'], task_state: 'image_pending_upload', expected_task_state: 'image_snapshot' },
      { fields: ['task_state'], task_state: 'image_uploading', expected_task_state: 'image_pending_upload' },
      { fields: ['task_state'], task_state: null, expected_task_state: 'image_uploading' },
    ]);
    assert.equal(h.images.uploads.length, 1);
    assert.equal(h.images.uploads[0]?.imageId, imageId);
    assert.ok((h.images.uploads[0]?.bytes ?? 0) > 0);
    assert.equal(h.images.uploads[0]?.properties['container_format'], 'docker');
    assert.deepEqual(h.notifier.eventsFor(context.request_id), ['snapshot.start', 'snapshot.end']);
    assert.ok(h.notifier.notifications.filter((n) => n.requestId === context.request_id).every((n) => n.extras.snapshotImageId === imageId));
    assert.deepEqual(h.conductor.actionFor(uuid, context.request_id)?.events.map((e) => [e.event, e.result]), [['compute_snapshot_instance', 'Success']]);
    assert.deepEqual(h.images.deleted, []);
  });

  it('a runtime failure: the queued image is deleted, fault, event error, task_state reverted', async () => {
    const imageId = randomUUID();
    h.driver.failNext('snapshot', new DriverError('no space left on device'));
    const { context, instance } = h.api(uuid, { taskState: 'image_snapshot_pending', action: 'createImage' });
    await assert.rejects(h.rpc('snapshot_instance', { image_id: imageId, instance }, context), (err: unknown) => err instanceof RemoteFailure);
    assert.deepEqual(h.images.deleted, [imageId]);
    assert.equal(h.row(uuid)['task_state'], null);
    assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['no space left on device']);
    assert.equal(h.conductor.actionFor(uuid, context.request_id)?.events[0]?.result, 'Error');
  });

  for (const [when, hook] of [
    ['before it started (first save)', 'image_snapshot'],
    ['while uploading', 'image_uploading'],
  ] as const) {
    it(`deleted meanwhile, ${when}: stops quietly (no fault, event not failed), the queued image deleted`, async () => {
      const imageId = randomUUID();
      const { context, instance } = h.api(uuid, { taskState: 'image_snapshot_pending', action: 'createImage' });
      h.conductor.beforeAnswer.push((request) => {
        const data = (request.args['objinst'] as Record<string, unknown> | undefined)?.['nova_object.data'] as Record<string, unknown> | undefined;
        if (request.objMethod === 'save' && data?.['task_state'] === hook) h.row(uuid)['task_state'] = 'deleting';
      });
      await h.rpc('snapshot_instance', { image_id: imageId, instance }, context);
      assert.equal(h.row(uuid)['task_state'], 'deleting');
      assert.deepEqual(h.faultsOf(uuid), []);
      assert.deepEqual(h.notifier.exceptions, []);
      assert.equal(h.conductor.actionFor(uuid, context.request_id)?.events[0]?.result, 'Success');
      assert.deepEqual(h.images.deleted, [imageId]);
    });
  }

  it('backup: the same states from image_backup, then the backups beyond rotation are deleted', async () => {
    const imageId = randomUUID();
    h.images.backups = [imageId, 'b-2', 'b-3', 'b-4'];
    const { context, instance } = h.api(uuid, { taskState: 'image_backup', action: 'createBackup' });
    await h.rpc('backup_instance', { image_id: imageId, instance, backup_type: 'daily', rotation: 2 }, context);
    assert.deepEqual(berthSaves(h.conductor.requests, context.request_id), [
      { fields: ['power_state'], expected_task_state: '<absent>' },
      { fields: ['task_state'], task_state: 'image_pending_upload', expected_task_state: 'image_backup' },
      { fields: ['task_state'], task_state: 'image_uploading', expected_task_state: 'image_pending_upload' },
      { fields: ['task_state'], task_state: null, expected_task_state: 'image_uploading' },
    ]);
    assert.deepEqual(h.images.deleted, ['b-3', 'b-4']);
    assert.deepEqual(h.conductor.actionFor(uuid, context.request_id)?.events.map((e) => [e.event, e.result]), [['compute_backup_instance', 'Success']]);
  });

  it("backup with a rotation that is not an integer: ValueError worded as Python's int()", async () => {
    const { context, instance } = h.api(uuid, { taskState: null });
    await assert.rejects(h.rpc('backup_instance', { image_id: randomUUID(), instance, backup_type: 'daily', rotation: 'x' }, context), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.equal(err.className, 'ValueError');
      assert.equal(err.message, "invalid literal for int() with base 10: 'x'");
      return true;
    });
  });
});
