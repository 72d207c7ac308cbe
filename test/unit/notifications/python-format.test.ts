// Python's spellings the legacy payloads are made of; the expected strings were printed by python3 itself.
import { strict as assert } from 'node:assert';
import {
  builtinExceptionRepr,
  nullSafeIsotime,
  nullSafeStr,
  pyAwareDatetimeStr,
  pyRepr,
  safeTruncate,
} from '../../../src/notifications/python-format';

describe('notifications: Python renderings', () => {
  it('repr() of strings picks the quote Python picks and escapes like Python', () => {
    assert.equal(pyRepr("it's"), `"it's"`);
    assert.equal(pyRepr(`say "hi" it's`), `'say "hi" it\\'s'`);
    assert.equal(pyRepr('a\\b\n\x01\x7fé\xa0'), `'a\\\\b\\n\\x01\\x7fé\\xa0'`);
  });

  it('repr() of containers and constants', () => {
    assert.equal(pyRepr({ a: [1, null, true], b: 'x' }), "{'a': [1, None, True], 'b': 'x'}");
  });

  it('repr() of builtin exceptions with no, one and several arguments', () => {
    assert.equal(builtinExceptionRepr('ValueError', []), 'ValueError()');
    assert.equal(builtinExceptionRepr('ValueError', ['a']), "ValueError('a')");
    assert.equal(builtinExceptionRepr('ValueError', ['a', 1]), "ValueError('a', 1)");
  });

  it('str() of an aware datetime keeps the fraction only when there is one', () => {
    assert.equal(pyAwareDatetimeStr(new Date('2026-11-30T01:08:21.123Z')), '2026-11-30 01:08:21.123000+00:00');
    assert.equal(pyAwareDatetimeStr(new Date('2026-11-30T01:08:21Z')), '2026-11-30 01:08:21+00:00');
    assert.equal(pyAwareDatetimeStr(null), 'None');
  });

  it('null_safe_isotime and null_safe_str', () => {
    assert.equal(nullSafeIsotime(new Date('2026-11-30T01:10:04Z')), '2026-11-30T01:10:04.000000');
    assert.equal(nullSafeIsotime(null), '');
    assert.equal(nullSafeStr(null), '');
    assert.equal(nullSafeStr('powering-off'), 'powering-off');
    assert.equal(nullSafeStr(0), '');
  });

  it('safe_truncate counts UTF-8 bytes and backs off a split character', () => {
    assert.equal(safeTruncate('abc', 255), 'abc');
    assert.equal(safeTruncate('ab€', 4), 'ab');
    assert.equal(safeTruncate('ab€', 5), 'ab€');
  });
});
