import assert from 'node:assert/strict';
import { contextTimestamp, pythonDatetimeStr, utcNowMicros } from '../../../src/messaging/utc-time';

describe('messaging UTC timestamps', () => {
  const micros = Date.UTC(2026, 10, 30, 1, 7, 24) * 1000 + 190784;

  it('renders the context timestamp like nova.utils.strtime', () => {
    assert.equal(contextTimestamp(micros), '2026-11-30T01:07:24.190784');
    assert.equal(contextTimestamp(micros - 190784), '2026-11-30T01:07:24.000000');
  });

  it('renders a notification timestamp like str(datetime), without a zero fraction', () => {
    assert.equal(pythonDatetimeStr(micros), '2026-11-30 01:07:24.190784');
    assert.equal(pythonDatetimeStr(micros - 190784), '2026-11-30 01:07:24');
    assert.equal(pythonDatetimeStr(micros - 190784 + 5), '2026-11-30 01:07:24.000005');
  });

  it('reads the wall clock with microseconds', () => {
    const now = utcNowMicros();
    assert.ok(Math.abs(now / 1000 - Date.now()) < 5_000);
    assert.ok(Number.isInteger(now));
  });
});
