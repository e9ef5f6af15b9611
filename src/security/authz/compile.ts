import type { AccessPolicyIR, AccessRuleIR, AuthorizationIR } from '../../ir/types.ts';
import type { ConfigIssue } from '../../config/errors.ts';
import type { Config } from '../../config/schema.ts';
import { serviceAccountSpiffeId } from '../authn/spiffe.ts';
import { CelCompileError, compileCel } from '../cel.ts';
import { CEL_VARIABLES } from './request.ts';

type AuthorizationConfig = NonNullable<Config['listeners'][number]['routes'][number]['authorization']>;
type RuleConfig = AuthorizationConfig['policies'][number]['rules'][number];

/**
 * Turns the config's authorization block into policies with XAccessPolicy semantics:
 * each deny rule is a deny policy, each require rule an allow policy of its own (so it
 * must match), and the allow rules together one allow policy (any of them may match).
 * CEL is compiled here, once; an invalid expression is a config error at its position.
 */
export function compileAuthorization(a: AuthorizationConfig, at: Array<string | number>, issues: ConfigIssue[]): AuthorizationIR {
  const policies: AccessPolicyIR[] = [];
  const allowRules: AccessRuleIR[] = [];
  a.rules.forEach((r, i) => {
    const rule = compileRule(r, a.trustDomain, [...at, 'rules', i], issues);
    if (r.action === 'allow') allowRules.push(rule);
    else policies.push({ name: r.name, action: r.action === 'deny' ? 'deny' : 'allow', rules: [rule] });
  });
  if (allowRules.length > 0) policies.push({ name: 'rules', action: 'allow', rules: allowRules });
  a.policies.forEach((p, i) => {
    policies.push({ name: p.name, action: p.action, rules: p.rules.map((r, j) => compileRule(r, a.trustDomain, [...at, 'policies', i, 'rules', j], issues)) });
  });
  const ext = a.externalAuth;
  return {
    policies,
    hideForbidden: a.hideForbidden,
    externalAuth: ext && {
      url: new URL(ext.url),
      timeoutMs: ext.timeout,
      failOpen: ext.failOpen,
      cacheTtlMs: ext.cacheTtl,
      headers: ext.headers ?? {},
      allowedResponseHeaders: ext.allowedResponseHeaders.map((h) => h.toLowerCase()),
    },
  };
}

function compileRule(r: RuleConfig, trustDomain: string, at: Array<string | number>, issues: ConfigIssue[]): AccessRuleIR {
  const spiffe = r.source && [...r.source.spiffe, ...r.source.serviceAccounts.map((sa) => serviceAccountSpiffeId(trustDomain, sa.namespace, sa.name))];
  let cel;
  if (r.when !== undefined) {
    try {
      cel = compileCel(r.when, CEL_VARIABLES);
    } catch (err) {
      if (!(err instanceof CelCompileError)) throw err;
      issues.push({ path: [...at, 'when'], message: `invalid CEL: ${err.message}` });
    }
  }
  return {
    name: r.name,
    // A source block that names nobody matches nobody: an empty list must never mean "anyone".
    sources: spiffe && new Set(spiffe),
    mcp: r.mcp && { methods: r.mcp.methods.map((m) => ({ name: m.name, params: m.params && new Set(m.params) })), baseProtocol: r.mcp.baseProtocol },
    cel,
  };
}
