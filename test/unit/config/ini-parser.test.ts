import assert from 'node:assert/strict';
import { ConfigParseError, parseIni, type IniFile } from '../../../src/config';

/** The parsed file as oslo's ConfigParser builds its `normalized` dict: {section: {key: [values]}}. */
function asOslo(file: IniFile): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [section, options] of file.sections) {
    out[section] = Object.fromEntries([...options].map(([key, values]) => [key, values.map((v) => v.value)]));
  }
  return out;
}

// Each expectation below is what oslo.config 9.0.0 (Debian 12) produced for the same text, captured by running
// cfg.ConfigParser on it.
const ACCEPTED: Record<string, [string, Record<string, Record<string, string[]>>]> = {
  'key = value and key: value': ['[DEFAULT]\nfoo = bar\nbaz: qux\n', { DEFAULT: { foo: ['bar'], baz: ['qux'] } }],
  'the first of ":" and "=" separates': [
    '[s]\na = b:c\nd: e=f\ng=h\ni:j\n',
    { s: { a: ['b:c'], d: ['e=f'], g: ['h'], i: ['j'] } },
  ],
  'no inline comments': ['[s]\na = b # c\nd = e ; f\n', { s: { a: ['b # c'], d: ['e ; f'] } }],
  'whole-line # and ; comments': ['# top\n; semi\n[s]\n#a = 1\n;b = 2\nc = 3\n', { s: { c: ['3'] } }],
  'indented continuation lines join with newlines': [
    '[s]\na = one\n  two\n\tthree   \nb = x\n',
    { s: { a: ['one\ntwo\nthree'], b: ['x'] } },
  ],
  'an indented "#" continues the value': ['[s]\na = 1\n  # not a comment\n', { s: { a: ['1\n# not a comment'] } }],
  'one pair of matching quotes is stripped': [
    `[s]\na = "x y"\nb = 'x'\nc = "x'\nd = "\ne = ""\nf = "a"b"\ng =  ' padded '  \n`,
    { s: { a: ['x y'], b: ['x'], c: [`"x'`], d: [''], e: [''], f: ['a"b'], g: [' padded '] } },
  ],
  'repeated keys and sections accumulate in order': [
    '[s]\na = 1\na = 2\n[t]\nb = 3\n[s]\na = 3\n',
    { s: { a: ['1', '2', '3'] }, t: { b: ['3'] } },
  ],
  'section names are lower-cased, except DEFAULT': [
    '[Placement]\na = 1\n[default]\nb = 2\n[DEFAULT]\nc = 3\n[ DEFAULT ]\nd = 4\n',
    { placement: { a: ['1'] }, default: { b: ['2'] }, DEFAULT: { c: ['3'] }, ' default ': { d: ['4'] } },
  ],
  'empty values': ['[s]\na =\nb:\n', { s: { a: [''], b: [''] } }],
  'keys may contain spaces': ['[s]\na b = c\n', { s: { 'a b': ['c'] } }],
  'CRLF line ends': ['[s]\r\na = 1\r\n  2\r\nb = 3\r\n', { s: { a: ['1\n2'], b: ['3'] } }],
};

const REJECTED: Record<string, [string, string, number]> = {
  'a line without ":" or "="': ['[s]\nfoo\n', "No ':' or '=' found in assignment", 2],
  'an empty key': ['[s]\n= x\n', 'Key cannot be empty', 2],
  'a section without "]"': ['[s\n', 'Invalid section (must end with ])', 1],
  'an empty section name': ['[]\n', 'Empty section name', 1],
  'an assignment before any section': ['a = 1\n', 'Section must be started before assignment', 1],
  'a continuation after a blank line': ['[s]\na = 1\n\n  2\n', 'Unexpected continuation line', 4],
  'an indented line after a section': ['[s]\n  a = 1\n', 'Unexpected continuation line', 2],
  'a continuation after a comment': ['[s]\na = 1\n# c\n  2\n', 'Unexpected continuation line', 4],
};

describe('config/ini-parser: oslo.config semantics', () => {
  for (const [name, [text, expected]] of Object.entries(ACCEPTED)) {
    it(`accepts ${name}`, () => {
      assert.deepEqual(asOslo(parseIni(text, 'x.conf')), expected);
    });
  }

  for (const [name, [text, reason, line]] of Object.entries(REJECTED)) {
    it(`rejects ${name}, naming file and line`, () => {
      assert.throws(
        () => parseIni(text, '/etc/berth/x.conf'),
        (error: unknown) =>
          error instanceof ConfigParseError &&
          error.name === 'ConfigParseError' &&
          error.line === line &&
          error.message === `/etc/berth/x.conf:${line}: ${reason}`,
      );
    });
  }

  it('does not quote the offending line, which may hold a password', () => {
    assert.throws(() => parseIni('[placement]\npassword hunter2\n', 'x.conf'), (error: Error) => {
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });

  it('records the file and line of each assignment', () => {
    const file = parseIni('[s]\n\na = 1\n  more\nb = 2\n', 'y.conf');
    assert.deepEqual(file.sections.get('s')?.get('a'), [{ value: '1\nmore', file: 'y.conf', line: 3 }]);
    assert.deepEqual(file.sections.get('s')?.get('b'), [{ value: '2', file: 'y.conf', line: 5 }]);
  });

  it('drops a UTF-8 byte-order mark (where oslo would fail)', () => {
    assert.deepEqual(asOslo(parseIni('\uFEFF[DEFAULT]\na = 1\n', 'x.conf')), { DEFAULT: { a: ['1'] } });
  });

  it('reads an empty file as no sections', () => {
    assert.equal(parseIni('', 'x.conf').sections.size, 0);
  });
});
