/**
 * The current time as Date#toISOString writes it, for audit records: formatting a Date
 * costs close to a microsecond, and a busy gateway writes a record per tool call. The
 * text up to the seconds is kept per second, so a call only appends the milliseconds.
 * Exact for years 0 to 9999 (toISOString writes other years in a longer form).
 */
let second = Number.NaN;
let prefix = '';

export function isoNow(nowMs: number = Date.now()): string {
  const s = Math.floor(nowMs / 1000);
  if (s !== second) {
    second = s;
    prefix = new Date(s * 1000).toISOString().slice(0, 20);
  }
  const ms = nowMs - s * 1000;
  return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}
