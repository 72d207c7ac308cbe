// Numbers the e2e suites print (time to up, boot to ACTIVE, replies/s, RSS): measured and shown, never asserted.

/** Prints `measured: <what>: <value> <unit>` under the running test, and returns the value. */
export function printMeasure(what: string, value: number, unit: string): number {
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(unit === 's' ? 2 : 1);
  console.log(`      measured: ${what}: ${shown} ${unit}`);
  return value;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
