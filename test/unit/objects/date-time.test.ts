import assert from 'node:assert/strict';
import {
  formatNotificationTimestamp,
  formatObjectDateTime,
  formatPlainDateTime,
  parseIsoDateTime,
} from '../../../src/objects';

describe('objects: datetimes', () => {
  const cases: Array<[string, string]> = [
    ['2026-11-30T01:08:22Z', '2026-11-30T01:08:22.000Z'],
    ['2026-11-30T01:08:22', '2026-11-30T01:08:22.000Z'],
    ['2026-11-30T01:07:24.190784', '2026-11-30T01:07:24.190Z'],
    ['2026-11-30 01:07:24.190784', '2026-11-30T01:07:24.190Z'],
    ['2026-11-30T03:08:22+02:00', '2026-11-30T01:08:22.000Z'],
    ['2026-11-30T01:08:22-0130', '2026-11-30T02:38:22.000Z'],
    ['2026-11-30T01:08:22+00', '2026-11-30T01:08:22.000Z'],
    ['2026-11-30T01:08', '2026-11-30T01:08:00.000Z'],
    ['2026-11-30', '2026-11-30T00:00:00.000Z'],
    ['20261130T010822Z', '2026-11-30T01:08:22.000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
  ];
  for (const [text, iso] of cases) {
    it(`parses ${text}`, () => assert.equal(parseIsoDateTime(text)?.toISOString(), iso));
  }

  for (const bad of ['', 'yesterday', '2026-13-01', '2026-02-30', '2025-02-29', '2026-11-30T25:00:00', '2026-11-30T01:08:22+25:00', '2026-11-30Tjunk']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseIsoDateTime(bad), undefined));
  }

  it('formats the three wire spellings', () => {
    const d = new Date('2026-11-30T01:07:24.190Z');
    assert.equal(formatObjectDateTime(d), '2026-11-30T01:07:24Z');
    assert.equal(formatPlainDateTime(d), '2026-11-30T01:07:24.190000');
    assert.equal(formatNotificationTimestamp(d), '2026-11-30 01:07:24.190000');
  });

  it("writes a notification timestamp without fraction when it is zero, like Python's str(datetime)", () => {
    assert.equal(formatNotificationTimestamp(new Date('2026-11-30T01:07:24.000Z')), '2026-11-30 01:07:24');
  });

  it('handles years below 100 and above 9999-style padding', () => {
    assert.equal(parseIsoDateTime('0050-01-01T00:00:00Z')?.getUTCFullYear(), 50);
    assert.equal(formatObjectDateTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5))), '2026-01-02T03:04:05Z');
  });
});
