import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';
import type { AuthorizationIR, BackendIR, ExtAuthzIR } from '../../ir/types.ts';
import { argumentsDigest, type AuditLog, type AuditRecord } from '../audit.ts';
import { ExtAuthzClient } from '../ext-authz.ts';
import type { Identity } from '../identity.ts';
import type { MaybePromise } from '../../util/maybe-promise.ts';
import { isoNow } from '../../util/iso-time.ts';
import { decide, type Decision } from './engine.ts';
import { visibleHeaders, type AuthzRequest } from './request.ts';

/**
 * The authorization stage of one route, compiled with it: the external authorizer first
 * (route, then backend), then the route's policies, then the backend's. Every decision is
 * audited, an allowed tool call's when it ends, in one record with its outcome; a denial
 * becomes the JSON-RPC error the client sees.
 */
export class RouteAuthorizer {
  private readonly routeKey: string;
  private readonly route: AuthorizationIR | undefined;
  private readonly backends: ReadonlyMap<string, AuthorizationIR | undefined>;
  private readonly external: ReadonlyMap<string, ExtAuthzClient>;
  private readonly audit: AuditLog | undefined;
  /** Allowed tool calls whose record waits for their outcome: what allowed them. */
  private readonly awaitingOutcome = new WeakMap<AuthzRequest, Decision>();
  /** False when nothing on this route restricts anything: the hot path skips the stage. */
  readonly active: boolean;
  /** Whether tool calls are recorded. */
  readonly auditing: boolean;

  constructor(routeKey: string, route: AuthorizationIR | undefined, backends: readonly BackendIR[], audit: AuditLog | undefined) {
    this.routeKey = routeKey;
    this.route = route;
    this.backends = new Map(backends.map((b) => [b.name, b.authorization]));
    const external = new Map<string, ExtAuthzClient>();
    if (route?.externalAuth) external.set('', client(route.externalAuth));
    for (const b of backends) if (b.authorization?.externalAuth) external.set(b.name, client(b.authorization.externalAuth));
    this.external = external;
    this.audit = audit;
    this.auditing = audit !== undefined;
    this.active = route !== undefined || backends.some((b) => b.authorization !== undefined);
  }

  /**
   * Allows the message or throws the JSON-RPC error for the client; audits either way.
   * Resolves to the headers an external authorizer asked to add upstream, if any.
   */
  check(request: AuthzRequest): MaybePromise<Record<string, string> | undefined> {
    if (!this.active) return undefined;
    // Without an external authorizer nothing waits: no promise, no turn of the microtask queue.
    if (this.external.size === 0) return this.settle(request, this.decidePolicies(request));
    return this.decideWithExternal(request).then((decision) => this.settle(request, decision));
  }

  /** For list filtering: the policies alone (no callout per item), route then backend. */
  visible(request: AuthzRequest): boolean {
    if (!this.active) return true;
    return decide(this.route, request, 'route').allowed && decide(this.backends.get(request.mcp.backend ?? ''), request, 'backend').allowed;
  }

  /** Whether the request's record waits for its outcome (a tool call on an audited route), to be written by recordCall. */
  recordsOutcome(request: AuthzRequest): boolean {
    return this.auditing && request.mcp.method === 'tools/call';
  }

  /** A tool call's one record, with how it ended and what allowed it; `request` is the one the call was checked with, if it was. */
  recordCall(request: AuthzRequest, outcome: 'ok' | 'error' | 'cancelled', latencyMs: number): void {
    const allowedBy = this.awaitingOutcome.get(request);
    this.write(request, 'allow', allowedBy?.rule, allowedBy?.reason, outcome, latencyMs);
  }

  private settle(request: AuthzRequest, decision: Decision & { headers?: Record<string, string> | undefined }): Record<string, string> | undefined {
    if (!decision.allowed) {
      this.write(request, 'deny', decision.rule, decision.reason, 'denied');
      throw this.denial(request);
    }
    if (this.recordsOutcome(request)) this.awaitingOutcome.set(request, decision);
    else this.write(request, 'allow', decision.rule, decision.reason);
    return decision.headers;
  }

  private async decideWithExternal(request: AuthzRequest): Promise<Decision & { headers?: Record<string, string> | undefined }> {
    let headers: Record<string, string> | undefined;
    for (const [backend, ext] of this.external) {
      if (backend !== '' && backend !== request.mcp.backend) continue;
      const result = await ext.check({
        method: request.http.method,
        path: request.http.path,
        headers: visibleHeaders(request.http.headers),
        identity: describeIdentity(request.identity),
        mcp: {
          method: request.mcp.method,
          ...(request.mcp.target?.kind === 'tool' ? { tool: request.mcp.target.downstreamName, arguments: request.mcp.arguments } : {}),
          ...(request.mcp.target?.kind === 'prompt' ? { prompt: request.mcp.target.downstreamName } : {}),
          ...(request.mcp.target?.kind === 'resource' ? { resource: request.mcp.target.downstreamName } : {}),
        },
      });
      if (!result.allowed) return { allowed: false, rule: `externalAuth${backend ? `:${backend}` : ''}`, reason: result.reason };
      if (Object.keys(result.headers).length > 0) headers = { ...headers, ...result.headers };
    }
    return { ...this.decidePolicies(request), headers };
  }

  /** The route's policies, then the backend's: the decision that stands. */
  private decidePolicies(request: AuthzRequest): Decision {
    const routeDecision = decide(this.route, request, 'route');
    if (!routeDecision.allowed || request.mcp.backend === undefined) return routeDecision;
    const backendDecision = decide(this.backends.get(request.mcp.backend), request, 'backend');
    return backendDecision.allowed && backendDecision.rule === '(none)' ? routeDecision : backendDecision;
  }

  private denial(request: AuthzRequest): JsonRpcError {
    const target = request.mcp.target;
    const hide = (request.mcp.backend !== undefined && this.backends.get(request.mcp.backend)?.hideForbidden) || this.route?.hideForbidden;
    if (hide && target?.kind === 'tool') return new JsonRpcError(ErrorCode.InvalidParams, `Unknown tool: ${target.downstreamName}`);
    // The kube-agentic-networking answer: HTTP 200, JSON-RPC code 403, this message.
    return new JsonRpcError(ErrorCode.Forbidden, 'Access to this tool is forbidden.');
  }

  /** One record, made when its batch is written (the facts of a call do not change once decided on). */
  private write(request: AuthzRequest, decision: 'allow' | 'deny', rule?: string, reason?: string, outcome?: AuditRecord['outcome'], latencyMs?: number): void {
    if (!this.audit) return;
    const at = Date.now();
    this.audit.write(() => this.record(at, request, decision, rule, reason, outcome, latencyMs));
  }

  /** Built in one shape whatever it says: absent fields are undefined, which JSON leaves out. */
  private record(at: number, request: AuthzRequest, decision: 'allow' | 'deny', rule?: string, reason?: string, outcome?: AuditRecord['outcome'], latencyMs?: number): AuditRecord {
    const { mcp } = request;
    return {
      time: isoNow(at),
      session: mcp.sessionId || undefined,
      identity: { ...describeIdentity(request.identity), method: request.identity.methods.join('+') || 'anonymous' },
      route: this.routeKey,
      backend: mcp.backend,
      method: mcp.method,
      tool: mcp.target?.downstreamName,
      decision,
      rule,
      reason,
      latencyMs,
      outcome,
      argumentsDigest: mcp.arguments === undefined ? undefined : argumentsDigest(mcp.arguments),
    };
  }
}

function client(ir: ExtAuthzIR): ExtAuthzClient {
  return new ExtAuthzClient({
    url: ir.url,
    timeoutMs: ir.timeoutMs,
    failOpen: ir.failOpen,
    ...(ir.cacheTtlMs !== undefined ? { cacheTtlMs: ir.cacheTtlMs } : {}),
    headers: { ...ir.headers },
    allowedResponseHeaders: [...ir.allowedResponseHeaders],
  });
}

function describeIdentity(identity: Identity): { subject?: string; issuer?: string; spiffe?: string; apiKey?: string } {
  return {
    ...(identity.subject ? { subject: identity.subject } : {}),
    ...(identity.issuer ? { issuer: identity.issuer } : {}),
    ...(identity.spiffe ? { spiffe: identity.spiffe } : {}),
    ...(identity.apiKey ? { apiKey: identity.apiKey.name } : {}),
  };
}
