// The Python renderings the legacy payloads are made of: str() and repr() of values, str() of an aware datetime,
// nova.utils.strtime and nova.utils.safe_truncate. Nova builds these dicts in Python and oslo serialises whatever
// they hold, so the spelling is Python's.
import { formatNotificationTimestamp, formatPlainDateTime } from '../objects';

/** repr() of a JSON-like value (str, int, bool, None, list, dict). */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return pyStrRepr(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : value > 0 ? 'inf' : value < 0 ? '-inf' : 'nan';
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    const items = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyStrRepr(k)}: ${pyRepr(v)}`);
    return `{${items.join(', ')}}`;
  }
  return pyStrRepr(String(value));
}

/** str() of a value: strings as they are, everything else as repr() (None, True, numbers…). */
export function pyStr(value: unknown): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/** repr() of an exception: `Name('message')`, `Name()`, `Name('a', 1)` (BaseException.__repr__). */
export function builtinExceptionRepr(className: string, args: readonly unknown[]): string {
  return `${className}(${args.map(pyRepr).join(', ')})`;
}

/** nova.notifications.base.null_safe_str: `str(s) if s else ''`. */
export function nullSafeStr(value: unknown): string {
  return isTruthy(value) ? pyStr(value) : '';
}

/** nova.notifications.base.null_safe_isotime: strtime() of a datetime, else `str(s) if s else ''`. */
export function nullSafeIsotime(value: unknown): string {
  if (value instanceof Date) return formatPlainDateTime(value);
  return nullSafeStr(value);
}

/** str() of a timezone-aware UTC datetime, as Instance fields hold them: `2026-11-30 01:08:21+00:00`. */
export function pyAwareDatetimeStr(value: unknown): string {
  return value instanceof Date ? `${formatNotificationTimestamp(value)}+00:00` : pyStr(value ?? null);
}

/** Python truthiness of a JSON-like value. */
function isTruthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && !(value instanceof Date)) return Object.keys(value as object).length > 0;
  return true;
}

/** nova.utils.safe_truncate: at most `length` UTF-8 bytes, never cutting a character in half. */
export function safeTruncate(value: string, length: number): string {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length <= length) return value;
  let end = length;
  // Back off continuation bytes (10xxxxxx) so the cut falls on a character boundary.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

function pyStrRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || (code >= 0x7f && code <= 0xa0) || code === 0xad) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += `\\u${code.toString(16)}`;
    else out += ch;
  }
  return `${quote}${out}${quote}`;
}
