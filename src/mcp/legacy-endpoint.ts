import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../http/body.ts';
import { clientNetwork } from '../http/client-address.ts';
import { HttpError } from '../http/errors.ts';
import { SseWriter } from '../http/sse.ts';
import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest } from '../jsonrpc/message.ts';
import { parseMessage } from '../jsonrpc/parse.ts';
import type { SessionDispatcher } from './dispatcher.ts';
import { toErrorResponse } from './relay.ts';
import { KEEP_ALIVE_MS, type EndpointConfig } from './endpoint.ts';
import { initializeSession } from './initialize.ts';
import type { RouteRuntime } from './route-runtime.ts';
import type { SessionState } from './session-token.ts';
import type { Caller } from '../security/caller.ts';
import { principalKey } from '../security/identity.ts';
import type { UpstreamConnector } from './upstream/connector.ts';
import { whenAborted } from '../util/abort.ts';

interface LegacySession {
  readonly route: RouteRuntime;
  /** Whoever opened the stream; every POST must come with the same credentials. */
  readonly caller: Caller;
  readonly sse: SseWriter;
  readonly closed: AbortController;
  state: SessionState | undefined;
  /** An initialize is under way or done: a session is initialized once. */
  initializing: boolean;
}

/** Open legacy connections a gateway accepts at most: each holds a stream and upstream sessions. */
const MAX_LEGACY_SESSIONS = 1_000;
/** Open legacy connections one caller may hold, so that no caller takes all of them. */
export const MAX_LEGACY_SESSIONS_PER_CALLER = 100;

/**
 * The legacy HTTP+SSE transport (MCP 2024-11-05) for old clients, on the same federation:
 * GET `<path>/sse` opens the stream and names the message endpoint; POSTs to
 * `<path>/message?sessionId=…` are accepted with 202 and answered on the stream. The
 * stream is the session, so it lives in this process and ends when the stream closes.
 */
export class LegacySseEndpoint {
  private readonly dispatcher: SessionDispatcher;
  private readonly connector: UpstreamConnector;
  private readonly sessions = new Map<string, LegacySession>();
  /** Open sessions by holder (see holderOf). */
  private readonly held = new Map<string, number>();

  constructor(dispatcher: SessionDispatcher, connector: UpstreamConnector) {
    this.dispatcher = dispatcher;
    this.connector = connector;
  }

  closeStreams(): void {
    for (const s of this.sessions.values()) s.closed.abort();
  }

  async open(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller): Promise<void> {
    if (req.method !== 'GET') throw new HttpError(405, 'the SSE endpoint takes GET', { allow: 'GET' });
    if (this.sessions.size >= MAX_LEGACY_SESSIONS) throw new HttpError(503, 'too many open SSE sessions');
    const holder = holderOf(caller);
    const holding = this.held.get(holder) ?? 0;
    if (holding >= MAX_LEGACY_SESSIONS_PER_CALLER) throw new HttpError(429, `too many open SSE sessions for this caller (at most ${MAX_LEGACY_SESSIONS_PER_CALLER})`);
    const id = randomBytes(16).toString('base64url');
    const session: LegacySession = { route, caller, sse: new SseWriter(res, {}, KEEP_ALIVE_MS, config.streamIdleTimeoutMs), closed: new AbortController(), state: undefined, initializing: false };
    this.held.set(holder, holding + 1);
    this.sessions.set(id, session);
    try {
      void session.sse.closed.then(() => session.closed.abort());
      res.write(`event: endpoint\ndata: ${route.ir.path}/message?sessionId=${id}\n\n`);
      await whenAborted(session.closed.signal);
    } finally {
      this.sessions.delete(id);
      this.release(holder);
      session.sse.end();
    }
    if (session.state) await this.dispatcher.end(await this.dispatcher.context(route, session.state, caller, config.ttlMs), config.ttlMs);
  }

  private release(holder: string): void {
    const left = this.held.get(holder)! - 1;
    if (left === 0) this.held.delete(holder);
    else this.held.set(holder, left);
  }

  async message(req: IncomingMessage, res: ServerResponse, route: RouteRuntime, config: EndpointConfig, caller: Caller): Promise<void> {
    if (req.method !== 'POST') throw new HttpError(405, 'the message endpoint takes POST', { allow: 'POST' });
    const id = new URL(req.url ?? '/', 'http://gateway').searchParams.get('sessionId') ?? '';
    const session = this.sessions.get(id);
    if (!session || session.route.key !== route.key || principalKey(session.caller.identity) !== principalKey(caller.identity)) throw new HttpError(404, 'Session not found');
    const text = await readBody(req, config.maxBodyBytes);
    let message: JsonRpcMessage;
    try {
      message = parseMessage(text);
    } catch (err) {
      throw new HttpError(400, (err as JsonRpcError).message);
    }
    res.writeHead(202).end('Accepted');
    this.handle(session, caller, message, config).catch((err: unknown) => this.dispatcher.logger.error({ err }, 'legacy SSE message failed'));
  }

  /** `caller`: who sent this message; policies and credentials go by it, not by whoever opened the stream (the same principal, maybe with other claims now). */
  private async handle(session: LegacySession, caller: Caller, message: JsonRpcMessage, config: EndpointConfig): Promise<void> {
    const send = (data: string): void => {
      if (session.sse.open) session.sse.message(data);
    };
    const refuse = (id: JsonRpcId, why: string): void => send(JSON.stringify(new JsonRpcError(ErrorCode.InvalidRequest, why).toResponse(id)));
    if ('method' in message && message.method === 'initialize' && 'id' in message) {
      // A second initialize would open a second set of upstream sessions, only the last of which the stream's end would close.
      if (session.initializing) return refuse(message.id, 'the session is initialized already');
      session.initializing = true;
      try {
        const outcome = await initializeSession(session.route, message as JsonRpcRequest, caller, this.connector, this.dispatcher.logger);
        const ctx = await this.dispatcher.context(session.route, outcome.state, caller, config.ttlMs);
        // The stream closed meanwhile, and with it the session: what was opened for it ends now.
        if (session.closed.signal.aborted) return await this.dispatcher.end(ctx, config.ttlMs);
        session.state = outcome.state;
        send(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: outcome.result }));
        void this.dispatcher.listen(ctx, session.closed.signal, send);
      } catch (err) {
        session.initializing = false;
        send(JSON.stringify(toErrorResponse(message.id, err, this.dispatcher.logger)));
      }
      return;
    }
    if (!session.state) {
      if ('id' in message && 'method' in message) refuse(message.id, 'initialize first');
      return;
    }
    const ctx = await this.dispatcher.context(session.route, session.state, caller, config.ttlMs);
    if (!('method' in message)) return this.dispatcher.answerUpstream(ctx, message);
    if (!('id' in message)) return this.dispatcher.notify(ctx, message);
    await this.dispatcher.request(ctx, message, { event: send, response: send, end() {} });
  }
}

/** Who holds a legacy session, for the per-caller cap: the principal, or for anonymous callers their network (see clientNetwork). */
function holderOf(caller: Caller): string {
  const principal = principalKey(caller.identity);
  return principal === 'anonymous' ? `network ${clientNetwork(caller.identity.address)}` : principal;
}
