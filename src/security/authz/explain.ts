import type { GatewayIR, RouteIR } from '../../ir/types.ts';
import { Naming } from '../../mcp/federation/naming.ts';
import { anonymous, type Identity } from '../identity.ts';
import { decide, type Decision } from './engine.ts';
import type { AuthzRequest } from './request.ts';

/** A request as an SRE writes it down to ask "would this be allowed, and why?". */
export interface ExplainInput {
  /** "listener/route"; default: the first route. */
  route?: string;
  identity?: { subject?: string; issuer?: string; claims?: Record<string, unknown>; scopes?: string[]; spiffe?: string; apiKey?: { name: string; attributes?: Record<string, string> }; address?: string };
  http?: { method?: string; path?: string; host?: string; headers?: Record<string, string> };
  mcp: { method: string; tool?: string; prompt?: string; resource?: string; backend?: string; arguments?: unknown };
}

export interface Explanation {
  readonly route: string;
  readonly backend: string | undefined;
  readonly decision: Decision;
  readonly steps: ReadonlyArray<{ readonly level: string; readonly decision: Decision }>;
  readonly externalAuth: boolean;
}

/**
 * Runs the route's and the backend's policies on a written-down request, exactly as the
 * data plane does, and says which rule decided. The external authorizer is not called.
 */
export function explain(ir: GatewayIR, input: ExplainInput): Explanation {
  const routes = ir.listeners.flatMap((l) => l.routes);
  const route = input.route ? routes.find((r) => `${r.listener}/${r.name}` === input.route) : routes[0];
  if (!route) throw new Error(`no route ${input.route ?? ''} (routes: ${routes.map((r) => `${r.listener}/${r.name}`).join(', ')})`);
  const request = toRequest(route, input);
  const backendIr = request.mcp.backend === undefined ? undefined : route.backends.find((b) => b.name === request.mcp.backend);
  const steps = [{ level: `route ${route.listener}/${route.name}`, decision: decide(route.authorization, request, 'route') }];
  if (backendIr) steps.push({ level: `backend ${backendIr.name}`, decision: decide(backendIr.authorization, request, 'backend') });
  const deciding = steps.find((s) => !s.decision.allowed) ?? steps.findLast((s) => s.decision.rule !== '(none)') ?? steps[0]!;
  return {
    route: `${route.listener}/${route.name}`,
    backend: backendIr?.name,
    decision: deciding.decision,
    steps,
    externalAuth: route.authorization?.externalAuth !== undefined || backendIr?.authorization?.externalAuth !== undefined,
  };
}

function toRequest(route: RouteIR, input: ExplainInput): AuthzRequest {
  const i = input.identity ?? {};
  const identity: Identity = {
    ...anonymous(i.address ?? '127.0.0.1'),
    methods: [...(i.claims || i.subject ? (['jwt'] as const) : []), ...(i.apiKey ? (['apiKey'] as const) : []), ...(i.spiffe ? (['mtls'] as const) : [])],
    subject: i.subject ?? i.apiKey?.name ?? i.spiffe,
    subjectFrom: i.subject !== undefined ? 'jwt' : i.apiKey ? 'apiKey' : i.spiffe !== undefined ? 'mtls' : undefined,
    issuer: i.issuer,
    claims: { ...(i.subject ? { sub: i.subject } : {}), ...i.claims },
    scopes: i.scopes ?? [],
    apiKey: i.apiKey && { name: i.apiKey.name, attributes: i.apiKey.attributes ?? {} },
    spiffe: i.spiffe,
  };
  const m = input.mcp;
  const subject = m.tool !== undefined ? { kind: 'tool' as const, name: m.tool } : m.prompt !== undefined ? { kind: 'prompt' as const, name: m.prompt } : m.resource !== undefined ? { kind: 'resource' as const, name: m.resource } : undefined;
  let backend = m.backend;
  let upstreamName = subject?.name;
  if (subject && backend === undefined) {
    const split = new Naming(route.naming, route.backends.map((b) => b.name)).split(subject.name);
    if (!split) throw new Error(`cannot tell the backend of "${subject.name}": give mcp.backend (the route's prefix mode is ${route.naming.mode})`);
    backend = split.backend;
    upstreamName = split.name;
  }
  return {
    identity,
    http: { method: input.http?.method ?? 'POST', path: input.http?.path ?? route.path, host: input.http?.host ?? '', headers: input.http?.headers ?? {} },
    mcp: {
      method: m.method,
      sessionId: 'explain',
      ...(backend !== undefined ? { backend } : {}),
      ...(subject ? { target: { kind: subject.kind, name: upstreamName!, downstreamName: subject.name } } : {}),
      ...(m.arguments !== undefined ? { arguments: m.arguments } : {}),
    },
  };
}
