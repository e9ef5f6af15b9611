import type { AccessPolicyIR, AccessRuleIR, AuthorizationIR, McpMatchIR } from '../../ir/types.ts';
import { ActivationPaths } from '../cel-prefilter.ts';
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
  let activation: ActivationPaths | undefined;
  const context = (): ActivationPaths => (activation ??= new ActivationPaths(celActivation(request, celVariablesOf(authz))));
  for (const policy of authz.policies) {
    if (policy.action !== 'deny') continue;
    const rule = policy.rules.find((r) => ruleMatches(r, request, true, context));
    if (rule) return { allowed: false, rule: label(policy, rule), reason: `denied by ${level} policy ${policy.name}` };
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

const VARIABLES = new WeakMap<AuthorizationIR, ReadonlySet<string>>();

/** Every variable the target's CEL conditions read, worked out once per compiled target. */
function celVariablesOf(authz: AuthorizationIR): ReadonlySet<string> {
  let vars = VARIABLES.get(authz);
  if (!vars) {
    const all = new Set<string>();
    for (const p of authz.policies) for (const r of p.rules) for (const v of r.cel?.variables ?? []) all.add(v);
    vars = all;
    VARIABLES.set(authz, vars);
  }
  return vars;
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
