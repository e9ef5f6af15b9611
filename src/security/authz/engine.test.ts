import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../config/errors.ts';
import { loadConfigObject } from '../../config/load.ts';
import type { ConfigInput } from '../../config/schema.ts';
import type { AccessRuleIR, AuthorizationIR } from '../../ir/types.ts';
import { compileCel } from '../cel.ts';
import { anonymous, type Identity } from '../identity.ts';
import { decide, isBaseProtocol, type Decision } from './engine.ts';
import { CEL_VARIABLES, type AuthzRequest } from './request.ts';

/**
 * decide() over policies compiled from real configuration: every case goes through the
 * schema and compileAuthorization exactly as a config file would.
 */

type AuthorizationInput = NonNullable<NonNullable<ConfigInput['listeners']>[number]['routes'][number]['authorization']>;

function configWith(authorization: AuthorizationInput | undefined): ConfigInput {
  return {
    listeners: [{ name: 'l', host: '127.0.0.1', port: 0, routes: [{ name: 'r', path: '/mcp', backends: ['up'], ...(authorization ? { authorization } : {}) }] }],
    // Never contacted: loading a config opens no connection.
    backends: [{ name: 'up', transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp' }],
    admin: { enabled: false },
  };
}

/** The route-level AuthorizationIR for an `authorization` block. */
function compile(authorization: AuthorizationInput | undefined): AuthorizationIR | undefined {
  return loadConfigObject(configWith(authorization), 'engine-test').listeners[0]!.routes[0]!.authorization;
}

const SA = (namespace: string, name: string): string => `spiffe://cluster.local/ns/${namespace}/sa/${name}`;
const ALLOWED = SA('agents', 'allowed');
const OTHER = SA('agents', 'other');

interface Call {
  /** The caller's SPIFFE id (mTLS); absent: anonymous. */
  spiffe?: string;
  /** tools/call, prompts/get and resources/* name what they act on. */
  tool?: string;
  prompt?: string;
  resource?: string;
  args?: unknown;
  /** Deciding whether a list shows the target (no arguments yet). */
  listing?: boolean;
}

function identity(spiffe: string | undefined): Identity {
  const base = anonymous('127.0.0.1');
  return spiffe === undefined ? base : { ...base, methods: ['mtls'], subject: spiffe, subjectFrom: 'mtls', spiffe };
}

function request(method: string, call: Call = {}): AuthzRequest {
  const target = call.tool !== undefined
    ? { kind: 'tool' as const, name: call.tool, downstreamName: `up__${call.tool}` }
    : call.prompt !== undefined
      ? { kind: 'prompt' as const, name: call.prompt, downstreamName: `up__${call.prompt}` }
      : call.resource !== undefined
        ? { kind: 'resource' as const, name: call.resource, downstreamName: call.resource }
        : undefined;
  return {
    identity: identity(call.spiffe),
    http: { method: 'POST', path: '/mcp', host: '127.0.0.1', headers: {} },
    mcp: {
      method,
      sessionId: 'sid',
      ...(target ? { backend: 'up', target } : {}),
      ...(call.args !== undefined ? { arguments: call.args } : {}),
      ...(call.listing ? { listing: true } : {}),
    },
  };
}

function check(authz: AuthorizationIR | undefined, method: string, call: Call = {}): Decision {
  return decide(authz, request(method, call), 'route');
}

function allowed(authz: AuthorizationIR | undefined, method: string, call: Call = {}): boolean {
  return check(authz, method, call).allowed;
}

const BASE_METHODS = ['initialize', 'ping', 'tools/list', 'notifications/initialized', 'completion/complete', 'logging/setLevel'];

describe('decide: no policies', () => {
  it('allows everything when the route has no authorization block', () => {
    const authz = compile(undefined);
    expect(authz).toBeUndefined();
    for (const method of ['initialize', 'tools/list', 'tools/call', 'prompts/get', 'resources/read']) {
      expect(check(authz, method, { tool: 'anything' })).toEqual({ allowed: true, rule: '(none)', reason: 'no policy applies' });
    }
  });

  it('allows everything when the block sets no rules or policies', () => {
    for (const block of [{}, { hideForbidden: true }, { trustDomain: 'example.org', rules: [], policies: [] }] as AuthorizationInput[]) {
      const authz = compile(block);
      expect(authz!.policies).toEqual([]);
      expect(allowed(authz, 'tools/call', { tool: 'secret' })).toBe(true);
      expect(allowed(authz, 'initialize')).toBe(true);
      expect(allowed(authz, 'tools/call', { tool: 'secret', spiffe: OTHER })).toBe(true);
    }
  });
});

describe('decide: combining rules and policies', () => {
  it('a deny rule vetoes even when an allow rule matches', () => {
    const authz = compile({
      rules: [
        { name: 'everyone', action: 'allow' },
        { name: 'no-secret', action: 'deny', mcp: { methods: [{ name: 'tools/call', params: ['secret'] }] } },
      ],
    });
    expect(check(authz, 'tools/call', { tool: 'secret' })).toMatchObject({ allowed: false, rule: 'no-secret' });
    expect(check(authz, 'tools/call', { tool: 'echo' })).toMatchObject({ allowed: true, rule: 'rules/everyone' });
    // The deny rule lists methods with the default SKIP: it says nothing about base traffic.
    expect(allowed(authz, 'initialize')).toBe(true);
    expect(allowed(authz, 'tools/list')).toBe(true);
  });

  it('a deny policy vetoes an allow policy that matches, whatever their order', () => {
    const deny = { name: 'deny-other', action: 'deny' as const, rules: [{ name: 'other-sa', source: { spiffe: [OTHER] } }] };
    const allow = { name: 'agents', rules: [{ name: 'any-agent', source: { spiffe: [ALLOWED, OTHER] } }] };
    for (const policies of [[deny, allow], [allow, deny]]) {
      const authz = compile({ policies });
      expect(check(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toMatchObject({ allowed: false, rule: 'deny-other/other-sa' });
      expect(check(authz, 'initialize', { spiffe: OTHER })).toMatchObject({ allowed: false, rule: 'deny-other/other-sa' });
      expect(check(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toMatchObject({ allowed: true, rule: 'agents/any-agent' });
    }
  });

  it('every require rule must match', () => {
    const authz = compile({
      rules: [
        { name: 'is-agent', action: 'require', source: { serviceAccounts: [{ namespace: 'agents', name: 'allowed' }] } },
        { name: 'only-echo', action: 'require', mcp: { methods: [{ name: 'tools/call', params: ['echo'] }], baseProtocol: 'match' } },
      ],
    });
    expect(check(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toMatchObject({ allowed: true, rule: 'is-agent' });
    expect(check(authz, 'tools/call', { tool: 'secret', spiffe: ALLOWED })).toMatchObject({ allowed: false, rule: 'only-echo/(no match)' });
    expect(check(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toMatchObject({ allowed: false, rule: 'is-agent/(no match)' });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(false);
    expect(allowed(authz, 'initialize', { spiffe: ALLOWED })).toBe(true);
    expect(allowed(authz, 'initialize', { spiffe: OTHER })).toBe(false);
  });

  it('require rules AND with the allow rules, which OR among themselves', () => {
    const authz = compile({
      rules: [
        { name: 'is-agent', action: 'require', source: { spiffe: [ALLOWED, OTHER] } },
        { name: 'echo', mcp: { methods: [{ name: 'tools/call', params: ['echo'] }] } },
        { name: 'add', mcp: { methods: [{ name: 'tools/call', params: ['add'] }] } },
      ],
    });
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'add', spiffe: ALLOWED })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'secret', spiffe: ALLOWED })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(false);
  });

  it('any one allow rule suffices', () => {
    const authz = compile({
      rules: [
        { name: 'allowed-echo', source: { spiffe: [ALLOWED] }, mcp: { methods: [{ name: 'tools/call', params: ['echo'] }] } },
        { name: 'other-add', source: { spiffe: [OTHER] }, mcp: { methods: [{ name: 'tools/call', params: ['add'] }] } },
      ],
    });
    expect(check(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toMatchObject({ allowed: true, rule: 'rules/allowed-echo' });
    expect(check(authz, 'tools/call', { tool: 'add', spiffe: OTHER })).toMatchObject({ allowed: true, rule: 'rules/other-add' });
    expect(allowed(authz, 'tools/call', { tool: 'add', spiffe: ALLOWED })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toBe(false);
  });

  it('rules OR within a policy, policies AND', () => {
    const authz = compile({
      policies: [
        { name: 'who', rules: [{ name: 'allowed-sa', source: { serviceAccounts: [{ namespace: 'agents', name: 'allowed' }] } }, { name: 'ops', source: { spiffe: [SA('ops', 'admin')] } }] },
        { name: 'what', rules: [{ name: 'echo', mcp: { methods: [{ name: 'tools/call', params: ['echo'] }], baseProtocol: 'match' } }, { name: 'prompts', mcp: { methods: [{ name: 'prompts' }] } }] },
      ],
    });
    expect(check(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toMatchObject({ allowed: true, rule: 'who/allowed-sa' });
    expect(allowed(authz, 'prompts/get', { prompt: 'p', spiffe: SA('ops', 'admin') })).toBe(true);
    expect(allowed(authz, 'initialize', { spiffe: SA('ops', 'admin') })).toBe(true);
    // Passing one policy is not enough.
    expect(check(authz, 'tools/call', { tool: 'secret', spiffe: ALLOWED })).toMatchObject({ allowed: false, rule: 'what/(no match)' });
    expect(check(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toMatchObject({ allowed: false, rule: 'who/(no match)' });
  });

  it('the rules list and the policies list AND together', () => {
    const authz = compile({
      rules: [{ name: 'allowed-sa', source: { spiffe: [ALLOWED] } }],
      policies: [{ name: 'tools', rules: [{ name: 'echo', mcp: { methods: [{ name: 'tools/call', params: ['echo'] }] } }] }],
    });
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'secret', spiffe: ALLOWED })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toBe(false);
  });
});

describe('decide: default deny', () => {
  it('once an allow rule exists, whatever it does not match is denied', () => {
    const authz = compile({ rules: [{ name: 'echo', mcp: { methods: [{ name: 'tools/call', params: ['echo'] }], baseProtocol: 'match' } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(true);
    expect(check(authz, 'tools/call', { tool: 'secret' })).toMatchObject({ allowed: false, rule: 'rules/(no match)' });
    expect(allowed(authz, 'prompts/get', { prompt: 'echo' })).toBe(false);
    expect(allowed(authz, 'resources/read', { resource: 'file:///echo' })).toBe(false);
    expect(allowed(authz, 'prompts/list')).toBe(false);
  });

  it('a config with deny rules only denies everything else too', () => {
    const authz = compile({ rules: [{ name: 'no-secret', action: 'deny', mcp: { methods: [{ name: 'tools/call', params: ['secret'] }] } }] });
    expect(check(authz, 'tools/call', { tool: 'secret' })).toMatchObject({ allowed: false, rule: 'no-secret' });
    for (const method of ['tools/call', 'initialize', 'tools/list', 'ping']) {
      expect(check(authz, method, { tool: 'echo', spiffe: ALLOWED }), method).toMatchObject({ allowed: false, rule: '(default)' });
    }
  });

  it('so does a deny-only policy list', () => {
    const authz = compile({ policies: [{ name: 'block', action: 'deny', rules: [{ name: 'other', source: { spiffe: [OTHER] } }] }] });
    expect(check(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toMatchObject({ allowed: false, rule: 'block/other' });
    expect(check(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toMatchObject({ allowed: false, rule: '(default)' });
  });
});

describe('decide: sources', () => {
  it('matches SPIFFE ids exactly', () => {
    const authz = compile({ rules: [{ name: 'spiffe', source: { spiffe: [ALLOWED] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toBe(true);
    for (const id of [OTHER, `${ALLOWED}-2`, `${ALLOWED}/x`, SA('agents2', 'allowed'), 'spiffe://example.org/ns/agents/sa/allowed']) {
      expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: id }), id).toBe(false);
    }
  });

  it('maps ServiceAccounts into the default trust domain cluster.local', () => {
    const authz = compile({ rules: [{ name: 'sa', source: { serviceAccounts: [{ namespace: 'agents', name: 'allowed' }] } }] });
    expect([...authz!.policies[0]!.rules[0]!.sources!]).toEqual(['spiffe://cluster.local/ns/agents/sa/allowed']);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: 'spiffe://cluster.local/ns/agents/sa/allowed' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: 'spiffe://cluster.local/ns/allowed/sa/agents' })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toBe(false);
  });

  it('maps ServiceAccounts with the configured trust domain', () => {
    const authz = compile({ trustDomain: 'prod.example.org', rules: [{ name: 'sa', source: { serviceAccounts: [{ namespace: 'agents', name: 'allowed' }] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: 'spiffe://prod.example.org/ns/agents/sa/allowed' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: 'spiffe://cluster.local/ns/agents/sa/allowed' })).toBe(false);
  });

  it('takes SPIFFE ids and ServiceAccounts of one rule as alternatives', () => {
    const authz = compile({ rules: [{ name: 'both', source: { spiffe: ['spiffe://example.org/workload/a'], serviceAccounts: [{ namespace: 'agents', name: 'allowed' }] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: 'spiffe://example.org/workload/a' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toBe(false);
  });

  it('an anonymous caller never matches a rule with a source', () => {
    const authz = compile({
      rules: [
        { name: 'sa', source: { serviceAccounts: [{ namespace: 'agents', name: 'allowed' }] }, mcp: { baseProtocol: 'match' } },
        { name: 'spiffe', source: { spiffe: [ALLOWED] } },
      ],
    });
    for (const method of ['initialize', 'ping', 'tools/list', 'tools/call']) {
      expect(allowed(authz, method, { tool: 'echo' }), method).toBe(false);
      expect(allowed(authz, method, { tool: 'echo', spiffe: ALLOWED }), method).toBe(true);
    }
    // Nor a deny rule's source: the anonymous caller is then only denied by default.
    const deny = compile({ rules: [{ name: 'all', action: 'allow' }, { name: 'block', action: 'deny', source: { spiffe: [ALLOWED] } }] });
    expect(allowed(deny, 'tools/call', { tool: 'echo' })).toBe(true);
    expect(check(deny, 'tools/call', { tool: 'echo', spiffe: ALLOWED })).toMatchObject({ allowed: false, rule: 'block' });
  });

  it('a source block that names nobody matches nobody (never "anyone")', () => {
    const authz = compile({ rules: [{ name: 'agents-only', source: { serviceAccounts: [], spiffe: [] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'secret' })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'secret', spiffe: ALLOWED })).toBe(false);
  });

  it('a rule without a source is about any caller, anonymous included', () => {
    const authz = compile({ rules: [{ name: 'echo', mcp: { methods: [{ name: 'tools/call', params: ['echo'] }] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toBe(true);
  });
});

describe('decide: mcp.methods', () => {
  it('params are tool names, compared exactly with the name the backend knows', () => {
    const authz = compile({ rules: [{ name: 'tools', mcp: { methods: [{ name: 'tools/call', params: ['echo', 'get-sum'] }] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'get-sum' })).toBe(true);
    for (const tool of ['Echo', 'ech', 'echo2', ' echo', 'get', 'up__echo', '']) {
      expect(allowed(authz, 'tools/call', { tool }), JSON.stringify(tool)).toBe(false);
    }
    // The downstream (prefixed) name is not what params match: request() names it up__<tool>.
    const prefixed = compile({ rules: [{ name: 'tools', mcp: { methods: [{ name: 'tools/call', params: ['up__echo'] }] } }] });
    expect(allowed(prefixed, 'tools/call', { tool: 'echo' })).toBe(false);
  });

  it('a method with params needs a target that has one of those names', () => {
    const authz = compile({ rules: [{ name: 'tools', mcp: { methods: [{ name: 'tools/call', params: ['echo'] }] } }] });
    expect(allowed(authz, 'tools/call')).toBe(false);
  });

  it('a method without params matches any target', () => {
    const authz = compile({ rules: [{ name: 'calls', mcp: { methods: [{ name: 'tools/call' }] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'secret' })).toBe(true);
    expect(allowed(authz, 'prompts/get', { prompt: 'echo' })).toBe(false);
    expect(allowed(authz, 'tools/list')).toBe(false);
  });

  it('params of prompts/get are prompt names, of resource methods the URIs', () => {
    const authz = compile({
      rules: [
        {
          name: 'named',
          mcp: {
            methods: [
              { name: 'prompts/get', params: ['summarize'] },
              { name: 'resources/read', params: ['file:///notes.txt'] },
            ],
          },
        },
      ],
    });
    expect(allowed(authz, 'prompts/get', { prompt: 'summarize' })).toBe(true);
    expect(allowed(authz, 'prompts/get', { prompt: 'other' })).toBe(false);
    expect(allowed(authz, 'resources/read', { resource: 'file:///notes.txt' })).toBe(true);
    expect(allowed(authz, 'resources/read', { resource: 'file:///etc/passwd' })).toBe(false);
    // A tool that happens to share the prompt's name is not a prompt.
    expect(allowed(authz, 'tools/call', { tool: 'summarize' })).toBe(false);
  });

  it.each([
    ['tools', ['tools/call', 'tools/list'], ['prompts/get', 'prompts/list', 'resources/read', 'toolsx/call', 'tool/call']],
    ['prompts', ['prompts/get', 'prompts/list'], ['tools/call', 'resources/read', 'promptsx/get']],
    ['resources', ['resources/read', 'resources/list', 'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe'], ['tools/call', 'prompts/get', 'resourcesx/read']],
  ])('category %s matches its methods by prefix', (category, matching, other) => {
    const authz = compile({ rules: [{ name: 'category', mcp: { methods: [{ name: category }] } }] });
    for (const method of matching) expect(allowed(authz, method, { tool: 'echo' }), method).toBe(true);
    for (const method of other) expect(allowed(authz, method, { tool: 'echo' }), method).toBe(false);
  });

  it('a category with params narrows to those names', () => {
    const authz = compile({ rules: [{ name: 'category', mcp: { methods: [{ name: 'tools', params: ['echo'] }] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'secret' })).toBe(false);
  });

  it('a method that is not a category matches exactly, not by prefix', () => {
    const authz = compile({ rules: [{ name: 'exact', mcp: { methods: [{ name: 'tools/call' }, { name: 'prompts/list' }, { name: 'resources/list' }] } }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(true);
    expect(allowed(authz, 'prompts/list')).toBe(true);
    expect(allowed(authz, 'resources/list')).toBe(true);
    expect(allowed(authz, 'tools/call/x', { tool: 'echo' })).toBe(false);
    expect(allowed(authz, 'resources/templates/list')).toBe(false);
    expect(allowed(authz, 'prompts/get', { prompt: 'p' })).toBe(false);
  });
});

describe('decide: base protocol', () => {
  it('isBaseProtocol covers initialize, ping, tools/list and the completion, logging and notification families', () => {
    for (const method of [...BASE_METHODS, 'notifications/cancelled', 'notifications/roots/list_changed']) expect(isBaseProtocol(method), method).toBe(true);
    for (const method of ['tools/call', 'prompts/list', 'prompts/get', 'resources/list', 'resources/templates/list', 'resources/read', 'tasks/get', 'initialized', 'notifications']) {
      expect(isBaseProtocol(method), method).toBe(false);
    }
  });

  // xaccesspolicy-sa-matching: Allow for a ServiceAccount with MATCH + tools/call get-sum.
  it('conformance sa-matching: the ServiceAccount initializes and calls get-sum; echo is denied', () => {
    const authz = compile({
      rules: [
        {
          name: 'tester',
          source: { serviceAccounts: [{ namespace: 'agentic-conformance-infra', name: 'conformance-tester-sa' }] },
          mcp: { methods: [{ name: 'tools/call', params: ['get-sum'] }], baseProtocol: 'match' },
        },
      ],
    });
    const tester = 'spiffe://cluster.local/ns/agentic-conformance-infra/sa/conformance-tester-sa';
    for (const method of BASE_METHODS) expect(allowed(authz, method, { spiffe: tester }), method).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'get-sum', spiffe: tester })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: tester })).toBe(false);
    // Another caller gets nothing, not even initialize.
    expect(allowed(authz, 'initialize', { spiffe: 'spiffe://cluster.local/ns/agentic-conformance-infra/sa/default' })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'get-sum', spiffe: 'spiffe://cluster.local/ns/agentic-conformance-infra/sa/default' })).toBe(false);
  });

  // xaccesspolicy-spiffe-matching: the same with source.spiffe.
  it('conformance spiffe-matching: the same by SPIFFE id', () => {
    const tester = 'spiffe://cluster.local/ns/agentic-conformance-infra/sa/conformance-tester-sa';
    const authz = compile({
      rules: [{ name: 'tester', source: { spiffe: [tester] }, mcp: { methods: [{ name: 'tools/call', params: ['get-sum'] }], baseProtocol: 'match' } }],
    });
    expect(allowed(authz, 'initialize', { spiffe: tester })).toBe(true);
    expect(allowed(authz, 'tools/list', { spiffe: tester })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'get-sum', spiffe: tester })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: tester })).toBe(false);
    expect(allowed(authz, 'initialize')).toBe(false);
  });

  // xaccesspolicy-base-protocol-match: MATCH and no methods ⇒ only base traffic.
  it('conformance base-protocol-match: no methods + MATCH allows only base traffic', () => {
    const authz = compile({ rules: [{ name: 'base', mcp: { baseProtocol: 'match' } }] });
    for (const method of BASE_METHODS) expect(allowed(authz, method), method).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'some-tool' })).toBe(false);
    expect(allowed(authz, 'prompts/list')).toBe(false);
    expect(allowed(authz, 'resources/list')).toBe(false);
    expect(allowed(authz, 'prompts/get', { prompt: 'p' })).toBe(false);
  });

  // xaccesspolicy-base-protocol-skip: SKIP + tools/call some-other-tool ⇒ initialize is denied.
  it('conformance base-protocol-skip: methods + SKIP denies initialize, tools/list and ping', () => {
    const authz = compile({ rules: [{ name: 'one-tool', mcp: { methods: [{ name: 'tools/call', params: ['some-other-tool'] }], baseProtocol: 'skip' } }] });
    for (const method of BASE_METHODS) expect(allowed(authz, method), method).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'some-other-tool' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'some-tool' })).toBe(false);
    // SKIP is the default.
    const byDefault = compile({ rules: [{ name: 'one-tool', mcp: { methods: [{ name: 'tools/call', params: ['some-other-tool'] }] } }] });
    expect(byDefault!.policies[0]!.rules[0]!.mcp!.baseProtocol).toBe('skip');
    expect(allowed(byDefault, 'initialize')).toBe(false);
  });

  it('methods + MATCH allows base traffic and the listed methods', () => {
    const authz = compile({ rules: [{ name: 'one-tool', mcp: { methods: [{ name: 'tools/call', params: ['some-other-tool'] }], baseProtocol: 'match' } }] });
    for (const method of BASE_METHODS) expect(allowed(authz, method), method).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'some-other-tool' })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'some-tool' })).toBe(false);
    expect(allowed(authz, 'prompts/list')).toBe(false);
  });

  it('no methods + SKIP allows everything', () => {
    for (const mcp of [{}, { methods: [] }, { baseProtocol: 'skip' as const }]) {
      const authz = compile({ rules: [{ name: 'any', mcp }] });
      for (const method of [...BASE_METHODS, 'prompts/list', 'resources/list']) expect(allowed(authz, method), method).toBe(true);
      expect(allowed(authz, 'tools/call', { tool: 'anything' })).toBe(true);
      expect(allowed(authz, 'prompts/get', { prompt: 'anything' })).toBe(true);
      expect(allowed(authz, 'resources/read', { resource: 'file:///anything' })).toBe(true);
    }
  });
});

describe('decide: CEL conditions', () => {
  const tmpOnly: AuthorizationInput = {
    rules: [
      { name: 'base', mcp: { baseProtocol: 'match' } },
      { name: 'tmp-files', mcp: { methods: [{ name: 'tools/call', params: ['read_file'] }] }, when: 'mcp.tool.arguments.path.startsWith("/tmp/")' },
    ],
  };

  it('decides on a tool argument', () => {
    const authz = compile(tmpOnly);
    expect(check(authz, 'tools/call', { tool: 'read_file', args: { path: '/tmp/notes.txt' } })).toMatchObject({ allowed: true, rule: 'rules/tmp-files' });
    expect(allowed(authz, 'tools/call', { tool: 'read_file', args: { path: '/etc/passwd' } })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'read_file', args: { path: '/tmp' } })).toBe(false);
    // The condition is ANDed with the rule's method match.
    expect(allowed(authz, 'tools/call', { tool: 'write_file', args: { path: '/tmp/notes.txt' } })).toBe(false);
    expect(allowed(authz, 'initialize')).toBe(true);
  });

  it('a CEL runtime error never lets a request through an allow rule', () => {
    const authz = compile(tmpOnly);
    // No such argument, an argument of the wrong type, no arguments at all.
    for (const args of [{}, { path: 42 }, { path: ['/tmp/a'] }, { other: '/tmp/a' }]) {
      expect(allowed(authz, 'tools/call', { tool: 'read_file', args }), JSON.stringify(args)).toBe(false);
    }
    expect(allowed(authz, 'tools/call', { tool: 'read_file' })).toBe(false);
  });

  it('an expression that is not a bool counts as an error', () => {
    const authz = compile({ rules: [{ name: 'not-bool', when: 'mcp.tool.name' }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(false);
    const deny = compile({ rules: [{ name: 'all' }, { name: 'not-bool', action: 'deny', when: 'mcp.tool.name' }] });
    expect(check(deny, 'tools/call', { tool: 'echo' })).toMatchObject({ allowed: false, rule: 'not-bool' });
  });

  it('a CEL runtime error counts as a match for a deny rule', () => {
    const authz = compile({
      rules: [
        { name: 'all', action: 'allow' },
        { name: 'no-etc', action: 'deny', mcp: { methods: [{ name: 'tools/call' }] }, when: 'mcp.tool.arguments.path.startsWith("/etc/")' },
      ],
    });
    expect(allowed(authz, 'tools/call', { tool: 'read_file', args: { path: '/tmp/a' } })).toBe(true);
    expect(check(authz, 'tools/call', { tool: 'read_file', args: { path: '/etc/shadow' } })).toMatchObject({ allowed: false, rule: 'no-etc' });
    for (const args of [{}, { path: 42 }]) {
      expect(check(authz, 'tools/call', { tool: 'read_file', args }), JSON.stringify(args)).toMatchObject({ allowed: false, rule: 'no-etc' });
    }
    // The method match comes first: the condition is not evaluated for other methods.
    expect(allowed(authz, 'initialize')).toBe(true);
  });

  it('reads the caller: source.spiffe', () => {
    const authz = compile({ rules: [{ name: 'agents', when: 'source.spiffe.startsWith("spiffe://cluster.local/ns/agents/")' }] });
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: OTHER })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'echo', spiffe: SA('ops', 'admin') })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'echo' })).toBe(false);
  });

  it('ANDs the condition with the rule source', () => {
    const authz = compile({ rules: [{ name: 'sa-tmp', source: { spiffe: [ALLOWED] }, when: 'mcp.tool.arguments.path.startsWith("/tmp/")' }] });
    expect(allowed(authz, 'tools/call', { tool: 'read_file', spiffe: ALLOWED, args: { path: '/tmp/a' } })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'read_file', spiffe: OTHER, args: { path: '/tmp/a' } })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'read_file', spiffe: ALLOWED, args: { path: '/var/a' } })).toBe(false);
  });
  it('for a list, a condition that cannot be evaluated without arguments neither hides nor vetoes', () => {
    const authz = compile({
      rules: [
        { name: 'tmp-files', mcp: { methods: [{ name: 'tools/call', params: ['read_file', 'rm'] }] }, when: 'mcp.tool.arguments.path.startsWith("/tmp/")' },
        { name: 'no-etc', action: 'deny', when: 'mcp.tool.arguments.path.startsWith("/etc/")' },
      ],
    });
    expect(allowed(authz, 'tools/call', { tool: 'read_file', listing: true })).toBe(true);
    // The rule's other conditions still apply: a tool it does not name stays hidden.
    expect(allowed(authz, 'tools/call', { tool: 'write_file', listing: true })).toBe(false);
    // The call itself is still decided on its arguments.
    expect(allowed(authz, 'tools/call', { tool: 'read_file' })).toBe(false);
    expect(allowed(authz, 'tools/call', { tool: 'read_file', args: { path: '/tmp/a' } })).toBe(true);
    expect(allowed(authz, 'tools/call', { tool: 'read_file', args: { path: '/etc/a' } })).toBe(false);
    // A condition that evaluates decides the listing as it would the call.
    const byName = compile({ rules: [{ name: 'not-rm', when: 'mcp.tool.name != "rm"' }] });
    expect(allowed(byName, 'tools/call', { tool: 'rm', listing: true })).toBe(false);
    expect(allowed(byName, 'tools/call', { tool: 'ls', listing: true })).toBe(true);
  });
});

describe('deny rules indexed by the field that tells them apart', () => {
  /** The same policies with every expression compiled without its prefilter: no index, every rule evaluated in full. */
  function unindexed(authz: AuthorizationIR): AuthorizationIR {
    const plain = (rule: AccessRuleIR): AccessRuleIR => ({ ...rule, cel: rule.cel && compileCel(rule.cel.source, CEL_VARIABLES, { prefilter: false }) });
    return { ...authz, policies: authz.policies.map((p) => ({ ...p, rules: p.rules.map(plain) })) };
  }

  it('decides every request as the plain list of rules does, naming the same first matching rule', () => {
    const authz = compile({
      rules: [
        { name: 'no-delete', action: 'deny', when: 'mcp.method == "tools/call" && mcp.tool.name == "delete"' },
        { name: 'other-deny', action: 'deny', when: 'mcp.tool.name == "drop" || mcp.tool.arguments.force == true' },
        { name: 'no-drop', action: 'deny', when: 'mcp.tool.name == "drop"' },
        { name: 'no-delete-again', action: 'deny', when: 'mcp.tool.name == "delete" && source.spiffe == ""' },
        { name: 'no-big', action: 'deny', when: 'mcp.tool.name == "write" && mcp.tool.arguments.size > 10' },
        { name: 'only-other', action: 'deny', source: { spiffe: [OTHER] }, when: 'mcp.tool.name == "read"' },
        { name: 'no-prompt', action: 'deny', mcp: { methods: [{ name: 'prompts/get' }] }, when: 'mcp.prompt.name == "secret"' },
        { name: 'everyone', action: 'allow' },
      ],
    })!;
    const plain = unindexed(authz);
    const calls: Array<[string, Call]> = [];
    for (const tool of ['delete', 'drop', 'write', 'read', 'list', '']) {
      for (const args of [undefined, {}, { force: true }, { force: false }, { force: false, size: 11 }, { size: 'x' }]) {
        for (const spiffe of [undefined, ALLOWED, OTHER]) {
          calls.push(['tools/call', { tool, ...(args ? { args } : {}), ...(spiffe ? { spiffe } : {}) }]);
          calls.push(['tools/call', { tool, listing: true, ...(spiffe ? { spiffe } : {}) }]);
        }
      }
    }
    calls.push(['prompts/get', { prompt: 'secret' }], ['prompts/get', { prompt: 'open' }], ['tools/list', {}], ['ping', {}]);
    let denied = 0;
    for (const [method, call] of calls) {
      const decision = check(authz, method, call);
      expect(decision, `${method} ${JSON.stringify(call)}`).toEqual(check(plain, method, call));
      if (!decision.allowed) denied++;
    }
    // The cases reach both outcomes and several rules: the comparison is not vacuous.
    expect(denied).toBeGreaterThan(20);
    expect(denied).toBeLessThan(calls.length);
    expect(check(authz, 'tools/call', { tool: 'delete' }).rule).toBe('no-delete');
    expect(check(authz, 'tools/call', { tool: 'drop' }).rule).toBe('other-deny');
    expect(check(authz, 'tools/call', { tool: 'read', args: { force: false }, spiffe: OTHER }).rule).toBe('only-other');
  });
});

describe('invalid CEL is a configuration error', () => {
  function configError(authorization: AuthorizationInput): ConfigError {
    try {
      compile(authorization);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('expected a ConfigError');
  }

  it('names the rule path and the position in the expression (syntax error)', () => {
    const err = configError({ rules: [{ name: 'broken', when: 'mcp.tool.name == ' }] });
    expect(err.message).toContain('listeners[0].routes[0].authorization.rules[0].when: invalid CEL');
    expect(err.message).toMatch(/authorization\.rules\[0\]\.when: invalid CEL: .*\(line 1, column \d+\)/);
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]!.path).toEqual(['listeners', 0, 'routes', 0, 'authorization', 'rules', 0, 'when']);
  });

  it('locates an error on a later line of the expression', () => {
    const err = configError({ rules: [{ name: 'ok', when: 'true' }, { name: 'broken', when: 'mcp.method == "tools/call" &&\n  nope.field == 1' }] });
    expect(err.message).toContain('authorization.rules[1].when: invalid CEL');
    expect(err.message).toContain("unknown variable 'nope'");
    expect(err.message).toContain('(line 2, column 3)');
  });

  it('reports unknown functions and policy rules at their own path', () => {
    const err = configError({
      policies: [{ name: 'p', rules: [{ name: 'fine' }, { name: 'bad', when: 'mcp.tool.name.frobnicate()' }] }],
    });
    expect(err.message).toContain('authorization.policies[0].rules[1].when: invalid CEL');
    expect(err.message).toContain("unknown function 'frobnicate'");
    expect(err.message).toMatch(/\(line 1, column \d+\)/);
  });

  it('reports every invalid expression at once, also at the backend level', () => {
    const config: ConfigInput = {
      ...configWith({ rules: [{ name: 'a', when: '(' }, { name: 'b', when: 'jwt.sub == "x"' }, { name: 'c', when: 'unknownVar' }] }),
      backends: [{ name: 'up', transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', authorization: { rules: [{ name: 'bad', when: '1 +' }] } }],
    };
    let err: unknown;
    try {
      loadConfigObject(config, 'engine-test');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    expect(message).toContain('authorization.rules[0].when: invalid CEL');
    expect(message).not.toContain('authorization.rules[1].when');
    expect(message).toContain('authorization.rules[2].when: invalid CEL');
    expect(message).toContain('backends[0].authorization.rules[0].when: invalid CEL');
  });
});
