import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonByteLength, MAX_JSON_GROWTH } from './json-size.ts';

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

/** JSON texts as a server may write them: numbers in exponent form, strings with \u escapes, whitespace. */
const hex4 = (code: number): string => `\\u${code.toString(16).padStart(4, '0')}`;
const jsonText = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    fc.tuple(fc.integer({ min: -9, max: 9 }), fc.integer({ min: -400, max: 400 })).map(([m, e]) => `${m}e${e}`),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
    anyString.map((text) => JSON.stringify(text)),
    // Unescaped, lone surrogates included: the text's own characters, as a server may send them.
    fc.string({ unit: anyUnit }).map((text) => `"${text.replace(/["\\\u0000-\u001f]/g, '')}"`),
    fc.array(fc.integer({ min: 0, max: 0xffff })).map((codes) => `"${codes.map(hex4).join('')}"`),
    fc.constantFrom('true', 'false', 'null'),
    fc.array(tie('node')).map((items) => `[ ${items.join(' , ')} ]`),
    fc.array(fc.tuple(anyString, tie('node'))).map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
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

  it('bounds a parsed text by its length: MAX_JSON_GROWTH bytes per character at most', () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        expect(jsonByteLength(JSON.parse(text))).toBeLessThanOrEqual(MAX_JSON_GROWTH * text.length);
      }),
      { numRuns: 3000 },
    );
    // The worst cases come close: a number in exponent form, a lone surrogate.
    expect(jsonByteLength(JSON.parse('9e20'))).toBe(21);
    expect(jsonByteLength(JSON.parse('"\\ud800"'))).toBe(8);
    expect(jsonByteLength(JSON.parse(`"${'\ud800'.repeat(100)}"`))).toBe(602);
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
