import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoNow } from './iso-time.ts';

describe('isoNow', () => {
  it('writes what toISOString writes, for any millisecond of years 0 to 9999, in any order', () => {
    // Room at the top for the neighbours below.
    const ms = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 - 2_002 });
    fc.assert(
      fc.property(fc.array(ms, { minLength: 1, maxLength: 5 }), fc.nat({ max: 2000 }), (times, step) => {
        // Times far apart, and a run of neighbours within and across a second.
        for (const t of [...times, times[0]! + step, times[0]! + step + 1, times[0]!]) expect(isoNow(t)).toBe(new Date(t).toISOString());
      }),
      { numRuns: 2000 },
    );
  });

  it('is the current time by default', () => {
    const before = Date.now();
    const now = Date.parse(isoNow());
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });
});
