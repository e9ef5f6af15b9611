import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../identity.ts';

/** Everything an authorization decision may look at, for one MCP message. */
export interface AuthzRequest {
  readonly identity: Identity;
  readonly http: { readonly method: string; readonly path: string; readonly host: string; readonly headers: IncomingHttpHeaders };
  readonly mcp: {
    readonly method: string;
    readonly sessionId: string;
    /** The backend the message goes to; undefined for messages the gateway answers (lists, ping). */
    readonly backend?: string;
    /** What the method names: a tool, prompt or resource, as the backend knows it and as the client sees it. */
    readonly target?: { readonly kind: 'tool' | 'prompt' | 'resource'; readonly name: string; readonly downstreamName: string };
    readonly arguments?: unknown;
    /**
     * Deciding whether a list shows the subject, before any arguments exist: a condition
     * that needs them cannot be evaluated, so it neither hides the subject nor vetoes it.
     */
    readonly listing?: boolean;
  };
}

/** Headers no policy may read: credentials stay out of CEL activations and external calls. */
// The sealed session id too: with its owner's credentials it is the session (policies have mcp.sessionId).
const HIDDEN_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization', 'mcp-session-id']);

export function visibleHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HIDDEN_HEADERS.has(k)) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** The CEL activation: only the variables an expression reads are built (see docs/policy.md). */
export function celActivation(request: AuthzRequest, variables: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { identity, mcp, http } = request;
  if (variables.has('source')) out.source = { address: identity.address, identity: identity.subject ?? '', method: identity.subjectFrom ?? '', spiffe: identity.spiffe ?? '' };
  if (variables.has('jwt')) out.jwt = identity.claims;
  if (variables.has('apiKey')) out.apiKey = identity.apiKey ? { name: identity.apiKey.name, ...identity.apiKey.attributes } : {};
  if (variables.has('request')) out.request = { method: http.method, path: http.path, host: http.host, headers: visibleHeaders(http.headers) };
  if (variables.has('mcp')) {
    const t = mcp.target;
    out.mcp = {
      method: mcp.method,
      session_id: mcp.sessionId,
      backend: mcp.backend ?? '',
      tool: t?.kind === 'tool' ? { name: t.name, downstream_name: t.downstreamName, backend: mcp.backend ?? '', arguments: mcp.arguments ?? {} } : {},
      prompt: t?.kind === 'prompt' ? { name: t.name, downstream_name: t.downstreamName, arguments: mcp.arguments ?? {} } : {},
      resource: t?.kind === 'resource' ? { uri: t.name, downstream_uri: t.downstreamName } : {},
    };
  }
  if (variables.has('a2a')) out.a2a = {};
  return out;
}

/** Variables CEL policies may read; `a2a` is reserved for the A2A data plane. */
export const CEL_VARIABLES = ['source', 'jwt', 'apiKey', 'request', 'mcp', 'a2a'] as const;
