// The notifications of a resize, through Berth's real notifier, against what Nova's own code emits for the same
// Instance and context (resize-golden.json, made by resize-golden.py from Debian's python3-nova): the legacy names
// (resize.prep.*, finish_resize.*, resize.confirm.*, resize.revert.*, resize.error), which phases carry fixed_ips
// and the new flavor, the versioned payload classes (InstanceActionResizePrepPayload 1.3 with new_flavor) and BDMs.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NotificationAction } from '../../../src/compute/states';
import { RemoteFailure, type RequestContext } from '../../../src/messaging';
import type { InstanceNotificationExtras, NotificationPhase } from '../../../src/notifications';
import { NovaObject, type Flavor, type Instance } from '../../../src/objects';
import { REPO_ROOT } from '../objects/capture-fixtures';
import { assertSameShape, harness } from '../notifications/support';

interface GoldenCase {
  readonly name: string;
  readonly context: RequestContext;
  readonly instance: unknown;
  readonly call: { action: NotificationAction; phase: NotificationPhase; failure?: unknown; new_flavor?: unknown };
  readonly expected: ReadonlyArray<{ publisher_id: string; event_type: string; priority: string; payload: unknown }>;
}

const GOLDEN: readonly GoldenCase[] = JSON.parse(readFileSync(join(REPO_ROOT, 'test/unit/compute/resize-golden.json'), 'utf8')) as GoldenCase[];

describe('compute: resize notifications are the ones Nova sends (resize-golden.json)', () => {
  it('covers every resize action and phase Berth sends', () => {
    assert.deepEqual(GOLDEN.map((g) => g.name), [
      'resize_prep.start', 'resize_prep.end', 'resize_finish.start', 'resize_finish.end', 'resize_confirm.start',
      'resize_confirm.end', 'resize_revert.start', 'resize_revert.end', 'resize.error',
    ]);
  });

  for (const golden of GOLDEN) {
    it(golden.name, async () => {
      const h = harness();
      const { action, phase } = golden.call;
      const extras: InstanceNotificationExtras = {
        ...(golden.call.failure ? { fault: RemoteFailure.deserialize(JSON.stringify(golden.call.failure)) } : {}),
        ...(golden.call.new_flavor ? { newFlavor: NovaObject.fromPrimitive(golden.call.new_flavor) as Flavor } : {}),
      };
      await h.notifier.instanceAction(golden.context, NovaObject.fromPrimitive(golden.instance) as Instance, action, phase, extras);
      assert.deepEqual(h.loads, [], 'the instance had every field');
      const published = h.session.published;
      assert.equal(published.length, golden.expected.length);
      golden.expected.forEach((expected, i) => {
        const sent = published[i];
        assert.ok(sent);
        const topic = expected.publisher_id.startsWith('nova-compute:') ? 'versioned_notifications' : 'notifications';
        assert.equal(sent.routingKey, `${topic}.${expected.priority.toLowerCase()}`);
        const { publisher_id, event_type, priority, payload } = sent.message;
        assertSameShape({ publisher_id, event_type, priority, payload }, expected, expected.event_type);
      });
    });
  }
});
