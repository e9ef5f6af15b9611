import type * as Cel from '@bufbuild/cel';

type Expr = NonNullable<ReturnType<typeof Cel.parse>['expr']>;

/** A conjunct `a.b.c == "text"` (or `"text" == a.b.c`) of an expression's top-level `&&` chain. */
export interface Requirement {
  /** The variable, then the fields selected from it. */
  readonly path: readonly string[];
  readonly value: string;
}

/**
 * What an expression cannot be true without: the conjuncts of its top-level `&&` chain that
 * compare a variable's field path with a string constant. Policies are mostly such chains
 * (`mcp.method == "tools/call" && mcp.tool.name == "delete_repo" && ...`), and a request
 * usually fails one of them at once: checking these on the plain activation first skips
 * the interpreter (and converting the activation for it) for every rule that cannot match.
 */
export function requirementsOf(expr: Expr | undefined): Requirement[] {
  const out: Requirement[] = [];
  for (const conjunct of conjuncts(expr)) {
    const kind = conjunct.exprKind;
    if (kind.case !== 'callExpr' || kind.value.function !== '_==_' || kind.value.target || kind.value.args.length !== 2) continue;
    const [left, right] = kind.value.args as [Expr, Expr];
    const requirement = comparison(left, right) ?? comparison(right, left);
    if (requirement) out.push(requirement);
  }
  return out;
}

/**
 * Whether the activation shows a requirement failing: its path leads through plain objects
 * to a string that differs from the constant. CEL's `&&` is false as soon as one side is
 * false, whatever errors the others produce, so the expression is then false. Anything less
 * certain (a missing field, another type, a Map, a toJSON object) says nothing, and the
 * expression is evaluated in full.
 */
export function contradicts(requirements: readonly Requirement[], activation: Record<string, unknown>): boolean {
  for (const { path, value } of requirements) {
    let at: unknown = activation;
    for (const field of path) {
      if (!isPlainRecord(at) || !Object.hasOwn(at, field)) {
        at = undefined;
        break;
      }
      at = at[field];
    }
    if (typeof at === 'string' && at !== value) return true;
  }
  return false;
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
  return path ? { path, value: constant.value.constantKind.value } : undefined;
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
