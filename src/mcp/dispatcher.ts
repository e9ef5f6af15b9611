import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import { andThen, type MaybePromise } from '../util/maybe-promise.ts';
import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../jsonrpc/message.ts';
import type { SessionStore, StoredSession } from '../state/session-store.ts';
import type { Caller } from '../security/caller.ts';
import { principalKey } from '../security/identity.ts';
import type { Logger } from '../telemetry/logger.ts';
import { METHODS, ROUTED_METHODS, type Reply, type RequestScope } from './methods.ts';
import type { RouteRuntime } from './route-runtime.ts';
import { ReplyRelay, toErrorResponse, type ReplyOutput } from './relay.ts';
import { fromDownstreamId } from './server-request-ids.ts';
import { followServerStream } from './server-stream.ts';
import { SessionContext } from './session-context.ts';
import { newSessionSid, type SessionState } from './session-token.ts';
import type { UpstreamConnector } from './upstream/connector.ts';
import type { Inbound } from './upstream/types.ts';

export interface DispatcherDeps {
  readonly connector: UpstreamConnector;
  readonly store: SessionStore;
  readonly logger: Logger;
}

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
   * Runs a request's handler and writes its answer to `out`: a result the gateway composed,
   * or the upstream's reply relayed as it arrives, while the request can be cancelled.
   * Settles once the answer is written.
   */
  request(ctx: SessionContext, message: JsonRpcRequest, out: ReplyOutput): MaybePromise<void> {
    // A dropped connection is not a cancellation (the client may resume the stream): only
    // notifications/cancelled stops the upstream work.
    const flight = new Flight();
    let handled: MaybePromise<Reply>;
    try {
      const handler = METHODS.get(message.method);
      if (!handler) throw new JsonRpcError(ErrorCode.MethodNotFound, `Method not found: ${message.method}`);
      this.inFlight.add(ctx.sid, message.id, flight);
      // Waited for only when something is pending: most requests need no turn of the microtask queue here.
      const check = ROUTED_METHODS.has(message.method) ? undefined : ctx.authorize(message.method);
      handled = check instanceof Promise ? check.then(() => handler(ctx, message, flight)) : handler(ctx, message, flight);
    } catch (err) {
      this.inFlight.delete(ctx.sid, message.id, flight);
      return answer(out, toErrorResponse(message.id, err, ctx.logger));
    }
    if (!(handled instanceof Promise)) return this.relay(ctx, message, handled, flight, out);
    return handled.then(
      (reply) => this.relay(ctx, message, reply, flight, out),
      (err: unknown) => {
        this.inFlight.delete(ctx.sid, message.id, flight);
        // What the handler waited on was aborted by the cancel: a cancelled request gets no response.
        return flight.cancelled ? out.end() : answer(out, toErrorResponse(message.id, err, ctx.logger));
      },
    );
  }

  private relay(ctx: SessionContext, message: JsonRpcRequest, reply: Reply, flight: Flight, out: ReplyOutput): MaybePromise<void> {
    if (reply.kind === 'result') {
      this.inFlight.delete(ctx.sid, message.id, flight);
      // A handler that gathers from several upstreams may finish with what was left once the cancel aborted the rest.
      return flight.cancelled ? out.end() : answer(out, { jsonrpc: '2.0', id: message.id, result: reply.result });
    }
    const authorizer = ctx.route.authorizer;
    const audited = reply.facts && authorizer.recordsOutcome(reply.facts) ? reply.facts : undefined;
    if (flight.cancelled) {
      // Cancelled before it left: it never reaches the upstream, and the client gets no response.
      this.inFlight.delete(ctx.sid, message.id, flight);
      if (audited) authorizer.recordCall(audited, 'cancelled', 0);
      return out.end();
    }
    const started = audited ? performance.now() : 0;
    return new Promise((resolve) => {
      const relay = new ReplyRelay(ctx, message.id, reply, out, (response) => {
        this.inFlight.delete(ctx.sid, message.id, flight);
        // A cancel that came after the response was relayed changes nothing the client got.
        if (audited) authorizer.recordCall(audited, response ? outcomeOf(response) : flight.cancelled ? 'cancelled' : 'error', performance.now() - started);
        resolve();
      });
      relay.attach(ctx.exchange(reply.backend, reply.request, relay, undefined, reply.headers));
      flight.forwarded(reply.backend, relay);
    });
  }

  async notify(ctx: SessionContext, message: JsonRpcNotification): Promise<void> {
    switch (message.method) {
      case 'notifications/initialized':
        // Each upstream got its own at initialize.
        return;
      case 'notifications/cancelled': {
        const flight = this.inFlight.get(ctx.sid, message.params?.requestId as JsonRpcId);
        if (!flight) return;
        // The upstream hears of it first, while a shared session still knows the id it gave the request.
        if (flight.backend !== undefined) await sendQuietly(ctx, flight.backend, message);
        flight.cancel();
        return;
      }
      default:
        // A request sent without its id is still a request, run without an answer: none goes anywhere, since no policy would see it.
        if (!message.method.startsWith('notifications/')) throw new JsonRpcError(ErrorCode.InvalidRequest, `${message.method} without an id: only notifications go without one`);
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

  /** Every upstream's server stream, merged; resolves when all of them have stopped (see followServerStream). */
  async listen(ctx: SessionContext, signal: AbortSignal, emit: (data: string) => MaybePromise<void>): Promise<void> {
    const backends = [...ctx.route.backendNames].filter((b) => ctx.ref(b));
    await Promise.allSettled(backends.map((backend) => followServerStream(ctx, backend, signal, emit)));
  }

  async end(ctx: SessionContext, ttlMs: number): Promise<void> {
    await this.deps.store.markEnded(ctx.sid, ttlMs);
    await this.deps.connector.endAll(ctx.sid, await ctx.allUpstreams());
  }
}

/** A result the gateway composed, or an error in its place, as the whole answer. */
function answer(out: ReplyOutput, response: JsonRpcResponse): MaybePromise<void> {
  return andThen(out.response(JSON.stringify(response)), () => out.end());
}

/** How a tool call came out, by the upstream's response. */
function outcomeOf(response: Inbound): 'ok' | 'error' {
  const m = response.message;
  // The envelope was checked, the result was not: it may be anything, null included.
  return 'error' in m || ('result' in m && (m.result as { isError?: unknown } | null)?.isError === true) ? 'error' : 'ok';
}

async function sendQuietly(ctx: SessionContext, backend: string, message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
  try {
    await (await ctx.upstream(backend)).send(message);
  } catch (err) {
    ctx.logger.warn({ backend, err: (err as Error).message }, 'could not deliver a message to an upstream');
  }
}

/**
 * A request from its arrival to its answer, as a client's notifications/cancelled finds it:
 * what its handler waits on with the request's signal (upstream lists) is aborted and, once it
 * is forwarded, its upstream exchange ends (or, still waiting for its upstream session, never
 * starts). An authorization decision in progress is not aborted: the request ends after it.
 * No AbortController unless a handler asks for a signal: a forwarded call needs none, since
 * the cancellation reaches its relay directly.
 */
class Flight implements RequestScope {
  cancelled = false;
  /** Where the request went, once forwarded. */
  backend: string | undefined;
  private relay: ReplyRelay | undefined;
  private controller: AbortController | undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort();
    }
    return this.controller.signal;
  }

  forwarded(backend: string, relay: ReplyRelay): void {
    this.backend = backend;
    this.relay = relay;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.controller?.abort();
    this.relay?.cancel();
  }
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
    const key = idKey(id);
    // A client that reuses an id while it is in flight can cancel only the newer request.
    if (session.byId[key] === undefined) session.count++;
    session.byId[key] = flight;
  }

  get(sid: string, id: JsonRpcId | undefined): Flight | undefined {
    return this.sessions[sid]?.byId[idKey(id)];
  }

  /** Only if it is still `flight`: a client may reuse an id once its request was answered. */
  delete(sid: string, id: JsonRpcId, flight: Flight): void {
    const session = this.sessions[sid];
    const key = idKey(id);
    if (session?.byId[key] !== flight) return;
    delete session.byId[key];
    if (--session.count === 0) delete this.sessions[sid];
  }
}

/** 1 and "1" are different requests: string ids get a prefix no number's key starts with. */
function idKey(id: JsonRpcId | undefined): string | number {
  return typeof id === 'number' ? id : `s${String(id)}`;
}
