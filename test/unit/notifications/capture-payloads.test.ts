// Every instance notification of the lab capture, rebuilt from the Instance the Python compute held at that moment
// and compared with what it sent, key for key and in order: the legacy compute.instance.* on notifications.info
// and the versioned instance.* on versioned_notifications.info. Only values that cannot match are relaxed:
// message_id, _unique_id, timestamps of "now", and the microseconds of times the Python compute set itself
// (launched_at, terminated_at), which never crossed the wire.
import { strict as assert } from 'node:assert';
import type { NotificationAction } from '../../../src/compute/states';
import type { InstanceNotificationExtras, NotificationPhase } from '../../../src/notifications';
import { notificationPoints, type NotificationPoint } from './capture-replay';
import { assertSameShape, harness } from './support';

const NOW_KEYS = new Set(['message_id', '_unique_id', 'timestamp', '_context_timestamp']);
/** Legacy times the Python compute took from its own clock; the Instance on the wire keeps whole seconds only. */
const LOCAL_TIMES = ['launched_at', 'terminated_at'];

function actionOf(eventType: string): { action: NotificationAction; phase: NotificationPhase } {
  const parts = eventType.split('.');
  return { action: parts[parts.length - 2] as NotificationAction, phase: parts[parts.length - 1] as NotificationPhase };
}

/** What the compute manager passes: the image's name on create.start. */
function extrasFor(point: NotificationPoint, action: NotificationAction, phase: NotificationPhase): InstanceNotificationExtras {
  const image = point.rpcArgs['image'] as { name?: string } | undefined;
  return action === 'create' && phase === 'start' && image?.name !== undefined ? { imageName: image.name } : {};
}

function wholeSeconds(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(/\.\d{6}$/, '.000000') : value;
}

function assertSameMessage(actual: Record<string, unknown>, expected: Record<string, unknown>, what: string): void {
  const keep = (m: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(m).filter(([k]) => !NOW_KEYS.has(k)));
  assertSameShape(keep(actual), keep(expected), what);
  assert.match(String(actual['timestamp']), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$/);
  assert.match(String(actual['message_id']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
}

describe('notifications: the capture, notification by notification', () => {
  const points = notificationPoints();

  it('covers every instance action of the lifecycle demo', () => {
    const events = points.map((p) => String(p.legacy['event_type']));
    for (const action of ['create', 'power_off', 'power_on', 'reboot', 'pause', 'unpause', 'suspend', 'resume', 'delete', 'shutdown']) {
      assert.ok(events.includes(`compute.instance.${action}.start`), action);
      assert.ok(events.includes(`compute.instance.${action}.end`), action);
    }
  });

  for (const point of points) {
    const eventType = String(point.legacy['event_type']);
    const { action, phase } = actionOf(eventType);

    it(`${eventType} (${point.rpcMethod}): legacy and versioned payloads as nova-compute sent them`, async () => {
      const h = harness({ lazy: point.lazyLoaded });
      await h.notifier.instanceAction(point.context, point.instance.clone(), action, phase, extrasFor(point, action, phase));

      const [legacy, versioned, ...rest] = h.session.published;
      assert.equal(rest.length, 0, 'two notifications');
      assert.ok(legacy && versioned);
      assert.equal(legacy.exchange, 'nova');
      assert.equal(legacy.routingKey, 'notifications.info');
      assert.equal(versioned.exchange, 'nova');
      assert.equal(versioned.routingKey, 'versioned_notifications.info');

      const expectedLegacy = structuredClone(point.legacy);
      const legacyPayload = expectedLegacy['payload'] as Record<string, unknown>;
      for (const key of LOCAL_TIMES) legacyPayload[key] = wholeSeconds(legacyPayload[key]);
      assertSameMessage(legacy.message, expectedLegacy, eventType);
      assertSameMessage(versioned.message, point.versioned, String(point.versioned['event_type']));
    });

    it(`${eventType} (${point.rpcMethod}): lazy-loads only the fields the instance lacks`, async () => {
      const h = harness({ lazy: point.lazyLoaded });
      await h.notifier.instanceAction(point.context, point.instance.clone(), action, phase, extrasFor(point, action, phase));
      const asked = h.loads.flat();
      for (const field of asked) {
        assert.ok(!point.instance.has(field), `${field} was already there`);
        assert.ok(point.lazyLoaded.has(field), `Python did not need ${field}`);
      }
      assert.ok(h.loads.length <= 1, 'one load for all missing fields');
      for (const field of ['flavor', 'info_cache', 'system_metadata', 'metadata'] as const) {
        if (!point.instance.has(field)) assert.ok(asked.includes(field), `${field} is needed and missing`);
      }
    });
  }
});
