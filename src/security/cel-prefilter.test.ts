import { parse } from '@bufbuild/cel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCel } from './cel.ts';
import { ActivationPaths, prefilterOf } from './cel-prefilter.ts';

const VARIABLES = ['mcp', 'jwt'];

describe('CEL prefilter', () => {
  it('finds the string equalities of a top-level && chain, on either side, and whether they are all of it', () => {
    const parse = (source: string) => prefilterOf(compileExpr(source));
    const both = [
      { path: ['mcp', 'method'], key: 'mcp.method', value: 'tools/call' },
      { path: ['mcp', 'tool', 'name'], key: 'mcp.tool.name', value: 'x' },
    ];
    expect(parse('mcp.method == "tools/call" && "x" == mcp.tool.name && jwt.n > 3')).toEqual({ requirements: both, complete: false });
    expect(parse('mcp.method == "tools/call" && "x" == mcp.tool.name')).toEqual({ requirements: both, complete: true });
    expect(parse('jwt.sub == "u"')).toEqual({ requirements: [{ path: ['jwt', 'sub'], key: 'jwt.sub', value: 'u' }], complete: true });
    expect(parse('mcp.method == "a" || mcp.method == "b"')).toBeUndefined();
    expect(parse('!(mcp.method == "a")')).toBeUndefined();
    expect(parse('mcp["method"] == "a" && has(mcp.tool) && mcp.n == 1')).toBeUndefined();
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
    fc.assert(fc.property(expression, activation, agree), { numRuns: 2000 });
  });

  it('decides chains of equalities alone as the interpreter does, satisfied or not', () => {
    const path = fc.array(fc.constantFrom('method', 'name', 'tool'), { minLength: 1, maxLength: 3 });
    const text = fc.constantFrom('a', 'b', 'tools/call');
    const chain = fc.array(fc.tuple(path, text, fc.boolean()), { minLength: 1, maxLength: 4 });
    // The activation is built to satisfy the chain, then some of its strings are changed or replaced by other types.
    const spoil = fc.array(fc.tuple(fc.nat(), fc.constantFrom<unknown>('b', 'a', 1, null, undefined, true, new Map([['name', 'a']]))), { maxLength: 2 });
    fc.assert(
      fc.property(chain, spoil, (terms, spoils) => {
        const mcp: Record<string, unknown> = {};
        for (const [fields, value] of terms) place(mcp, fields, value);
        for (const [at, replacement] of spoils) place(mcp, terms[at % terms.length]![0], replacement);
        const source = terms.map(([fields, value, flip]) => (flip ? `"${value}" == mcp.${fields.join('.')}` : `mcp.${fields.join('.')} == "${value}"`)).join(' && ');
        agree(source, { mcp });
      }),
      { numRuns: 2000 },
    );
  });
});

/** Paths other expressions of a decision looked up before: a shared ActivationPaths must answer as a fresh one. */
const EARLIER = compileCel('mcp.method == "a" && mcp.tool.name == "b" && mcp.name.x == "x" && mcp.tool == "t"', VARIABLES);

function agree(source: string, activation: Record<string, unknown>): void {
  const a = compileCel(source, VARIABLES).evaluate(activation);
  const b = compileCel(source, VARIABLES, { prefilter: false }).evaluate(activation);
  const shared = new ActivationPaths(activation);
  EARLIER.evaluate(shared);
  const c = compileCel(source, VARIABLES).evaluate(shared);
  // Errors may word their position differently only if both are errors.
  const outcome = (r: typeof a) => ('value' in r ? r : 'error');
  expect(outcome(a)).toEqual(outcome(b));
  expect(outcome(c)).toEqual(outcome(b));
}

/** Sets record[fields...] = value, making plain records along the way (and replacing what is in the way). */
function place(record: Record<string, unknown>, fields: readonly string[], value: unknown): void {
  let at = record;
  for (const field of fields.slice(0, -1)) {
    const next = at[field];
    at = at[field] = next !== null && typeof next === 'object' && !(next instanceof Map) ? (next as Record<string, unknown>) : {};
  }
  at[fields.at(-1)!] = value;
}

function compileExpr(source: string) {
  return parse(source).expr;
}
