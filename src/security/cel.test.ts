import { describe, expect, it } from 'vitest';
import { CelCompileError, compileCel, type CompiledCel } from './cel.ts';

const VARIABLES = ['mcp', 'jwt', 'request', 'source'] as const;

function activation(): Record<string, unknown> {
  return {
    mcp: {
      method: 'tools/call',
      tool: { name: 'x', backend: 'b', arguments: { path: '/tmp/a', count: 5, ratio: 0.75, tags: ['a', 'b'] } },
    },
    jwt: { sub: 'u', groups: ['a', 'admin'], email_verified: true },
    request: { headers: { 'x-team': 'blue', 'x-a': '1' } },
    source: { address: '127.0.0.1', identity: 'u', spiffe: '' },
  };
}

function compile(source: string): CompiledCel {
  return compileCel(source, VARIABLES);
}

function valueOf(source: string, act: Record<string, unknown> = activation()): boolean {
  const result = compile(source).evaluate(act);
  if ('error' in result) throw new Error(`unexpected evaluation error: ${result.error}`);
  return result.value;
}

function compileError(source: string, allowed: readonly string[] = VARIABLES): CelCompileError {
  try {
    compileCel(source, allowed);
  } catch (err) {
    if (err instanceof CelCompileError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(source)} not to compile`);
}

describe('compileCel: supported expressions', () => {
  it.each([
    ['mcp.tool.name == "x"', true],
    ['mcp.tool.name == "y"', false],
    ['mcp.tool.arguments.path.startsWith("/tmp/")', true],
    ['mcp.tool.arguments.path.startsWith("/etc/")', false],
    ['"admin" in jwt.groups', true],
    ['"root" in jwt.groups', false],
    ['jwt.groups.exists(g, g == "admin")', true],
    ['jwt.groups.all(g, g.size() < 3)', false],
    ['has(jwt.email)', false],
    ['has(jwt.sub)', true],
    ['request.headers["x-team"] == "blue"', true],
    ['"x-missing" in request.headers', false],
    ['mcp.method in ["tools/list", "tools/call"]', true],
    ['mcp.method in ["prompts/get"]', false],
    ['size(mcp.tool.arguments.path) < 100', true],
    ['mcp.tool.arguments.path.size() == 6', true],
    ['mcp.tool.arguments.path.matches("^/tmp/[a-z]+$")', true],
    ['mcp.tool.name.matches("^admin_")', false],
    ['source.address == "127.0.0.1" && source.spiffe == ""', true],
    ['jwt.email_verified', true],
    ['mcp.tool.name.lowerAscii() == "x"', true],
    ['mcp.tool.arguments.tags.exists(t, t in jwt.groups)', true],
    ['!(mcp.tool.backend == "b") || mcp.tool.name != "x"', false],
  ])('%s → %s', (source, expected) => {
    expect(valueOf(source)).toBe(expected);
  });

  it('treats JSON integers as CEL int and mixes them with double in comparisons', () => {
    // count is the JS number 5 (JSON has no int type); it is passed as CEL int.
    expect(valueOf('mcp.tool.arguments.count > 3')).toBe(true);
    expect(valueOf('mcp.tool.arguments.count > 3.5')).toBe(true);
    expect(valueOf('mcp.tool.arguments.count == 5')).toBe(true);
    expect(valueOf('mcp.tool.arguments.count == 5.0')).toBe(true);
    expect(valueOf('mcp.tool.arguments.count + 1 == 6')).toBe(true);
    expect(valueOf('mcp.tool.arguments.count % 2 == 1')).toBe(true);
    expect(valueOf('mcp.tool.arguments.count <= size(mcp.tool.arguments.path)')).toBe(true);
    // A fractional number stays double; comparing it with an int literal works.
    expect(valueOf('mcp.tool.arguments.ratio > 0')).toBe(true);
    expect(valueOf('mcp.tool.arguments.ratio < 1')).toBe(true);
    expect(valueOf('double(mcp.tool.arguments.count) + mcp.tool.arguments.ratio == 5.75')).toBe(true);
    // Arithmetic mixing int and double has no overload in CEL: an error, not a silent match.
    expect(compile('mcp.tool.arguments.count + mcp.tool.arguments.ratio > 0').evaluate(activation())).toHaveProperty('error');
  });

  it('accepts null-prototype objects, Maps and undefined entries like JSON would', () => {
    const headers = Object.assign(Object.create(null) as Record<string, unknown>, { 'x-team': 'blue', skipped: undefined });
    const act = { request: { headers }, jwt: new Map<string, unknown>([['groups', ['admin']]]) };
    expect(valueOf('request.headers["x-team"] == "blue" && !has(request.headers.skipped)', act)).toBe(true);
    expect(valueOf('"admin" in jwt.groups', act)).toBe(true);
  });

  it('reports the top-level variables an expression reads, ignoring comprehension variables', () => {
    expect([...compile('mcp.tool.name == "x"').variables]).toEqual(['mcp']);
    expect(new Set(compile('jwt.groups.exists(g, g == mcp.tool.name) || has(request.headers.x)').variables)).toEqual(
      new Set(['jwt', 'mcp', 'request']),
    );
    expect(compile('[1, 2].map(x, x * 2)[1] == 4').variables.size).toBe(0);
    expect(compile('"a" == "a"').source).toBe('"a" == "a"');
  });

  it('does not need variables the expression does not read', () => {
    const compiled = compile('mcp.method == "tools/call"');
    expect(compiled.evaluate({ mcp: { method: 'tools/call' } })).toEqual({ value: true });
  });
});

describe('compileCel: compile errors', () => {
  it('reports syntax errors with a 1-based line and column', () => {
    const single = compileError('mcp.tool.name = "x"');
    expect(single.message).toMatch(/syntax error/);
    expect(single.position).toEqual({ line: 1, column: 15 });

    const multi = compileError('mcp.method == "tools/call"\n  && mcp.tool.name ==== "x"');
    // The parser reports where it stopped accepting input: the start of the bad '=='.
    expect(multi.position).toEqual({ line: 2, column: 20 });
    expect(multi.message).toContain('line 2, column 20');

    expect(compileError('"unterminated').position).toEqual({ line: 1, column: 1 });
    expect(compileError('').position).toEqual({ line: 1, column: 1 });
  });

  it('rejects unknown top-level variables with their position', () => {
    const err = compileError('mcp.tool.name == "x" &&\n  tokn.sub == "u"');
    expect(err.message).toContain("unknown variable 'tokn'");
    expect(err.position).toEqual({ line: 2, column: 3 });

    expect(compileError('jwt.sub == "u"', ['mcp']).message).toContain("unknown variable 'jwt'");
    // A comprehension variable does not leak out of its macro.
    expect(compileError('jwt.groups.exists(g, g == "a") && g == "a"').message).toContain("unknown variable 'g'");
  });

  it('rejects unknown functions, invalid constant regular expressions and message literals', () => {
    const fn = compileError('mcp.tool.name.startswith("a")');
    expect(fn.message).toContain("unknown function 'startswith'");
    expect(fn.position).toEqual({ line: 1, column: 14 }); // the '.' of the call
    expect(compileError('mcp.tool.name.matches("[a-")').message).toContain('invalid regular expression');
    expect(compileError('google.protobuf.Duration{seconds: 1} == duration("1s")').message).toContain('not supported');
  });
});

describe('compileCel: evaluation errors are results, never exceptions', () => {
  it('returns {error} for a missing field', () => {
    const result = compile('jwt.email == "u@example.com"').evaluate(activation());
    expect(result).toHaveProperty('error');
    expect((result as { error: string }).error).toMatch(/email/);
  });

  it('returns {error} for a missing top-level variable, a missing map key and a type error', () => {
    expect(compile('jwt.sub == "u"').evaluate({ mcp: {} })).toHaveProperty('error');
    expect(compile('request.headers["x-nope"] == "1"').evaluate(activation())).toHaveProperty('error');
    expect(compile('mcp.tool.name > 3').evaluate(activation())).toHaveProperty('error');
    expect(compile('mcp.tool.arguments.path.startsWith(1)').evaluate(activation())).toHaveProperty('error');
  });

  it('returns {error} when the result is not a bool', () => {
    expect(compile('mcp.tool.name').evaluate(activation())).toEqual({ error: 'expression evaluated to a string, not a bool' });
    expect(compile('size(jwt.groups)').evaluate(activation())).toHaveProperty('error');
  });

  it('lets an error be absorbed where CEL logic allows it', () => {
    // CEL's && and || are commutative with respect to errors: a definite result wins.
    expect(compile('has(jwt.email) && jwt.email.endsWith("@example.com")').evaluate(activation())).toEqual({ value: false });
    expect(compile('jwt.email == "x" || mcp.tool.name == "x"').evaluate(activation())).toEqual({ value: true });
  });

  it('returns {error} for cyclic or absurdly deep activations', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(compile('has(mcp.self)').evaluate({ mcp: cyclic })).toHaveProperty('error');
  });
});

describe('compileCel: per-request cost', () => {
  it('compiles once and evaluates many times', () => {
    const compiled = compile(
      'mcp.method == "tools/call" && mcp.tool.arguments.path.startsWith("/tmp/") && ' +
        '("admin" in jwt.groups || jwt.groups.exists(g, g == "ops")) && mcp.tool.arguments.count > 3',
    );
    const act = activation();
    const n = 100_000;
    let matched = 0;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const result = compiled.evaluate(act);
      if ('value' in result && result.value) matched++;
    }
    const ms = performance.now() - start;
    expect(matched).toBe(n);
    // Logged, not asserted: machine speed varies.
    console.log(`cel: ${n} evaluations in ${ms.toFixed(0)} ms (${((ms * 1000) / n).toFixed(2)} µs each)`);
  });
});
