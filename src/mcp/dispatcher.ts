import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import { andThen, type MaybePromise } from '../util/maybe-promise.ts';
import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../jsonrpc/message.ts';
import type { SessionStore, StoredSession } from '../state/session-store.ts';
import type { Caller } from '../security/caller.ts';
import { principalKey } from '../security/identity.ts';
import type { Logger } from '../telemetry/logger.ts';
import { screenTools } from './federation/lists.ts';
import { METHODS, ROUTED_METHODS, type Reply } from './methods.ts';
import type { RouteRuntime } from './route-runtime.ts';
import { fromDownstreamId, toDownstreamId } from './server-request-ids.ts';
import { SessionContext } from './session-context.ts';
import { newSessionSid, type SessionState } from './session-token.ts';
import { mapTaskIds } from './tasks.ts';
import type { UpstreamConnector } from './upstream/connector.ts';
import { UpstreamError, type Inbound } from './upstream/types.ts';

export interface DispatcherDeps {
  readonly connector: UpstreamConnector;
  readonly store: SessionStore;
  readonly logger: Logger;
}

export type ForwardReply = Extract<Reply, { kind: 'forward' }>;

/**
 * What happens to a client's message once its session is known, whatever transport
 * carried it (streamable HTTP, legacy HTTP+SSE): requests to their handler, notifications
 * and answers to the upstream they concern, upstream streams merged for the client.
 */
export class SessionDispatcher {
  private readonly deps: DispatcherDeps;
  /** Requests in flight, so a client's cancel reaches the upstream that owns it. */
  private readonly inFlight = new InFlightRequests();

  constructor(deps: DispatcherDeps) {
    this.deps = deps;
  }

  get logger(): Logger {
    return this.deps.logger;
  }

  context(route: RouteRuntime, state: SessionState, caller: Caller, ttlMs: number): MaybePromise<SessionContext> {
    return andThen(this.deps.store.lookup(state.sid), (stored) => this.contextOf(route, state, caller, ttlMs, stored));
  }

  /** The context, when the caller has read the store already. */
  contextOf(route: RouteRuntime, state: SessionState, caller: Caller, ttlMs: number, stored: StoredSession | undefined): SessionContext {
    return new SessionContext(route, state, caller, stored?.upstreams, this.deps.connector, this.deps.store, ttlMs, this.deps.logger);
  }

  /**
   * A context for one request of a stateless route: no session id, nothing remembered;
   * upstream sessions are opened on demand and ended with endEphemeral.
   */
  ephemeralContext(route: RouteRuntime, caller: Caller, protocolVersion: string, ttlMs: number): SessionContext {
    const state: SessionState = {
      sid: newSessionSid(),
      route: route.key,
      owner: principalKey(caller.identity),
      protocolVersion,
      client: { capabilities: {}, clientInfo: { name: 'stateless-client', version: '0' } },
      upstreams: {},
      iat: Math.floor(Date.now() / 1000),
    };
    return new SessionContext(route, state, caller, undefined, this.deps.connector, this.deps.store, ttlMs, this.deps.logger, true);
  }

  async endEphemeral(ctx: SessionContext): Promise<void> {
    await this.deps.connector.endAll(ctx.sid, await ctx.allUpstreams());
  }

  /**
   * Runs a request's handler; `relay` writes a forwarded reply while the request can be
   * cancelled, and resolves to the upstream's response when one came.
   */
  async request(
    ctx: SessionContext,
    message: JsonRpcRequest,
    onResult: (response: JsonRpcResponse) => void,
    relay: (reply: ForwardReply, cancelled: AbortSignal) => Promise<Inbound | undefined>,
  ): Promise<void> {
    // A dropped connection is not a cancellation (the client may resume the stream): only
    // notifications/cancelled stops the upstream work.
    const controller = new AbortController();
    let reply: Reply;
    try {
      const handler = METHODS.get(message.method);
      if (!handler) throw new JsonRpcError(ErrorCode.MethodNotFound, `Method not found: ${message.method}`);
      // Awaited only when something is pending: most requests need no turn of the microtask queue here.
      const check = ROUTED_METHODS.has(message.method) ? undefined : ctx.authorize(message.method);
      if (check instanceof Promise) await check;
      const handled = handler(ctx, message, controller.signal);
      reply = handled instanceof Promise ? await handled : handled;
    } catch (err) {
      return onResult(toErrorResponse(message.id, err, ctx.logger));
    }
    if (reply.kind === 'result') return onResult({ jsonrpc: '2.0', id: message.id, result: reply.result });
    this.inFlight.add(ctx.sid, message.id, { backend: reply.backend, controller });
    const audited = message.method === 'tools/call' && ctx.route.authorizer.auditing ? reply.facts : undefined;
    const started = audited ? performance.now() : 0;
    let response: Inbound | undefined;
    try {
      response = await relay(reply, controller.signal);
    } finally {
      this.inFlight.delete(ctx.sid, message.id);
      if (audited) ctx.route.authorizer.recordCall(audited, controller.signal.aborted ? 'cancelled' : outcomeOf(response), performance.now() - started);
    }
  }

  async notify(ctx: SessionContext, message: JsonRpcNotification): Promise<void> {
    switch (message.method) {
      case 'notifications/initialized':
        // Each upstream got its own at initialize.
        return;
      case 'notifications/cancelled': {
        const flight = this.inFlight.get(ctx.sid, message.params?.requestId as JsonRpcId);
        if (!flight) return;
        await sendQuietly(ctx, flight.backend, message);
        flight.controller.abort();
        return;
      }
      default:
        // roots/list_changed and anything newer concern every upstream.
        await Promise.all([...ctx.route.backendNames].filter((b) => ctx.ref(b)).map((b) => sendQuietly(ctx, b, message)));
    }
  }

  /** The client's answer to a request an upstream made: back to that upstream, with its own id. */
  async answerUpstream(ctx: SessionContext, message: JsonRpcResponse): Promise<void> {
    const origin = fromDownstreamId(message.id);
    if (!origin || !ctx.route.backendNames.has(origin.backend)) {
      ctx.logger.debug({ id: message.id }, 'response to no request the gateway relayed');
      return;
    }
    await sendQuietly(ctx, origin.backend, { ...message, id: origin.id });
  }

  /** Every upstream's server stream, merged; resolves when all of them have ended. */
  async listen(ctx: SessionContext, signal: AbortSignal, emit: (data: string) => Promise<void> | void): Promise<void> {
    const backends = [...ctx.route.backendNames].filter((b) => ctx.ref(b));
    await Promise.allSettled(
      backends.map(async (backend) => {
        try {
          const session = await ctx.upstream(backend);
          for await (const inbound of session.listen(signal)) {
            const out = downstreamForm(ctx, backend, inbound);
            if (out) await emit(out);
          }
        } catch (err) {
          if (!signal.aborted) ctx.logger.warn({ backend, err: (err as Error).message }, 'upstream server stream failed');
        }
      }),
    );
  }

  async end(ctx: SessionContext, ttlMs: number): Promise<void> {
    await this.deps.store.markEnded(ctx.sid, ttlMs);
    await this.deps.connector.endAll(ctx.sid, await ctx.allUpstreams());
  }
}

/** How a tool call came out, by the upstream's response (none: it failed on the way). */
function outcomeOf(response: Inbound | undefined): 'ok' | 'error' {
  const m = response?.message;
  // The envelope was checked, the result was not: it may be anything, null included.
  return !m || 'error' in m || ('result' in m && (m.result as { isError?: unknown } | null)?.isError === true) ? 'error' : 'ok';
}

/**
 * The final response of a forwarded reply: the upstream's own bytes unless a mapper changed
 * the result or a guard inspected the reply; then the gateway's own encoding of the response,
 * with nothing in it but what JSON-RPC defines.
 */
export function finalResponse(reply: ForwardReply, inbound: Inbound): MaybePromise<string> {
  const m = inbound.message as JsonRpcResponse;
  const { mapResult, screenError } = reply;
  if ('error' in m) return screenError ? JSON.stringify({ jsonrpc: '2.0', id: m.id, error: screenError(m.error) }) : inbound.raw;
  if (!mapResult && !screenError) return inbound.raw;
  const mapped = mapResult ? mapResult(m.result, inbound.raw.length) : m.result;
  return andThen(mapped, (result) => (result === m.result && !screenError ? inbound.raw : JSON.stringify({ jsonrpc: '2.0', id: m.id, result })));
}

export function isResponseTo(inbound: Inbound, id: JsonRpcId): boolean {
  const m = inbound.message;
  return !('method' in m) && m.id === id;
}

/**
 * An upstream message as the client must see it: server requests get backend-scoped ids,
 * resource URIs and task ids their downstream names, and a changed list drops the
 * session's name index.
 */
export function downstreamForm(ctx: SessionContext, backend: string, inbound: Inbound): string | undefined {
  const m = inbound.message;
  // A response on a server stream answers nothing the client sent.
  if (!('method' in m)) return undefined;
  if ('id' in m) return JSON.stringify({ ...m, id: toDownstreamId(backend, m.id) });
  switch (m.method) {
    case 'notifications/resources/updated': {
      const uri = m.params?.uri;
      if (typeof uri !== 'string' || ctx.route.naming.mode === 'never') return inbound.raw;
      return JSON.stringify({ ...m, params: { ...m.params, uri: ctx.route.naming.prefixed(backend, uri) } });
    }
    case 'notifications/tasks/status':
      return JSON.stringify({ ...m, params: mapTaskIds(ctx.route.naming, backend, m.params ?? {}) });
    case 'notifications/tools/list_changed':
      ctx.route.indexes.forget(ctx.sid, 'tools');
      // A changed list may hide a changed definition: the guard looks before the client does.
      screenTools(ctx, backend).catch((err: Error) => ctx.logger.debug({ backend, err: err.message }, 'could not re-screen tools'));
      return inbound.raw;
    case 'notifications/prompts/list_changed':
      ctx.route.indexes.forget(ctx.sid, 'prompts');
      return inbound.raw;
    case 'notifications/resources/list_changed':
      ctx.route.indexes.forget(ctx.sid, 'resources');
      return inbound.raw;
    default:
      return inbound.raw;
  }
}

export function toErrorResponse(id: JsonRpcId | null, err: unknown, logger: Logger): JsonRpcResponse {
  if (err instanceof JsonRpcError) return err.toResponse(id);
  if (err instanceof UpstreamError) {
    const code = err.kind === 'timeout' ? ErrorCode.RequestTimeout : ErrorCode.UpstreamUnavailable;
    return new JsonRpcError(code, err.message, { backend: err.backend }).toResponse(id);
  }
  logger.error({ err }, 'unexpected error handling a request');
  return new JsonRpcError(ErrorCode.InternalError, 'Internal error').toResponse(id);
}

async function sendQuietly(ctx: SessionContext, backend: string, message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
  try {
    await (await ctx.upstream(backend)).send(message);
  } catch (err) {
    ctx.logger.warn({ backend, err: (err as Error).message }, 'could not deliver a message to an upstream');
  }
}

interface Flight {
  readonly backend: string;
  readonly controller: AbortController;
}

/**
 * Requests in flight per session. Dictionary objects rather than Maps, and no key built per
 * request, because both made garbage that outlived the request:
 * - a long-lived Map with an entry added and removed per request rehashes every few dozen
 *   requests, and its entries reached the old generation (measured: ~0.5 KiB promoted per
 *   call; likely cause: V8 links each replaced table to its successor, so one old table keeps
 *   every later one alive);
 * - a property key concatenated per request is internalized, in the old generation, on
 *   every request (~0.6 µs in a microbenchmark, ~1 µs per call in the gateway's profile).
 * A session's id is the same string on every request (opened tokens are remembered), and
 * numeric request ids, what clients send, are element indexes: nothing new is interned.
 */
class InFlightRequests {
  private readonly sessions: Record<string, { count: number; readonly byId: Record<string | number, Flight> }> = Object.create(null);

  add(sid: string, id: JsonRpcId, flight: Flight): void {
    const session = (this.sessions[sid] ??= { count: 0, byId: Object.create(null) });
    session.byId[idKey(id)] = flight;
    session.count++;
  }

  get(sid: string, id: JsonRpcId | undefined): Flight | undefined {
    return this.sessions[sid]?.byId[idKey(id)];
  }

  delete(sid: string, id: JsonRpcId): void {
    const session = this.sessions[sid];
    if (!session) return;
    delete session.byId[idKey(id)];
    if (--session.count === 0) delete this.sessions[sid];
  }
}

/** 1 and "1" are different requests: string ids get a prefix no number's key starts with. */
function idKey(id: JsonRpcId | undefined): string | number {
  return typeof id === 'number' ? id : `s${String(id)}`;
}
