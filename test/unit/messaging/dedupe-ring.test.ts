import assert from 'node:assert/strict';
import { DedupeRing, DUPLICATE_CHECK_SIZE } from '../../../src/messaging/dedupe-ring';

describe('messaging dedupe ring', () => {
  it('remembers the last 16 unique ids, like oslo', () => {
    assert.equal(DUPLICATE_CHECK_SIZE, 16);
    const ring = new DedupeRing();
    const ids = Array.from({ length: 17 }, (_, i) => `id-${i}`);
    for (const id of ids) assert.equal(ring.seen(id), false);
    // id-0 was pushed out by the 17th; id-1 … id-16 are still there.
    for (const id of ids.slice(1)) assert.equal(ring.seen(id), true);
    assert.equal(ring.seen('id-0'), false);
  });

  it('never treats a missing or falsy id as a duplicate', () => {
    const ring = new DedupeRing();
    for (const id of [undefined, null, '', 0, false, [], {}]) {
      assert.equal(ring.seen(id), false);
      assert.equal(ring.seen(id), false);
    }
  });

  it('compares non-string ids by value', () => {
    const ring = new DedupeRing();
    assert.equal(ring.seen(12), false);
    assert.equal(ring.seen(12), true);
    assert.equal(ring.seen('12'), false);
  });
});
