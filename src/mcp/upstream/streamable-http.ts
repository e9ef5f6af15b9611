import { PreparedHeaders, type ClientRequest } from '../../http/client/pool.ts';
import { isRequest, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from '../../jsonrpc/message.ts';
import type { RemoteBackendIR } from '../../ir/types.ts';
import { isSafeMethod } from '../safe-methods.ts';
import { HttpReply, type ExchangeKind } from './http-reply.ts';
import type { OriginPools } from './http-pools.ts';
import { responseTo } from './responses.ts';
import { UpstreamError, type Inbound, type ReplyControl, type ReplySink, type UpstreamSession } from './types.ts';

const ACCEPT_BOTH = 'application/json, text/event-stream';
/** Upstream session ids are echoed back in a header: only visible ASCII, and not too long. */
const VALID_SESSION_ID = /^[\x21-\x7e]{1,1024}$/;

export interface HttpSessionInit {
  readonly backend: RemoteBackendIR;
  readonly pools: OriginPools;
  readonly sessionId: string | null;
  readonly protocolVersion: string;
  readonly maxMessageBytes: number;
  /** Per-caller headers on top of the backend's own (a passed-through token). */
  readonly callerHeaders?: Record<string, string> | undefined;
}

/**
 * An upstream session over MCP streamable HTTP. It holds no connection of its own: it is
 * rebuilt from the session token, on any replica, and nothing in it changes once built.
 */
export class StreamableHttpSession implements UpstreamSession {
  readonly backend: string;
  private readonly init: HttpSessionInit;
  private readonly path: string;
  /** Every POST carries them; prepared once for the POSTs that carry nothing else. */
  private readonly postHeaders: Record<string, string>;
  private readonly preparedPostHeaders: PreparedHeaders;

  constructor(init: HttpSessionInit) {
    this.init = init;
    this.backend = init.backend.name;
    this.path = init.backend.path;
    const headers: Record<string, string> = { ...init.backend.headers, ...init.callerHeaders, 'mcp-protocol-version': init.protocolVersion };
    if (init.sessionId) headers['mcp-session-id'] = init.sessionId;
    headers['content-type'] = 'application/json';
    headers.accept = ACCEPT_BOTH;
    this.postHeaders = headers;
    this.preparedPostHeaders = new PreparedHeaders(headers);
  }

  /** Whether it was built for this configuration of its backend (a reload makes a new one). */
  servesAs(backend: RemoteBackendIR): boolean {
    return this.init.backend === backend;
  }

  /** The headers of a GET or DELETE: those of a POST without its body's. */
  private get baseHeaders(): Record<string, string> {
    const { 'content-type': _type, accept: _accept, ...base } = this.postHeaders;
    return base;
  }

  get sessionId(): string | null {
    return this.init.sessionId;
  }

  request(request: JsonRpcRequest, sink: ReplySink, signal?: AbortSignal, headers?: Record<string, string>): ReplyControl {
    // The upstream may still be working on it when the timeout strikes: tell it to stop.
    const cancel = (): void => {
      this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: request.id, reason: 'timeout' } }).catch(ignore);
    };
    return this.post(request, sink, signal, headers, cancel);
  }

  send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    return new Promise((resolve, reject) => {
      this.post(message, { message: ignore, end: resolve, fail: reject });
    });
  }

  listen(sink: ReplySink, signal: AbortSignal): ReplyControl {
    return this.exchange({ method: 'GET', path: this.path, headers: { ...this.baseHeaders, accept: 'text/event-stream' }, replayable: true }, 'listen', sink, signal);
  }

  async end(): Promise<void> {
    if (!this.init.sessionId) return;
    // The upstream forgets the session on its own when unreachable or when it refuses: nothing is lost.
    await new Promise<void>((done) => {
      this.exchange({ method: 'DELETE', path: this.path, headers: this.baseHeaders, replayable: true }, 'message', { message: ignore, end: done, fail: () => done() });
    });
  }

  /** Sends initialize without a session and returns the issued session id with the result. */
  static async initialize(
    backend: RemoteBackendIR,
    pools: OriginPools,
    request: JsonRpcRequest,
    maxMessageBytes: number,
    callerHeaders?: Record<string, string>,
  ): Promise<{ sessionId: string | null; response: Inbound }> {
    const bare = new StreamableHttpSession({ backend, pools, sessionId: null, protocolVersion: String(request.params?.protocolVersion ?? ''), maxMessageBytes, callerHeaders });
    let reply: HttpReply | undefined;
    let sessionId: string | null;
    let response: Inbound;
    try {
      response = await responseTo(backend.name, request, (sink) => (reply = bare.post(request, sink)));
    } finally {
      // A session id the gateway could never send back is the first thing wrong, whatever the body said.
      sessionId = issuedSessionId(backend.name, reply!);
    }
    return { sessionId, response };
  }

  private post(message: JsonRpcMessage, sink: ReplySink, signal?: AbortSignal, extraHeaders?: Record<string, string>, onTimeout?: () => void): HttpReply {
    const headers = extraHeaders ? { ...extraHeaders, ...this.postHeaders } : this.preparedPostHeaders;
    const request = isRequest(message);
    // In a session, a repeat that reaches a restarted server is refused as an expired session, and recovery judges it.
    const replayable = this.init.sessionId !== null || (request && (message.method === 'initialize' || isSafeMethod(message.method)));
    return this.exchange({ method: 'POST', path: this.path, headers, body: JSON.stringify(message), replayable }, request ? 'request' : 'message', sink, signal, onTimeout);
  }

  private exchange(request: ClientRequest, kind: ExchangeKind, sink: ReplySink, signal?: AbortSignal, onTimeout?: () => void): HttpReply {
    const { backend, maxMessageBytes, sessionId } = this.init;
    const pool = kind === 'listen' ? this.init.pools.streams : this.init.pools.requests;
    return new HttpReply(pool, request, { backend: this.backend, kind, timeoutMs: backend.timeoutMs, maxMessageBytes, inSession: sessionId !== null, signal, onTimeout }, sink);
  }
}

function issuedSessionId(backend: string, reply: HttpReply): string | null {
  const header = reply.headers['mcp-session-id'];
  if (typeof header !== 'string') return null;
  if (!VALID_SESSION_ID.test(header)) throw new UpstreamError(backend, 'protocol', 'session id is not 1 to 1024 visible ASCII characters');
  return header;
}

function ignore(): void {}
