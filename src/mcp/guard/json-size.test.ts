import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonByteLength } from './json-size.ts';

/** Any UTF-16 code unit, so strings include controls, quotes and lone surrogates. */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
const anyString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: anyUnit }));

const value = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    anyString,
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('node')),
    fc.dictionary(anyString, tie('node')),
  ),
})).node;

function exact(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
}

describe('jsonByteLength', () => {
  it('equals the UTF-8 length of JSON.stringify for any JSON value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), value), (v) => {
        expect(jsonByteLength(v)).toBe(exact(v));
      }),
      { numRuns: 3000 },
    );
  });

  it('counts what JSON.stringify drops or turns into null', () => {
    const v = { a: undefined, b: () => 1, c: [undefined, () => 1, Symbol('s')], d: Number.NaN, e: -0, f: Number.POSITIVE_INFINITY };
    expect(jsonByteLength(v)).toBe(exact(v));
    expect(jsonByteLength(undefined)).toBe(0);
  });

  it('stops soon after passing the limit', () => {
    const big = { items: Array.from({ length: 100_000 }, (_, i) => ({ i, text: 'x'.repeat(100) })) };
    const counted = jsonByteLength(big, 1000);
    expect(counted).toBeGreaterThan(1000);
    expect(counted).toBeLessThan(1300);
    expect(jsonByteLength(big, exact(big))).toBe(exact(big));
  });
});
