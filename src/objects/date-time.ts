// The three datetime spellings on Nova's wire (nova-compute-protocol.md §2.2, §1.6, §4.11), and one tolerant parser.
// JavaScript dates hold milliseconds, so the microsecond digits we write end in 000.

const ISO_8601 =
  /^(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Parses any ISO 8601 date or date-time as Python's iso8601.parse_date does (`T` or space, optional seconds and
 * fraction, `Z` / `±HH[:MM]`); a value without a zone is UTC, as oslo assumes for naive datetimes.
 * Returns undefined when `text` is not such a value.
 */
export function parseIsoDateTime(text: string): Date | undefined {
  const m = ISO_8601.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = frac === '' ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  // setUTCFullYear, unlike Date.UTC, does not map years 0..99 to 1900..1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute - offsetMinutes, second, ms);
  return date;
}

/** Object fields (oslo `_utils.isotime`): `YYYY-MM-DDTHH:MM:SSZ`, no fraction. */
export function formatObjectDateTime(date: Date): string {
  return `${datePart(date)}T${timePart(date)}Z`;
}

/** Context timestamps and bare datetimes in RPC arguments (`%Y-%m-%dT%H:%M:%S.%f`, no zone). */
export function formatPlainDateTime(date: Date): string {
  return `${datePart(date)}T${timePart(date)}.${micros(date)}`;
}

/**
 * Notification `timestamp`: Python's `str(datetime)`, i.e. `%Y-%m-%d %H:%M:%S.%f` — and, exactly like Python, without
 * the fraction when it is zero.
 */
export function formatNotificationTimestamp(date: Date): string {
  const base = `${datePart(date)} ${timePart(date)}`;
  return date.getUTCMilliseconds() === 0 ? base : `${base}.${micros(date)}`;
}

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function datePart(date: Date): string {
  return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}`;
}

function timePart(date: Date): string {
  return `${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}`;
}

function micros(date: Date): string {
  return `${pad(date.getUTCMilliseconds(), 3)}000`;
}
