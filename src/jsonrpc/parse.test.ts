import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonRpcError } from './errors.ts';
import { parseMessage } from './parse.ts';

describe('JSON-RPC parsing (property-based)', () => {
  it('any text either parses to a message or fails with -32700 / -32600, never anything else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        try {
          const m = parseMessage(text);
          expect(typeof m).toBe('object');
          expect((m as { jsonrpc: string }).jsonrpc).toBe('2.0');
        } catch (err) {
          expect(err).toBeInstanceOf(JsonRpcError);
          expect([-32700, -32600]).toContain((err as JsonRpcError).code);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('well-formed requests round-trip with their id, method and params', () => {
    const id = fc.oneof(fc.string(), fc.integer());
    fc.assert(
      fc.property(id, fc.string({ minLength: 1 }), fc.dictionary(fc.string(), fc.jsonValue()), (i, method, params) => {
        const m = parseMessage(JSON.stringify({ jsonrpc: '2.0', id: i, method, params }));
        expect(m).toMatchObject({ id: i, method });
      }),
      { numRuns: 500 },
    );
  });

  it('deeply nested and huge inputs are handled without crashing', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(() => parseMessage(deep)).toThrow(JsonRpcError);
    expect(() => parseMessage(`{"jsonrpc":"2.0","id":1e400,"method":"x"}`)).toThrow(JsonRpcError);
    expect(parseMessage(`{"jsonrpc":"2.0","id":1,"method":"x","params":{"n":1e400}}`)).toMatchObject({ method: 'x' });
  });
});
