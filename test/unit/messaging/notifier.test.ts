import assert from 'node:assert/strict';
import { adminContext } from '../../../src/messaging/context';
import { buildNotification, NOTIFICATION_PRIORITIES, notificationWireMessage } from '../../../src/messaging/notifier';
import { publishes } from './captures';

describe('messaging notification format', () => {
  it('builds the notification oslo builds (upper-case priority, uuid4 message id, Python timestamp)', () => {
    const n = buildNotification('compute.h1', 'compute.instance.create.start', { a: 1 }, 'warn');
    assert.deepEqual(Object.keys(n), ['message_id', 'publisher_id', 'event_type', 'priority', 'payload', 'timestamp']);
    assert.equal(n.priority, 'WARN');
    assert.match(n.message_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(n.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$/);
    assert.deepEqual(NOTIFICATION_PRIORITIES, ['audit', 'debug', 'info', 'warn', 'warning', 'error', 'critical', 'sample']);
  });

  it('puts the keys on the wire in the order the captured notifications have', () => {
    for (const eventType of ['compute.instance.create.start', 'instance.create.start', 'service.create']) {
      const captured = publishes().find((r) => r.oslo_message['event_type'] === eventType);
      assert.ok(captured, eventType);
      const ours = notificationWireMessage(adminContext(), buildNotification('p', eventType, {}, 'info'));
      assert.deepEqual(Object.keys(ours), Object.keys(captured.oslo_message), eventType);
      assert.match(String(ours['_unique_id']), /^[0-9a-f]{32}$/);
      assert.match(String(captured.oslo_message['timestamp']), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
    }
  });

  it('strips the token from the context it carries', () => {
    const ours = notificationWireMessage({ ...adminContext(), auth_token: 'tok' }, buildNotification('p', 'e', {}, 'info'));
    assert.equal(ours['_context_auth_token'], null);
  });
});
