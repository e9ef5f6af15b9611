import type { AccessPolicyIR, AccessRuleIR, AuthorizationIR, McpMatchIR } from '../../ir/types.ts';
import { ActivationPaths, type Requirement } from '../cel-prefilter.ts';
import { celActivation, type AuthzRequest } from './request.ts';

export interface Decision {
  readonly allowed: boolean;
  /** "<policy>/<rule>" that decided, or a description of the default. */
  readonly rule: string;
  readonly reason: string;
}

const ALLOW_ALL: Decision = { allowed: true, rule: '(none)', reason: 'no policy applies' };

/**
 * MCP traffic every session needs (kube-agentic-networking's base protocol set): a rule
 * allows it only with baseProtocol "match" or with no method list at all.
 */
export function isBaseProtocol(method: string): boolean {
  return (
    method === 'initialize' ||
    method === 'ping' ||
    method === 'tools/list' ||
    method.startsWith('notifications/') ||
    method.startsWith('completion/') ||
    method.startsWith('logging/')
  );
}

/**
 * Decides one target (a route or a backend) without calling out: deny policies veto, and
 * every allow policy needs a matching rule (rules OR within a policy, policies AND). A
 * target with policies but no allow policy denies by default.
 */
export function decide(authz: AuthorizationIR | undefined, request: AuthzRequest, level: string): Decision {
  if (!authz || authz.policies.length === 0) return ALLOW_ALL;
  // One activation for every rule of the decision: built once, converted once, each path looked up once.
  const plan = planOf(authz);
  let activation: ActivationPaths | undefined;
  const context = (): ActivationPaths => (activation ??= new ActivationPaths(celActivation(request, plan.variables)));
  for (const { policy, rule } of plan.denyRules.candidates(context)) {
    if (ruleMatches(rule, request, true, context)) return { allowed: false, rule: label(policy, rule), reason: `denied by ${level} policy ${policy.name}` };
  }
  const allows = authz.policies.filter((p) => p.action === 'allow');
  if (allows.length === 0) return { allowed: false, rule: '(default)', reason: `no allow policy on the ${level}: denied by default` };
  let matched: string | undefined;
  for (const policy of allows) {
    const rule = policy.rules.find((r) => ruleMatches(r, request, false, context));
    if (!rule) return { allowed: false, rule: policyLabel(policy), reason: `no rule of ${level} policy ${policy.name} allows it` };
    matched ??= label(policy, rule);
  }
  return { allowed: true, rule: matched!, reason: `allowed by ${level} policy` };
}

function policyLabel(policy: AccessPolicyIR): string {
  return `${policy.name}/(no match)`;
}

/** "policy/rule", or just the rule where a config rule became a policy of its own. */
function label(policy: AccessPolicyIR, rule: AccessRuleIR): string {
  return policy.name === rule.name ? rule.name : `${policy.name}/${rule.name}`;
}

/**
 * A rule matches when every condition it has holds. A CEL error counts as a match for a
 * deny rule and as no match for an allow rule: an expression that cannot be evaluated
 * never lets a request through.
 */
function ruleMatches(rule: AccessRuleIR, request: AuthzRequest, denying: boolean, activation: () => ActivationPaths): boolean {
  if (rule.sources && !(request.identity.spiffe && rule.sources.has(request.identity.spiffe))) return false;
  if (rule.mcp && !mcpMatches(rule.mcp, request)) return false;
  if (rule.cel) {
    const result = rule.cel.evaluate(activation());
    if ('value' in result) return result.value;
    return request.mcp.listing ? !denying : denying;
  }
  return true;
}

function mcpMatches(match: McpMatchIR, request: AuthzRequest): boolean {
  const method = request.mcp.method;
  if (match.methods.length === 0) return match.baseProtocol === 'skip' || isBaseProtocol(method);
  if (match.baseProtocol === 'match' && isBaseProtocol(method)) return true;
  return match.methods.some((m) => {
    const named = m.name === method || ((m.name === 'tools' || m.name === 'prompts' || m.name === 'resources') && method.startsWith(`${m.name}/`));
    if (!named) return false;
    if (!m.params) return true;
    const target = request.mcp.target;
    return target !== undefined && m.params.has(target.name);
  });
}

interface DenyRule {
  readonly policy: AccessPolicyIR;
  readonly rule: AccessRuleIR;
}

/**
 * A target's deny rules in order, indexed by the field whose string equalities tell them
 * apart most (`mcp.tool.name == "..."` in a list of forbidden tools): a rule that requires
 * the field to be one string cannot match a request where it is another (cel-prefilter.ts),
 * so a decision checks the rules for the request's value and those that do not name one,
 * instead of all of them. Where the field is not a string the index says nothing and every
 * rule is checked. The first rule that matches still decides, as in the plain list.
 */
class DenyRules {
  private readonly all: readonly DenyRule[];
  private readonly field: Requirement | undefined;
  /** Per value of the field: the rules that require it and the rules that require no value of it, in order. */
  private readonly byValue = new Map<string, readonly DenyRule[]>();
  private readonly unkeyed: readonly DenyRule[];

  constructor(authz: AuthorizationIR) {
    this.all = authz.policies.filter((p) => p.action === 'deny').flatMap((policy) => policy.rules.map((rule) => ({ policy, rule })));
    this.field = mostDistinguishing(this.all);
    const field = this.field;
    if (!field) {
      this.unkeyed = this.all;
      return;
    }
    const keyOf = (entry: DenyRule): string | undefined => entry.rule.cel?.prefilter?.requirements.find((r) => r.key === field.key)?.value;
    this.unkeyed = this.all.filter((entry) => keyOf(entry) === undefined);
    for (const value of new Set(this.all.map(keyOf))) {
      if (value !== undefined) this.byValue.set(value, this.all.filter((entry) => keyOf(entry) === value || keyOf(entry) === undefined));
    }
  }

  candidates(paths: () => ActivationPaths): readonly DenyRule[] {
    if (!this.field) return this.all;
    const value = paths().valueAt(this.field);
    if (typeof value !== 'string') return this.all;
    return this.byValue.get(value) ?? this.unkeyed;
  }
}

/** The field most deny rules require distinct strings of; undefined when no field tells two rules apart. */
function mostDistinguishing(rules: readonly DenyRule[]): Requirement | undefined {
  const valuesByField = new Map<string, { requirement: Requirement; values: Set<string> }>();
  for (const { rule } of rules) {
    for (const requirement of rule.cel?.prefilter?.requirements ?? []) {
      let entry = valuesByField.get(requirement.key);
      if (!entry) valuesByField.set(requirement.key, (entry = { requirement, values: new Set() }));
      entry.values.add(requirement.value);
    }
  }
  let best: { requirement: Requirement; values: Set<string> } | undefined;
  for (const entry of valuesByField.values()) if (entry.values.size > (best?.values.size ?? 1)) best = entry;
  return best?.requirement;
}

/** What decisions over a target need beyond its IR, worked out once per compiled target. */
interface DecisionPlan {
  /** Every variable the target's CEL conditions read: the activation builds only those. */
  readonly variables: ReadonlySet<string>;
  readonly denyRules: DenyRules;
}

const PLANS = new WeakMap<AuthorizationIR, DecisionPlan>();

function planOf(authz: AuthorizationIR): DecisionPlan {
  let plan = PLANS.get(authz);
  if (!plan) {
    const variables = new Set<string>();
    for (const p of authz.policies) for (const r of p.rules) for (const v of r.cel?.variables ?? []) variables.add(v);
    plan = { variables, denyRules: new DenyRules(authz) };
    PLANS.set(authz, plan);
  }
  return plan;
}
