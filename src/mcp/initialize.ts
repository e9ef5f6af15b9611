import type { Caller } from '../security/caller.ts';
import { principalKey } from '../security/identity.ts';
import type { Logger } from '../telemetry/logger.ts';
import { upstreamHeaders } from './upstream-credentials.ts';
import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import type { JsonRpcRequest } from '../jsonrpc/message.ts';
import { GATEWAY_INFO, negotiateVersion } from './protocol.ts';
import type { RouteRuntime } from './route-runtime.ts';
import { newSessionSid, type SessionState, type UpstreamSessionRef } from './session-token.ts';
import type { ClientInit, OpenedUpstream, UpstreamConnector } from './upstream/connector.ts';

export interface InitializeOutcome {
  readonly state: SessionState;
  readonly result: Record<string, unknown>;
}

/**
 * Opens one upstream session per backend, concurrently, and answers the client with the
 * union of what they offer. A backend that fails is left out (failOpen, logged, opened
 * later on first use) or fails the whole initialize (failClosed).
 */
export async function initializeSession(route: RouteRuntime, request: JsonRpcRequest, caller: Caller, connector: UpstreamConnector, logger: Logger): Promise<InitializeOutcome> {
  const params = request.params ?? {};
  if (typeof params.capabilities !== 'object' || params.capabilities === null || typeof params.clientInfo !== 'object' || params.clientInfo === null) {
    throw new JsonRpcError(ErrorCode.InvalidParams, 'initialize needs params.capabilities and params.clientInfo objects');
  }
  const client: ClientInit = {
    protocolVersion: negotiateVersion(params.protocolVersion),
    capabilities: params.capabilities as Record<string, unknown>,
    clientInfo: params.clientInfo as Record<string, unknown>,
  };
  await route.authorizer.check({ identity: caller.identity, http: caller.http, mcp: { method: 'initialize', sessionId: '' } });
  const sid = newSessionSid();
  const backends = route.ir.backends;
  const settled = await Promise.allSettled(backends.map((b) => connector.open(b, sid, client, upstreamHeaders(b, caller.identity))));
  const opened = new Map<string, OpenedUpstream>();
  const failures: string[] = [];
  settled.forEach((s, i) => {
    const name = backends[i]!.name;
    if (s.status === 'fulfilled') opened.set(name, s.value);
    else failures.push(`${name}: ${(s.reason as Error).message}`);
  });
  if (failures.length > 0) {
    if (route.ir.failureMode === 'failClosed') {
      await connector.endAll(sid, [...opened.values()].map((o) => o.session));
      throw new JsonRpcError(ErrorCode.UpstreamUnavailable, `could not open every backend: ${failures.join('; ')}`);
    }
    logger.warn({ route: route.key, failures }, 'backends unavailable at initialize; they will be retried on use');
  }
  const upstreams: Record<string, UpstreamSessionRef> = {};
  for (const [name, o] of opened) upstreams[name] = o.ref;
  const state: SessionState = {
    sid,
    route: route.key,
    owner: principalKey(caller.identity),
    protocolVersion: client.protocolVersion,
    client: { capabilities: client.capabilities, clientInfo: client.clientInfo },
    upstreams,
    iat: Math.floor(Date.now() / 1000),
  };
  const results = [...opened.values()].map((o) => o.result);
  const instructions = [...opened]
    .filter(([, o]) => typeof o.result.instructions === 'string' && o.result.instructions.length > 0)
    .map(([name, o]) => `## ${name}\n${String(o.result.instructions)}`)
    .join('\n\n');
  return {
    state,
    result: {
      protocolVersion: client.protocolVersion,
      capabilities: mergeCapabilities(results.map((r) => (r.capabilities ?? {}) as Record<string, unknown>), route.ir.backends.length),
      serverInfo: GATEWAY_INFO,
      ...(instructions ? { instructions } : {}),
    },
  };
}

/**
 * The union of the upstreams' capabilities. listChanged is always on for lists the
 * federation offers: a backend coming or going changes the merged list.
 */
export function mergeCapabilities(all: ReadonlyArray<Record<string, unknown>>, backendCount: number): Record<string, unknown> {
  const has = (feature: string): boolean => all.some((c) => c[feature] !== undefined && c[feature] !== null);
  const flag = (feature: string, sub: string): boolean => all.some((c) => (c[feature] as Record<string, unknown> | undefined)?.[sub] === true);
  const out: Record<string, unknown> = {};
  // Lists are answered (possibly empty) even when no backend was reachable at initialize.
  if (has('tools') || backendCount > 0) out.tools = { listChanged: true };
  if (has('prompts')) out.prompts = { listChanged: true };
  if (has('resources')) out.resources = { listChanged: true, ...(flag('resources', 'subscribe') ? { subscribe: true } : {}) };
  if (has('completions')) out.completions = {};
  if (has('logging')) out.logging = {};
  if (has('tasks')) out.tasks = all.reduce<Record<string, unknown>>((merged, c) => deepUnion(merged, (c.tasks ?? {}) as Record<string, unknown>), {});
  return out;
}

/** Objects merged key by key: a capability any upstream declares is declared. */
function deepUnion(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const mine = out[k];
    out[k] = isObject(mine) && isObject(v) ? deepUnion(mine, v) : (mine ?? v);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
