import { randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../http/body.ts';
import { HttpError } from '../http/errors.ts';
import { SseWriter } from '../http/sse.ts';
import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest } from '../jsonrpc/message.ts';
import { parseJson, toMessage } from '../jsonrpc/parse.ts';
import type { Caller } from '../security/caller.ts';
import { principalKey, type Identity } from '../security/identity.ts';
import { parseEventId, type EventStore, type Replay, type StoredEvent } from '../state/event-store.ts';
import type { SessionStore } from '../state/session-store.ts';
import type { SessionDispatcher } from './dispatcher.ts';
import { toErrorResponse, type ReplyOutput } from './relay.ts';
import { initializeSession } from './initialize.ts';
import { BATCHING_VERSIONS, isSupportedVersion, LATEST_PROTOCOL_VERSION } from './protocol.ts';
import type { RouteRuntime } from './route-runtime.ts';
import type { SessionContext } from './session-context.ts';
import { sealSession, type OpenedSessions } from './session-token.ts';
import type { UpstreamConnector } from './upstream/connector.ts';
import { abortAfter, abortWith, whenAborted } from '../util/abort.ts';
import { andThen, type MaybePromise } from '../util/maybe-promise.ts';

export interface EndpointDeps {
  readonly dispatcher: SessionDispatcher;
  readonly connector: UpstreamConnector;
  readonly store: SessionStore;
  readonly events: EventStore;
}

/** What the endpoint reads from the config snapshot a request started with. */
export interface EndpointConfig {
  readonly keys: readonly KeyObject[];
  /** Tokens opened with those keys, remembered for the snapshot's lifetime. */
  readonly sessions: OpenedSessions;
  readonly ttlMs: number;
  readonly maxBodyBytes: number;
  readonly streamIdleTimeoutMs: number;
}

const SESSION_HEADER = 'mcp-session-id';
const VERSION_HEADER = 'mcp-protocol-version';
export const KEEP_ALIVE_MS = 15_000;
/** Messages one batch may carry: each is dispatched at once, so this bounds what one POST sets going. */
const MAX_BATCH_MESSAGES = 100;
/** A batch's responses gathered for a client that takes JSON only, at most (in characters); past it, errors stand in for them. */
const MAX_BATCH_JSON_CHARS = 16 * 1024 * 1024;
/** How long a resumed server stream passes on what its old stream still gets (its replica may not have seen its client go yet). */
const OLD_STREAM_FOLLOW_MS = 120_000;

/**
 * The MCP Streamable HTTP endpoint of a route: POST carries one JSON-RPC message, GET
 * opens the session's server stream, DELETE ends the session. Session state lives in the
 * sealed session id, so any replica serves any request.
 */
export class McpEndpoint {
  private readonly deps: EndpointDeps;
  /** Set at shutdown: no server stream opens after it. */
  private shuttingDown = false;
  /**
   * The server streams open on this replica, by session: a DELETE ends the session's, and
   * shutdown ends them all (they never finish on their own; clients reconnect elsewhere).
   */
  private readonly streams = new Map<string, Set<AbortController>>();

  constructor(deps: EndpointDeps) {
    this.deps = deps;
  }

  /** At shutdown: ends every open GET stream, and opens no more; requests in progress are left to drain. */
  closeStreams(): void {
    this.shuttingDown = true;
    for (const open of [...this.streams.values()]) for (const stream of [...open]) stream.abort();
  }

  handle(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller): Promise<void> {
    if (route.ir.stateless && req.method !== 'POST') throw new HttpError(405, 'this route is stateless: POST only', { allow: 'POST' });
    switch (req.method) {
      case 'POST':
        return this.post(req, res, route, config, caller);
      case 'GET':
        return this.get(req, res, route, config, caller);
      case 'DELETE':
        return this.delete(req, res, route, config, caller);
      default:
        throw new HttpError(405, `method ${req.method} is not allowed`, { allow: 'GET, POST, DELETE' });
    }
  }

  /** A promise for the body, then no layer of its own: the rest is the dispatcher's, and the relay's. */
  private post(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller): Promise<void> {
    const accept = req.headers.accept ?? '';
    const acceptsSse = accept.includes('text/event-stream') || accept.includes('*/*');
    if (!acceptsSse && !accept.includes('application/json')) throw new HttpError(406, 'Accept must include application/json and text/event-stream');
    if (!(req.headers['content-type'] ?? '').includes('application/json')) throw new HttpError(415, 'Content-Type must be application/json');
    return readBody(req, config.maxBodyBytes).then((text) => this.received(req, res, route, config, caller, text, acceptsSse));
  }

  private received(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller, text: string, acceptsSse: boolean): MaybePromise<void> {
    let message: JsonRpcMessage;
    try {
      const value = parseJson(text);
      if (Array.isArray(value)) return this.batch(req, res, route, config, caller, value, acceptsSse);
      message = toMessage(value);
    } catch (err) {
      return sendJson(res, 400, (err as JsonRpcError).toResponse(null));
    }
    if ('method' in message && message.method === 'initialize') {
      if (!('id' in message)) throw new HttpError(400, 'initialize must be a request');
      return this.initialize(res, route, config, message as JsonRpcRequest, caller);
    }
    return this.inContext(req, route, config, caller, (ctx) => this.dispatch(res, ctx, message, acceptsSse));
  }

  /** Runs `use` in the request's session; on a stateless route, in one of its own, whose upstream sessions end with it. */
  private inContext(req: IncomingMessage, route: RouteRuntime, config: EndpointConfig, caller: Caller, use: (ctx: SessionContext) => MaybePromise<void>): MaybePromise<void> {
    if (!route.ir.stateless) return andThen(this.session(req, route, config, caller), use);
    return this.alone(this.stateless(req, route, config, caller), use);
  }

  private async alone(ctx: SessionContext, use: (ctx: SessionContext) => MaybePromise<void>): Promise<void> {
    try {
      await use(ctx);
    } finally {
      await this.deps.dispatcher.endEphemeral(ctx);
    }
  }

  private dispatch(res: ServerResponse, ctx: SessionContext, message: JsonRpcMessage, acceptsSse: boolean): MaybePromise<void> {
    const dispatcher = this.deps.dispatcher;
    if (!('method' in message)) return dispatcher.answerUpstream(ctx, message).then(() => accepted(res));
    if (!('id' in message)) return dispatcher.notify(ctx, message).then(() => accepted(res), (err: unknown) => refuseNotification(res, err));
    return dispatcher.request(ctx, message, new PostReply(res, ctx.sid, this.deps.events, acceptsSse));
  }

  /**
   * A JSON-RPC batch, which protocol 2025-03-26 alone allows: each message is handled as if
   * it came alone, and the requests' replies share one stream (or, for a client that takes
   * JSON only, one array of responses). A batch of notifications and responses gets 202.
   */
  private batch(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller, items: unknown[], acceptsSse: boolean): MaybePromise<void> {
    if (items.length === 0 || items.length > MAX_BATCH_MESSAGES) {
      const why = items.length === 0 ? 'an empty batch' : `a batch of ${items.length} messages; at most ${MAX_BATCH_MESSAGES} go in one`;
      return sendJson(res, 400, new JsonRpcError(ErrorCode.InvalidRequest, `Invalid Request: ${why}`).toResponse(null));
    }
    return this.inContext(req, route, config, caller, (ctx) => this.dispatchBatch(res, ctx, items, acceptsSse));
  }

  private async dispatchBatch(res: ServerResponse, ctx: SessionContext, items: unknown[], acceptsSse: boolean): Promise<void> {
    const version = ctx.state.protocolVersion;
    if (!BATCHING_VERSIONS.has(version)) return sendJson(res, 400, new JsonRpcError(ErrorCode.InvalidRequest, `Invalid Request: JSON-RPC batches are not part of MCP ${version}; send one message per request`).toResponse(null));
    const hasRequests = items.some((item) => typeof item === 'object' && item !== null && 'method' in item && 'id' in item);
    const reply = new PostReply(res, ctx.sid, this.deps.events, acceptsSse, { hasRequests });
    const refuse = (err: unknown, id: JsonRpcId | null): MaybePromise<void> => {
      if (!(err instanceof JsonRpcError)) throw err;
      return reply.response(JSON.stringify(err.toResponse(id)));
    };
    const dispatcher = this.deps.dispatcher;
    const handled = items.map((item): MaybePromise<void> => {
      let message: JsonRpcMessage;
      try {
        message = toMessage(item);
      } catch (err) {
        return refuse(err, null);
      }
      if (!('method' in message)) return dispatcher.answerUpstream(ctx, message);
      if (!('id' in message)) return dispatcher.notify(ctx, message).catch((err: unknown) => refuse(err, null));
      if (message.method === 'initialize') return refuse(new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: initialize cannot be part of a batch'), message.id);
      return dispatcher.request(ctx, message, reply.member(message.id));
    });
    await Promise.all(handled);
    await reply.end();
  }

  private async initialize(res: ServerResponse, route: RouteRuntime, config: EndpointConfig, request: JsonRpcRequest, caller: Caller): Promise<void> {
    let outcome;
    try {
      outcome = await initializeSession(route, request, caller, this.deps.connector, this.deps.dispatcher.logger);
    } catch (err) {
      return sendJson(res, 200, toErrorResponse(request.id, err, this.deps.dispatcher.logger));
    }
    if (route.ir.stateless) {
      // Upstream sessions were opened only to learn what they offer.
      await this.deps.dispatcher.end(await this.deps.dispatcher.context(route, outcome.state, caller, config.ttlMs), config.ttlMs);
      return sendJson(res, 200, { jsonrpc: '2.0', id: request.id, result: outcome.result });
    }
    const token = sealSession(outcome.state, config.keys[0]!);
    sendJson(res, 200, { jsonrpc: '2.0', id: request.id, result: outcome.result }, { [SESSION_HEADER]: token });
  }

  private stateless(req: IncomingMessage, route: RouteRuntime, config: EndpointConfig, caller: Caller): SessionContext {
    const version = req.headers[VERSION_HEADER];
    if (typeof version === 'string' && !isSupportedVersion(version)) throw new HttpError(400, `Unsupported MCP-Protocol-Version "${version}"`);
    return this.deps.dispatcher.ephemeralContext(route, caller, typeof version === 'string' ? version : LATEST_PROTOCOL_VERSION, config.ttlMs);
  }

  /**
   * Opens the caller's session token: 400 when it is missing, 404 when it is not ours (any
   * more) or belongs to another caller — a stolen session id is worth nothing without its
   * owner's credentials, and it reaches no upstream.
   */
  private session(req: IncomingMessage, route: RouteRuntime, config: EndpointConfig, caller: Caller): MaybePromise<SessionContext> {
    const version = req.headers[VERSION_HEADER];
    if (typeof version === 'string' && !isSupportedVersion(version)) {
      throw new HttpError(400, `Unsupported MCP-Protocol-Version "${version}"`);
    }
    const token = req.headers[SESSION_HEADER];
    if (typeof token !== 'string' || token.length === 0) throw new HttpError(400, 'Mcp-Session-Id header is required');
    const state = config.sessions.open(token);
    if (!state || state.route !== route.key || state.owner !== principalKey(caller.identity)) throw new HttpError(404, 'Session not found');
    return andThen(this.deps.store.lookup(state.sid), (stored) => {
      if (stored?.ended) throw new HttpError(404, 'Session not found');
      // Any version we speak is accepted, as the reference server does: clients send the
      // header inconsistently, and the session's own version governs what goes upstream.
      return this.deps.dispatcher.contextOf(route, state, caller, config.ttlMs, stored);
    });
  }

  /**
   * The session's server stream: every upstream's GET stream, merged, its events kept for
   * resumption. With Last-Event-ID it first replays what the client missed on that stream:
   * a POST's stream is replayed to its end (the response) and then closed; a server stream's
   * missed events come first, then live ones.
   */
  private async get(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller): Promise<void> {
    if (!(req.headers.accept ?? '').includes('text/event-stream')) throw new HttpError(406, 'Accept must include text/event-stream');
    const ctx = await this.session(req, route, config, caller);
    if (this.shuttingDown) throw new HttpError(503, 'the gateway is shutting down');
    // The client may have left while its session was looked up: then 'close' came already.
    if (res.destroyed) return;
    const controller = new AbortController();
    const stopped = whenAborted(controller.signal);
    res.on('close', () => controller.abort());
    this.track(ctx.sid, controller);
    // None goes on with a configuration a reload replaced (backends since removed or changed):
    // clients reopen their streams, resuming from their last event id, on the new one.
    abortWith(route.retired, controller);
    endAtExpiry(controller, caller.identity);
    const lastEventId = req.headers['last-event-id'];
    const resumesPost = typeof lastEventId === 'string' && parseEventId(lastEventId)?.stream.startsWith('p') === true;
    // An old server stream is followed only for a while: one whose replica died never finishes.
    const replay =
      typeof lastEventId === 'string'
        ? await this.deps.events.resume(ctx.sid, lastEventId, resumesPost ? controller.signal : abortsWithin(controller.signal, OLD_STREAM_FOLLOW_MS))
        : undefined;
    const sse = new SseWriter(res, {}, KEEP_ALIVE_MS, config.streamIdleTimeoutMs);
    if (replay && resumesPost) {
      for await (const e of replay) if (sse.open) sse.message(e.data, e.id);
      sse.end();
      return;
    }
    const stream = newStreamId('g');
    const relay = async (data: string): Promise<void> => {
      const eventId = await this.deps.events.append(ctx.sid, stream, data);
      if (sse.open) sse.message(data, eventId);
    };
    const followed = replay ? this.followOn(await relayMissed(replay, relay), relay) : undefined;
    // Open until the client leaves, the stream idles out or is ended (DELETE, a reload, the token's expiry),
    // without waiting for an upstream stream still being reopened; with none to follow, keep-alives alone.
    await Promise.race([this.deps.dispatcher.listen(ctx, controller.signal, relay).then(() => sse.closed), stopped]);
    sse.end();
    controller.abort();
    await followed;
    await this.deps.events.finish(ctx.sid, stream).catch(() => {});
  }

  /**
   * What a resumed server stream's old stream still gets after the missed events (its replica
   * may not have seen its client go yet) follows beside this stream's own listening, for
   * OLD_STREAM_FOLLOW_MS at most: a stream whose replica died never finishes.
   */
  private async followOn(rest: AsyncIterator<StoredEvent>, relay: (data: string) => Promise<void>): Promise<void> {
    try {
      for (let next = await rest.next(); !next.done; next = await rest.next()) await relay(next.value.data);
    } catch (err) {
      this.deps.dispatcher.logger.debug({ err }, 'stopped following a resumed stream');
    }
  }

  private async delete(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller): Promise<void> {
    const ctx = await this.session(req, route, config, caller);
    await this.deps.dispatcher.end(ctx, config.ttlMs);
    // Those on other replicas see the session ended when they next look it up (their clients' next request).
    for (const stream of this.streams.get(ctx.sid) ?? []) stream.abort();
    res.writeHead(200).end();
  }

  /** A server stream of the session, known until it ends. */
  private track(sid: string, stream: AbortController): void {
    let open = this.streams.get(sid);
    if (!open) this.streams.set(sid, (open = new Set()));
    open.add(stream);
    stream.signal.addEventListener(
      'abort',
      () => {
        open.delete(stream);
        if (open.size === 0 && this.streams.get(sid) === open) this.streams.delete(sid);
      },
      { once: true },
    );
  }
}

/**
 * A POST's answer. A reply that is just the response goes back as JSON; anything streamed
 * before it (progress, logging, server requests) makes it an SSE stream whose events are
 * kept for resumption. A batch's replies share it: its responses are events of one stream,
 * or, for a client that takes JSON only, one array.
 */
class PostReply implements ReplyOutput {
  private readonly res: ServerResponse;
  private readonly sid: string;
  private readonly events: EventStore;
  private readonly acceptsSse: boolean;
  /** A batch's responses while no stream is open (a client that takes JSON only, a batch without requests); undefined for a single request. */
  private readonly collected: string[] | undefined;
  /** Whether the POST carried a request, which is answered with a stream even when nothing is sent on it. */
  private readonly asked: boolean;
  private collectedChars = 0;
  private sse: SseWriter | undefined;
  private stream = '';

  constructor(res: ServerResponse, sid: string, events: EventStore, acceptsSse: boolean, batch?: { readonly hasRequests: boolean }) {
    this.res = res;
    this.sid = sid;
    this.events = events;
    this.acceptsSse = acceptsSse;
    this.collected = batch ? [] : undefined;
    this.asked = batch?.hasRequests ?? true;
    if (batch && acceptsSse && batch.hasRequests) this.open();
  }

  event(data: string): MaybePromise<void> {
    if (!this.acceptsSse) return;
    return this.emit(this.sse ?? this.open(), data);
  }

  /** `id`: the request a batch's response answers, so that one too large for the batch's JSON can be answered with an error instead. */
  response(raw: string, id?: JsonRpcId): MaybePromise<void> {
    if (this.sse) return this.emit(this.sse, raw);
    if (this.collected) this.collect(this.collected, raw, id);
    else if (!this.res.headersSent) sendRaw(this.res, 200, raw);
  }

  /** A batch member's output: its events and response go to the batch's answer; the batch ends it. */
  member(id: JsonRpcId): ReplyOutput {
    return { event: (data) => this.event(data), response: (raw) => this.response(raw, id), end: ignore };
  }

  private collect(collected: string[], raw: string, id: JsonRpcId | undefined): void {
    let kept = raw;
    if (id !== undefined && this.collectedChars + raw.length > MAX_BATCH_JSON_CHARS) {
      const why = `the response came to ${raw.length} characters, more than the batch's JSON answer has room for (${MAX_BATCH_JSON_CHARS} in all): accept text/event-stream, or send the request alone`;
      kept = JSON.stringify(new JsonRpcError(ErrorCode.InternalError, why).toResponse(id));
    }
    this.collectedChars += kept.length;
    collected.push(kept);
  }

  end(): MaybePromise<void> {
    if (this.sse) {
      this.sse.end();
      return this.events.finish(this.sid, this.stream).catch(ignore);
    }
    // A batch without requests has responses only for the members refused: as a single message would, it gets 400.
    if (this.collected?.length) return sendRaw(this.res, this.asked ? 200 : 400, `[${this.collected.join(',')}]`);
    if (this.res.headersSent) return;
    // Nothing to send (the client cancelled the request): a request POST is still answered with
    // a stream, one that ends at once; a client that takes JSON only gets 202, with no body.
    if (this.acceptsSse && this.asked) new SseWriter(this.res, {}).end();
    else this.res.writeHead(202).end();
  }

  private open(): SseWriter {
    this.stream = newStreamId('p');
    return (this.sse = new SseWriter(this.res, {}, KEEP_ALIVE_MS));
  }

  /** One event of the stream: kept for resumption, then sent if the client is still there. */
  private emit(sse: SseWriter, data: string): Promise<void> {
    return this.events.append(this.sid, this.stream, data).then((eventId) => {
      if (sse.open) sse.message(data, eventId);
    });
  }
}

function ignore(): void {}

/** A signal that aborts with `signal`, or after `ms` at the latest. */
function abortsWithin(signal: AbortSignal, ms: number): AbortSignal {
  const bounded = new AbortController();
  abortWith(signal, bounded);
  abortAfter(bounded, ms);
  return bounded.signal;
}

/** setTimeout's longest delay; a credential valid for longer is not timed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A server stream lasts no longer than the token it was opened with: what the session's
 * upstreams send is not for whoever held a token once. The client reopens it with a fresh one.
 */
function endAtExpiry(stream: AbortController, identity: Identity): void {
  const exp = identity.claims.exp;
  if (typeof exp !== 'number') return;
  const left = exp * 1000 - Date.now();
  if (left > MAX_TIMER_MS) return;
  abortAfter(stream, Math.max(0, left));
}

/**
 * A resumed server stream's missed events, relayed under the new stream's ids so that the
 * client's next Last-Event-ID names one stream; the rest of the replay is left to follow.
 */
async function relayMissed(replay: Replay, relay: (data: string) => Promise<void>): Promise<AsyncIterator<StoredEvent>> {
  const events = replay[Symbol.asyncIterator]();
  for (let i = 0; i < replay.backlog; i++) {
    const next = await events.next();
    if (next.done) break;
    await relay(next.value.data);
  }
  return events;
}

/** A stream id, unique within its session: "p…" for a POST's stream, "g…" for a server stream. */
function newStreamId(kind: 'p' | 'g'): string {
  return `${kind}${randomBytes(9).toString('base64url')}`;
}

function accepted(res: ServerResponse): void {
  res.writeHead(202).end();
}

/** A message without an id the gateway will not take: 400, with the JSON-RPC error (it has no id to answer). */
function refuseNotification(res: ServerResponse, err: unknown): void {
  if (!(err instanceof JsonRpcError)) throw err;
  sendJson(res, 400, err.toResponse(null));
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  sendRaw(res, status, JSON.stringify(body), headers);
}

function sendRaw(res: ServerResponse, status: number, raw: string, headers?: Record<string, string>): void {
  const head: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(raw) };
  res.writeHead(status, headers ? Object.assign(head, headers) : head);
  res.end(raw);
}
