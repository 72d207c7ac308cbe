import assert from 'node:assert/strict';
import { ObsoleteReplyQueues } from '../../../src/messaging/obsolete-reply-queues';

describe('messaging obsolete reply queues', () => {
  it('remembers a dead reply queue for the TTL only', () => {
    let now = 0;
    const cache = new ObsoleteReplyQueues(60_000, 200, () => now);
    cache.add('reply_a');
    assert.equal(cache.has('reply_a'), true);
    assert.equal(cache.has('reply_b'), false);
    now = 59_999;
    assert.equal(cache.has('reply_a'), true);
    now = 60_000;
    assert.equal(cache.has('reply_a'), false);
  });

  it('keeps at most the newest entries', () => {
    const cache = new ObsoleteReplyQueues(60_000, 3, () => 0);
    for (const q of ['a', 'b', 'c', 'd']) cache.add(q);
    assert.deepEqual(['a', 'b', 'c', 'd'].map((q) => cache.has(q)), [false, true, true, true]);
  });
});
