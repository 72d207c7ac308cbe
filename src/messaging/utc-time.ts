// Python's datetime renderings that appear on the wire. Both are UTC without a zone suffix and carry microseconds,
// which Date cannot hold: the wall clock gives the milliseconds, the monotonic clock the sub-millisecond digits.

/** Microseconds since the epoch (UTC). */
export function utcNowMicros(): number {
  const subMs = Number(process.hrtime.bigint() / 1000n) % 1000;
  return Date.now() * 1000 + subMs;
}

function render(micros: number, separator: 'T' | ' '): { base: string; fraction: string } {
  const whole = Math.floor(micros);
  const date = new Date(Math.floor(whole / 1000));
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const fraction = String(((whole % 1_000_000) + 1_000_000) % 1_000_000).padStart(6, '0');
  return { base: `${iso.slice(0, 10)}${separator}${iso.slice(11, 19)}`, fraction };
}

/** `%Y-%m-%dT%H:%M:%S.%f` (nova.utils.strtime): the request context's `timestamp`. */
export function contextTimestamp(micros: number = utcNowMicros()): string {
  const { base, fraction } = render(micros, 'T');
  return `${base}.${fraction}`;
}

/** `str(datetime)` of a naive UTC datetime: a notification's `timestamp`; Python drops the fraction when it is zero. */
export function pythonDatetimeStr(micros: number = utcNowMicros()): string {
  const { base, fraction } = render(micros, ' ');
  return fraction === '000000' ? base : `${base}.${fraction}`;
}
