import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasControlChar, hasLineBreak, isToken } from './fields.ts';

// The definitions, as the RFCs write them: the loops must agree with them on any text.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LINE_BREAK = /[\0\r\n]/;
const CONTROL = /[\0-\x08\n-\x1f\x7f]/;

const texts = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: fc.constantFrom('a', 'Z', '-', '!', ' ', '\t', '\r', '\n', '\0', '\x7f', 'é', ':', '"'), maxLength: 12 }));

describe('header field checks', () => {
  it('agree with the grammar on any text', () => {
    fc.assert(
      fc.property(texts, fc.nat(40), fc.nat(40), (text, a, b) => {
        expect(isToken(text)).toBe(TOKEN.test(text));
        expect(hasLineBreak(text)).toBe(LINE_BREAK.test(text));
        const [start, end] = [Math.min(a, b, text.length), Math.min(Math.max(a, b), text.length)];
        expect(hasControlChar(text, start, end)).toBe(CONTROL.test(text.slice(start, end)));
      }),
      { numRuns: 2000 },
    );
  });

  it('at the edges', () => {
    expect(isToken('')).toBe(false);
    expect(isToken('Mcp-Session-Id')).toBe(true);
    expect(isToken('x\u0100')).toBe(false);
    expect(hasControlChar('a\tb', 0, 3)).toBe(false);
    expect(hasControlChar('a\x7f', 0, 1)).toBe(false);
    expect(hasControlChar('a\x7f', 0, 2)).toBe(true);
  });
});
