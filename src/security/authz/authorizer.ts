import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';
import type { AuthorizationIR, BackendIR, ExtAuthzIR } from '../../ir/types.ts';
import { argumentsDigest, AuditSubject, type AuditLog, type AuditSubjectFields, type AuditVerdict } from '../audit.ts';
import { ExtAuthzClient } from '../ext-authz.ts';
import type { Identity } from '../identity.ts';
import type { MaybePromise } from '../../util/maybe-promise.ts';
import { isoNow } from '../../util/iso-time.ts';
import { decide, type Decision } from './engine.ts';
import { visibleHeaders, type AuthzRequest } from './request.ts';

/**
 * The authorization stage of one route, compiled with it: the external authorizer first
 * (route, then backend), then the route's policies, then the backend's. Every decision is
 * audited; a denial becomes the JSON-RPC error the client sees.
 */
export class RouteAuthorizer {
  private readonly routeKey: string;
  private readonly route: AuthorizationIR | undefined;
  private readonly backends: ReadonlyMap<string, AuthorizationIR | undefined>;
  private readonly external: ReadonlyMap<string, ExtAuthzClient>;
  private readonly audit: AuditLog | undefined;
  /** What a call's decision record said about it, serialized once, for its outcome record. */
  private readonly subjects = new WeakMap<AuthzRequest, AuditSubject>();
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

  /** One record per tool call, with how it ended; `request` is the one the call was checked with, if it was. */
  recordCall(request: AuthzRequest, outcome: 'ok' | 'error' | 'cancelled', latencyMs: number): void {
    this.write(request, { decision: 'allow', outcome, latencyMs });
  }

  private settle(request: AuthzRequest, decision: Decision & { headers?: Record<string, string> | undefined }): Record<string, string> | undefined {
    this.record(request, decision.allowed ? 'allow' : 'deny', decision.rule, decision.reason);
    if (!decision.allowed) throw this.denial(request);
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

  private record(request: AuthzRequest, decision: 'allow' | 'deny', rule: string, reason: string): void {
    this.write(request, decision === 'deny' ? { decision, rule, reason, outcome: 'denied' } : { decision, rule, reason });
  }

  private write(request: AuthzRequest, verdict: AuditVerdict): void {
    if (!this.audit) return;
    let subject = this.subjects.get(request);
    if (!subject) {
      subject = new AuditSubject(this.subjectFields(request));
      this.subjects.set(request, subject);
    }
    this.audit.writeAbout(subject, isoNow(), verdict);
  }

  private subjectFields(request: AuthzRequest): AuditSubjectFields {
    const target = request.mcp.target;
    return {
      session: request.mcp.sessionId || undefined,
      identity: { ...describeIdentity(request.identity), method: request.identity.methods.join('+') || 'anonymous' },
      route: this.routeKey,
      ...(request.mcp.backend ? { backend: request.mcp.backend } : {}),
      method: request.mcp.method,
      ...(target ? { tool: target.downstreamName } : {}),
      ...(request.mcp.arguments !== undefined ? { argumentsDigest: argumentsDigest(request.mcp.arguments) } : {}),
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
