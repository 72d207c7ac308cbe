// The INI dialect of oslo.config (oslo_config/iniparser.py + cfg.ConfigParser), so a nova.conf reads the same here as
// in Nova: only whole-line comments, indented continuation lines joined with "\n", one pair of matching quotes
// stripped, repeated keys kept in order, section names lower-cased except DEFAULT.
import { ConfigParseError } from './config-error';

/** One `key = value` assignment; `line` is the line of the key. */
export interface IniValue {
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

/** A parsed file: normalized section name → option name → every assignment of it, in file order. */
export interface IniFile {
  readonly file: string;
  readonly sections: ReadonlyMap<string, ReadonlyMap<string, readonly IniValue[]>>;
}

/** oslo.config matches section names case-insensitively, except that only `[DEFAULT]` is the default section. */
export function normalizeSectionName(name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase();
}

export function parseIni(text: string, file: string): IniFile {
  const sections = new Map<string, Map<string, IniValue[]>>();
  let section: Map<string, IniValue[]> | undefined;
  let key: string | undefined;
  let keyLine = 0;
  let value: string[] = [];

  const flush = (): void => {
    if (key === undefined) return;
    if (section === undefined) throw new ConfigParseError(file, keyLine, 'Section must be started before assignment');
    const values = section.get(key) ?? [];
    values.push({ value: value.join('\n'), file, line: keyLine });
    section.set(key, values);
    key = undefined;
    value = [];
  };

  // Python's text mode splits on \n, \r\n and \r alike. A UTF-8 byte-order mark (which oslo would choke on) is dropped.
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trimEnd();
    if (line === '') {
      flush(); // a blank line ends a multi-line value
      return;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (key === undefined) throw new ConfigParseError(file, lineNo, 'Unexpected continuation line');
      value.push(line.trimStart());
      return;
    }
    flush();
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw new ConfigParseError(file, lineNo, 'Invalid section (must end with ])');
      if (line.length <= 2) throw new ConfigParseError(file, lineNo, 'Empty section name');
      const name = normalizeSectionName(line.slice(1, -1));
      section = sections.get(name) ?? new Map<string, IniValue[]>();
      sections.set(name, section);
    } else if (line.startsWith('#') || line.startsWith(';')) {
      // a comment; inline comments do not exist in this dialect ("a = b # c" has the value "b # c")
    } else {
      const [k, v] = splitKeyValue(line, file, lineNo);
      key = k;
      keyLine = lineNo;
      value = [v];
    }
  });
  flush();
  return { file, sections };
}

/** The first of ':' or '=' separates key from value; a value wholly wrapped in matching quotes loses them. */
function splitKeyValue(line: string, file: string, lineNo: number): [string, string] {
  const colon = line.indexOf(':');
  const equal = line.indexOf('=');
  if (colon < 0 && equal < 0) throw new ConfigParseError(file, lineNo, "No ':' or '=' found in assignment");
  const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon;
  const key = line.slice(0, at).trim();
  if (key === '') throw new ConfigParseError(file, lineNo, 'Key cannot be empty');
  let value = line.slice(at + 1).trim();
  if (value !== '' && (value[0] === '"' || value[0] === "'") && value[0] === value[value.length - 1]) {
    value = value.slice(1, -1);
  }
  return [key, value];
}
