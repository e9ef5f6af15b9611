/**
 * CEL (Common Expression Language) rule conditions, on top of @bufbuild/cel.
 *
 * A rule's expression is compiled once, at config load: parsed, checked for variables
 * and functions that do not exist, and planned. Each request then only evaluates the
 * plan against an activation of plain JSON-like values.
 *
 * Numbers: JSON has one number type, CEL has int and double that do not mix in
 * arithmetic (`5.0 + 1` has no overload). Activation numbers that are safe integers
 * (|n| <= 2^53 - 1) are passed as CEL `int`; every other number stays `double`. So
 * `args.count > 3`, `args.count % 2 == 0` and `args.count + 1 == 6` all work for a JSON
 * `5`, and comparisons/equality across int and double (`args.ratio > 1`) work as well,
 * because CEL compares numbers across types. Arithmetic mixing an int with a fractional
 * value (`args.count + 0.5`) is an error; write `double(args.count) + 0.5`.
 *
 * Other conversions follow JSON: objects (also null-prototype ones) and Maps become CEL
 * maps, arrays lists, undefined/function entries are dropped from maps and become null
 * in lists, objects with toJSON() (Date) are converted through it. Only the top-level
 * variables an expression reads are converted.
 *
 * Functions: the CEL standard library (size, has, in, exists/all/exists_one/map/filter,
 * startsWith/endsWith/contains, matches with RE2 syntax and linear-time matching,
 * int/double/string casts, timestamps, durations) plus the `strings` extension
 * (lowerAscii, upperAscii, split, join, replace, trim, indexOf, substring, ...).
 */
import type * as Cel from '@bufbuild/cel';
import type * as CelExt from '@bufbuild/cel/ext';
import { lazyModule } from '../util/lazy-module.ts';
import { ActivationPaths, precheck, prefilterOf, type Prefilter } from './cel-prefilter.ts';

type CelInput = Cel.CelInput;
const cel = lazyModule<typeof Cel>('@bufbuild/cel');
const celExt = lazyModule<typeof CelExt>('@bufbuild/cel/ext');

export interface CompiledCel {
  readonly source: string;
  /** Top-level variables the expression reads (e.g. ['mcp','jwt']), so callers compute only those. */
  readonly variables: ReadonlySet<string>;
  /** The string equalities the expression cannot be true without (cel-prefilter.ts); undefined when it has none or was compiled without. */
  readonly prefilter: Prefilter | undefined;
  /** Evaluates to a boolean; a non-boolean result or a runtime error (missing field, type error) is returned as {error} — callers treat it as "rule does not match" for allow and as a match for deny (fail closed). Given as ActivationPaths, the activation lets the expressions of one decision share its field lookups. */
  evaluate(activation: Record<string, unknown> | ActivationPaths): { value: boolean } | { error: string };
}

export interface CelPosition {
  /** 1-based. */
  readonly line: number;
  /** 1-based, counted in UTF-16 code units. */
  readonly column: number;
}

export class CelCompileError extends Error {
  readonly position?: CelPosition;
  constructor(message: string, position?: CelPosition) {
    super(position ? `${message} (line ${position.line}, column ${position.column})` : message);
    this.name = 'CelCompileError';
    if (position) this.position = position;
  }
}

type ParsedExpr = ReturnType<typeof Cel.parse>;
type Expr = ParsedExpr['expr'];

let env: ReturnType<typeof Cel.celEnv> | undefined;
/** The CEL environment: the standard library and the strings extension, made on first use. */
function celEnvironment(): ReturnType<typeof Cel.celEnv> {
  return (env ??= cel().celEnv({ funcs: celExt().strings }));
}

/** CEL values made from an activation's variables, per activation object (gone with it). */
const CONVERTED = new WeakMap<object, Map<string, CelInput>>();

/** Calls the planner implements itself rather than through the function registry. */
const BUILTIN_CALLS = new Set([
  '_&&_',
  '_||_',
  '_?_:_',
  '_[_]',
  '_[?_]',
  '_?._',
  '@not_strictly_false',
  '__not_strictly_false__',
]);

/** How deep activation values may nest; deeper (or cyclic) values make evaluation fail. */
const MAX_DEPTH = 64;

const FALSE = { value: false } as const;
const TRUE = { value: true } as const;

export interface CompileOptions {
  /** Check the expression's string equalities on the plain activation before evaluating it (see cel-prefilter.ts). Default true. */
  readonly prefilter?: boolean;
}

/** Compiles once at config load; throws CelCompileError with a message and 1-based line/column for syntax errors and for unknown top-level variables. */
export function compileCel(source: string, allowedVariables: readonly string[], options: CompileOptions = {}): CompiledCel {
  const lib = cel();
  let parsed: ParsedExpr;
  try {
    parsed = lib.parse(source);
  } catch (err) {
    throw syntaxError(source, err);
  }
  const positionOf = (id: bigint): CelPosition | undefined => {
    const offset = parsed.sourceInfo?.positions[id.toString()];
    return offset === undefined ? undefined : positionAt(source, offset);
  };

  const allowed = new Set(allowedVariables);
  const variables = new Set<string>();
  walk(parsed.expr, new Set(), {
    variable(name, id) {
      if (!allowed.has(name)) {
        const known = allowedVariables.length > 0 ? `; known variables: ${allowedVariables.join(', ')}` : '';
        throw new CelCompileError(`unknown variable '${name}'${known}`, positionOf(id));
      }
      variables.add(name);
    },
    unsupported(what, id) {
      throw new CelCompileError(what, positionOf(id));
    },
  });

  let program: ReturnType<typeof Cel.plan>;
  try {
    program = lib.plan(celEnvironment(), parsed);
  } catch (err) {
    throw new CelCompileError(`cannot plan CEL expression: ${messageOf(err)}`);
  }

  const used = [...variables];
  const prefilter = options.prefilter === false ? undefined : prefilterOf(parsed.expr);
  return {
    source,
    variables,
    prefilter,
    evaluate(given) {
      const paths = given instanceof ActivationPaths ? given : undefined;
      const activation = paths ? paths.activation : (given as Record<string, unknown>);
      const decided = prefilter && precheck(prefilter, paths ?? new ActivationPaths(activation));
      if (decided !== undefined) return decided ? TRUE : FALSE;
      let result: unknown;
      try {
        // Expressions evaluated against the same activation share its conversions.
        let converted = CONVERTED.get(activation);
        if (!converted) {
          converted = new Map();
          CONVERTED.set(activation, converted);
        }
        const bindings: Record<string, CelInput> = {};
        for (const name of used) {
          if (Object.hasOwn(activation, name) && activation[name] !== undefined) {
            let input = converted.get(name);
            if (input === undefined) {
              input = toCelInput(activation[name], 0);
              converted.set(name, input);
            }
            bindings[name] = input;
          }
        }
        result = program(bindings);
      } catch (err) {
        return { error: messageOf(err) };
      }
      if (lib.isCelError(result)) {
        const at = result.exprId === undefined ? undefined : positionOf(result.exprId);
        return { error: at ? `${result.message} (line ${at.line}, column ${at.column})` : result.message };
      }
      if (typeof result !== 'boolean') return { error: `expression evaluated to ${describe(result)}, not a bool` };
      return { value: result };
    },
  };
}

interface WalkHooks {
  variable(name: string, id: bigint): void;
  unsupported(message: string, id: bigint): void;
}

/** Visits every free identifier (not bound by a comprehension) and every call, checking both against the environment. */
function walk(expr: Expr | undefined, bound: ReadonlySet<string>, hooks: WalkHooks): void {
  if (expr === undefined) return;
  const kind = expr.exprKind;
  switch (kind.case) {
    case 'constExpr':
    case undefined:
      return;
    case 'identExpr': {
      const name = kind.value.name;
      if (!bound.has(name)) hooks.variable(name.startsWith('.') ? name.slice(1) : name, expr.id);
      return;
    }
    case 'selectExpr':
      walk(kind.value.operand, bound, hooks);
      return;
    case 'callExpr': {
      const call = kind.value;
      const qualified = call.target ? qualifiedName(call.target) : undefined;
      if (qualified !== undefined && !bound.has(qualified.split('.')[0] ?? '') && celEnvironment().funcs.find(`${qualified}.${call.function}`)) {
        // A namespaced function such as strings.quote(...): the target is not a variable.
        for (const arg of call.args) walk(arg, bound, hooks);
        return;
      }
      walk(call.target, bound, hooks);
      if (!BUILTIN_CALLS.has(call.function) && celEnvironment().funcs.find(call.function) === undefined) {
        hooks.unsupported(`unknown function '${call.function}'`, expr.id);
      }
      if (call.function === 'matches') checkRegex(call.args[0], hooks);
      for (const arg of call.args) walk(arg, bound, hooks);
      return;
    }
    case 'listExpr':
      for (const element of kind.value.elements) walk(element, bound, hooks);
      return;
    case 'structExpr':
      if (kind.value.messageName !== '') {
        hooks.unsupported(`message construction '${kind.value.messageName}{...}' is not supported`, expr.id);
      }
      for (const entry of kind.value.entries) {
        if (entry.keyKind.case === 'mapKey') walk(entry.keyKind.value, bound, hooks);
        walk(entry.value, bound, hooks);
      }
      return;
    case 'comprehensionExpr': {
      const c = kind.value;
      walk(c.iterRange, bound, hooks);
      walk(c.accuInit, bound, hooks);
      const inLoop = new Set(bound).add(c.iterVar).add(c.accuVar);
      if (c.iterVar2 !== '') inLoop.add(c.iterVar2);
      walk(c.loopCondition, inLoop, hooks);
      walk(c.loopStep, inLoop, hooks);
      walk(c.result, new Set(bound).add(c.accuVar), hooks);
      return;
    }
  }
}

/** `a.b.c` as a dotted name, when the expression is only identifiers and field selections. */
function qualifiedName(expr: Expr): string | undefined {
  const kind = expr.exprKind;
  if (kind.case === 'identExpr') return kind.value.name;
  if (kind.case === 'selectExpr' && !kind.value.testOnly && kind.value.operand) {
    const operand = qualifiedName(kind.value.operand);
    return operand === undefined ? undefined : `${operand}.${kind.value.field}`;
  }
  return undefined;
}

/** A constant pattern given to matches() must be valid RE2 syntax; found now rather than on every request. */
function checkRegex(pattern: Expr | undefined, hooks: WalkHooks): void {
  if (pattern?.exprKind.case !== 'constExpr') return;
  const constant = pattern.exprKind.value.constantKind;
  if (constant.case !== 'stringValue') return;
  const result = cel().run('"".matches(p)', { p: constant.value });
  if (cel().isCelError(result)) hooks.unsupported(`invalid regular expression: ${result.message}`, pattern.id);
}

function syntaxError(source: string, err: unknown): CelCompileError {
  if (err instanceof Error) {
    const raw = (err as { rawMessage?: unknown }).rawMessage;
    const offset = (err as { location?: { start?: { offset?: unknown } } }).location?.start?.offset;
    const message = typeof raw === 'string' ? raw : err.message;
    return new CelCompileError(`CEL syntax error: ${message}`, typeof offset === 'number' ? positionAt(source, offset) : undefined);
  }
  return new CelCompileError(`CEL syntax error: ${String(err)}`);
}

function positionAt(source: string, offset: number): CelPosition {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, source.length);
  for (let i = 0; i < end; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Plain JS value to CEL input, JSON-style; see the module comment for numbers. */
function toCelInput(value: unknown, depth: number): CelInput {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return value;
    case 'number':
      return Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'object':
      break;
    default:
      return null;
  }
  if (value === null || value instanceof Uint8Array) return value;
  if (depth >= MAX_DEPTH) throw new Error(`activation value nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((item: unknown) => toCelInput(item, depth + 1));
  const map = new Map<string | bigint | boolean, CelInput>();
  if (value instanceof Map) {
    for (const [key, item] of value as Map<unknown, unknown>) {
      if (!isDropped(item)) map.set(mapKey(key), toCelInput(item, depth + 1));
    }
    return map;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return toCelInput(toJSON.call(value), depth + 1);
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (!isDropped(item)) map.set(key, toCelInput(item, depth + 1));
  }
  return map;
}

function isDropped(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

function mapKey(key: unknown): string | bigint | boolean {
  if (typeof key === 'string' || typeof key === 'boolean' || typeof key === 'bigint') return key;
  if (typeof key === 'number' && Number.isSafeInteger(key)) return BigInt(key);
  return String(key);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return 'an int';
  if (typeof value === 'number') return 'a double';
  if (typeof value === 'string') return 'a string';
  if (value instanceof Uint8Array) return 'bytes';
  return 'a non-boolean value';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
