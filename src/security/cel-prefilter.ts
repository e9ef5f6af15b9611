import type * as Cel from '@bufbuild/cel';

type Expr = NonNullable<ReturnType<typeof Cel.parse>['expr']>;

/** A conjunct `a.b.c == "text"` (or `"text" == a.b.c`) of an expression's top-level `&&` chain. */
export interface Requirement {
  /** The variable, then the fields selected from it. */
  readonly path: readonly string[];
  /** The path as one string, naming it in an ActivationPaths. */
  readonly key: string;
  readonly value: string;
}

/** The string equalities of an expression's top-level `&&` chain, and whether they are all of it. */
export interface Prefilter {
  readonly requirements: readonly Requirement[];
  /** The expression is exactly the `&&` of its requirements: when all of them hold, it is true. */
  readonly complete: boolean;
}

/**
 * What an expression cannot be true without: the conjuncts of its top-level `&&` chain that
 * compare a variable's field path with a string constant. Policies are mostly such chains
 * (`mcp.method == "tools/call" && mcp.tool.name == "delete_repo" && ...`), and a request
 * usually fails one of them at once; a chain of nothing else is decided by them outright.
 * Checking them on the plain activation first skips the interpreter (and converting the
 * activation for it) for every rule they decide. Undefined: the expression has none.
 */
export function prefilterOf(expr: Expr | undefined): Prefilter | undefined {
  const requirements: Requirement[] = [];
  const all = conjuncts(expr);
  for (const conjunct of all) {
    const kind = conjunct.exprKind;
    if (kind.case !== 'callExpr' || kind.value.function !== '_==_' || kind.value.target || kind.value.args.length !== 2) continue;
    const [left, right] = kind.value.args as [Expr, Expr];
    const requirement = comparison(left, right) ?? comparison(right, left);
    if (requirement) requirements.push(requirement);
  }
  return requirements.length === 0 ? undefined : { requirements, complete: requirements.length === all.length };
}

/** A path that does not lead through plain records to a value. */
const UNREACHABLE = Symbol('unreachable');

/**
 * The values an activation holds at field paths, each path walked once however many
 * expressions ask for it: the rules of one decision mostly test the same few paths
 * (`mcp.method`, `mcp.tool.name`), and walking them again for every rule cost more than
 * the comparisons (a keyed load and an own-property test per step).
 */
export class ActivationPaths {
  readonly activation: Record<string, unknown>;
  private readonly values = new Map<string, unknown>();

  constructor(activation: Record<string, unknown>) {
    this.activation = activation;
  }

  valueAt(requirement: Requirement): unknown {
    let value = this.values.get(requirement.key);
    if (value === undefined) {
      value = walk(this.activation, requirement.path);
      this.values.set(requirement.key, value);
    }
    return value;
  }
}

function walk(activation: Record<string, unknown>, path: readonly string[]): unknown {
  let at: unknown = activation;
  for (const field of path) {
    if (!isPlainRecord(at) || !Object.hasOwn(at, field)) return UNREACHABLE;
    at = at[field];
  }
  return at === undefined ? UNREACHABLE : at;
}

/**
 * The expression's value when its requirements decide it on the activation, else undefined.
 * False when one fails: its path leads through plain objects to a string that differs from
 * the constant, and CEL's `&&` is false as soon as one side is false, whatever errors the
 * others produce. True when the chain is complete and every path leads to its very string.
 * Anything less certain (a missing field, another type, a Map, a toJSON object) says nothing,
 * and the expression is evaluated in full.
 */
export function precheck(prefilter: Prefilter, paths: ActivationPaths): boolean | undefined {
  let allHold = prefilter.complete;
  for (const requirement of prefilter.requirements) {
    const at = paths.valueAt(requirement);
    if (typeof at !== 'string') allHold = false;
    else if (at !== requirement.value) return false;
  }
  return allHold ? true : undefined;
}

function conjuncts(expr: Expr | undefined): Expr[] {
  if (!expr) return [];
  const kind = expr.exprKind;
  if (kind.case === 'callExpr' && kind.value.function === '_&&_' && !kind.value.target) return kind.value.args.flatMap((arg) => conjuncts(arg));
  return [expr];
}

function comparison(pathSide: Expr, constantSide: Expr): Requirement | undefined {
  const constant = constantSide.exprKind;
  if (constant.case !== 'constExpr' || constant.value.constantKind.case !== 'stringValue') return undefined;
  const path = fieldPath(pathSide);
  return path ? { path, key: path.join('.'), value: constant.value.constantKind.value } : undefined;
}

/** `a.b.c` as ['a','b','c'] when the expression is a variable and field selections only (no has(), no indexing). */
function fieldPath(expr: Expr): string[] | undefined {
  const kind = expr.exprKind;
  if (kind.case === 'identExpr') return [kind.value.name.startsWith('.') ? kind.value.name.slice(1) : kind.value.name];
  if (kind.case === 'selectExpr' && !kind.value.testOnly && kind.value.operand) {
    const operand = fieldPath(kind.value.operand);
    return operand ? [...operand, kind.value.field] : undefined;
  }
  return undefined;
}

/** An object CEL sees as a map of its own properties: not an array, a Map, bytes or something with toJSON. */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Map) &&
    !(value instanceof Uint8Array) &&
    typeof (value as { toJSON?: unknown }).toJSON !== 'function'
  );
}
