import { parse } from '@bufbuild/cel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCel } from './cel.ts';
import { requirementsOf } from './cel-prefilter.ts';

const VARIABLES = ['mcp', 'jwt'];

describe('CEL prefilter', () => {
  it('finds the string equalities of a top-level && chain, on either side, and nothing else', () => {
    const parse = (source: string) => requirementsOf(compileExpr(source));
    expect(parse('mcp.method == "tools/call" && "x" == mcp.tool.name && jwt.n > 3')).toEqual([
      { path: ['mcp', 'method'], value: 'tools/call' },
      { path: ['mcp', 'tool', 'name'], value: 'x' },
    ]);
    expect(parse('mcp.method == "a" || mcp.method == "b"')).toEqual([]);
    expect(parse('!(mcp.method == "a")')).toEqual([]);
    expect(parse('mcp["method"] == "a" && has(mcp.tool) && mcp.n == 1')).toEqual([]);
  });

  it('never changes a result: evaluated with and without it, every expression and activation agree', () => {
    const field = fc.constantFrom('method', 'name', 'tool', 'x');
    const path = fc.array(field, { minLength: 1, maxLength: 3 }).map((fields) => `mcp.${fields.join('.')}`);
    const literal = fc.constantFrom('"a"', '"b"', '"tools/call"', '1', 'true');
    const comparison = fc.tuple(path, fc.constantFrom('==', '!='), literal, fc.boolean()).map(([p, op, l, flip]) => (flip ? `${l} ${op} ${p}` : `${p} ${op} ${l}`));
    const term = fc.oneof(comparison, path.map((p) => `has(${p})`), fc.constantFrom('jwt.sub == "u"', 'mcp.x.size() > 0', 'true', 'false'));
    const expression = fc.array(fc.tuple(term, fc.constantFrom('&&', '||')), { minLength: 1, maxLength: 4 }).map((parts) =>
      parts.map(([t, op], i) => (i === 0 ? t : `${op} ${t}`)).join(' '),
    );
    const leaf: fc.Arbitrary<unknown> = fc.oneof(fc.constantFrom('a', 'b', 'tools/call', 'x'), fc.integer({ min: 0, max: 2 }), fc.boolean(), fc.constant(null), fc.constant(undefined));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, tie('record'), tie('map')),
      record: fc.dictionary(field, tie('node'), { maxKeys: 3 }),
      map: fc.dictionary(field, tie('node'), { maxKeys: 2 }).map((d) => new Map(Object.entries(d))),
    })).node;
    const activation = fc.record({ mcp: value, jwt: fc.oneof(fc.constant(undefined), fc.record({ sub: fc.constantFrom('u', 'v') })) });
    fc.assert(
      fc.property(expression, activation, (source, act) => {
        const fast = compileCel(source, VARIABLES);
        const plain = compileCel(source, VARIABLES, { prefilter: false });
        const a = fast.evaluate(act);
        const b = plain.evaluate(act);
        // Errors may word their position differently only if both are errors.
        expect('value' in a ? a : 'error').toEqual('value' in b ? b : 'error');
      }),
      { numRuns: 2000 },
    );
  });
});

function compileExpr(source: string) {
  return parse(source).expr;
}
