/** Small statistics helpers for combining rounds. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** CPU microseconds per call between two cumulative samples. */
export function cpuPerCall(before: { user: number; system: number }, after: { user: number; system: number }, calls: number): number {
  if (calls <= 0) return Number.NaN;
  return (after.user - before.user + after.system - before.system) / calls;
}
