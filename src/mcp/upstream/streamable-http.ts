import type { Dispatcher, Pool } from 'undici';
import { isRequest, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from '../../jsonrpc/message.ts';
import type { RemoteBackendIR } from '../../ir/types.ts';
import { HttpReply, type ExchangeKind } from './http-reply.ts';
import { UpstreamError, type Inbound, type UpstreamSession } from './types.ts';

const ACCEPT_BOTH = 'application/json, text/event-stream';
/** Upstream session ids are echoed back in a header: only visible ASCII, and not too long. */
const VALID_SESSION_ID = /^[\x21-\x7e]{1,1024}$/;

export interface HttpSessionInit {
  readonly backend: RemoteBackendIR;
  readonly pool: Pool;
  readonly sessionId: string | null;
  readonly protocolVersion: string;
  readonly maxMessageBytes: number;
  /** Per-caller headers on top of the backend's own (a passed-through token). */
  readonly callerHeaders?: Record<string, string> | undefined;
}

/**
 * An upstream session over MCP streamable HTTP. It holds no connection of its own: it is
 * rebuilt from the session token on every request, on any replica.
 */
export class StreamableHttpSession implements UpstreamSession {
  readonly backend: string;
  private readonly init: HttpSessionInit;
  private readonly path: string;
  /** Built once per request's session object: every POST carries them. */
  private readonly postHeaders: Record<string, string>;

  constructor(init: HttpSessionInit) {
    this.init = init;
    this.backend = init.backend.name;
    this.path = init.backend.path;
    const headers: Record<string, string> = { ...init.backend.headers, ...init.callerHeaders, 'mcp-protocol-version': init.protocolVersion };
    if (init.sessionId) headers['mcp-session-id'] = init.sessionId;
    headers['content-type'] = 'application/json';
    headers.accept = ACCEPT_BOTH;
    this.postHeaders = headers;
  }

  /** The headers of a GET or DELETE: those of a POST without its body's. */
  private get baseHeaders(): Record<string, string> {
    const { 'content-type': _type, accept: _accept, ...base } = this.postHeaders;
    return base;
  }

  get sessionId(): string | null {
    return this.init.sessionId;
  }

  request(request: JsonRpcRequest, signal?: AbortSignal, headers?: Record<string, string>): AsyncIterableIterator<Inbound> {
    // The upstream may still be working on it when the timeout strikes: tell it to stop.
    const cancel = (): void => {
      this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: request.id, reason: 'timeout' } }).catch(() => {});
    };
    return this.post(request, signal, headers, cancel);
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    const reply = this.post(message);
    await reply.opened();
    await reply.return();
  }

  listen(signal: AbortSignal): AsyncIterableIterator<Inbound> {
    return this.exchange({ method: 'GET', path: this.path, headers: { ...this.baseHeaders, accept: 'text/event-stream' } }, 'listen', signal);
  }

  async end(): Promise<void> {
    if (!this.init.sessionId) return;
    try {
      const res = await this.init.pool.request({ method: 'DELETE', path: this.path, headers: this.baseHeaders, headersTimeout: this.init.backend.timeoutMs });
      await res.body.dump();
    } catch {
      // The upstream forgets the session on its own when unreachable; nothing is lost.
    }
  }

  /** Sends initialize without a session and returns the issued session id with the result. */
  static async initialize(
    backend: RemoteBackendIR,
    pool: Pool,
    request: JsonRpcRequest,
    maxMessageBytes: number,
    callerHeaders?: Record<string, string>,
  ): Promise<{ sessionId: string | null; response: Inbound }> {
    const bare = new StreamableHttpSession({ backend, pool, sessionId: null, protocolVersion: String(request.params?.protocolVersion ?? ''), maxMessageBytes, callerHeaders });
    const reply = bare.post(request);
    try {
      await reply.opened();
      const header = reply.headers['mcp-session-id'];
      const sessionId = typeof header === 'string' ? header : null;
      if (sessionId !== null && !VALID_SESSION_ID.test(sessionId)) {
        throw new UpstreamError(backend.name, 'protocol', 'session id is not 1 to 1024 visible ASCII characters');
      }
      for await (const inbound of reply) {
        if (isResponseTo(inbound.message, request.id)) return { sessionId, response: inbound };
      }
    } finally {
      await reply.return();
    }
    throw new UpstreamError(backend.name, 'protocol', 'no response to initialize');
  }

  private post(message: JsonRpcMessage, signal?: AbortSignal, extraHeaders?: Record<string, string>, onTimeout?: () => void): HttpReply {
    const headers = extraHeaders ? { ...extraHeaders, ...this.postHeaders } : this.postHeaders;
    return this.exchange({ method: 'POST', path: this.path, headers, body: JSON.stringify(message) }, isRequest(message) ? 'request' : 'message', signal, onTimeout);
  }

  private exchange(request: Dispatcher.DispatchOptions, kind: ExchangeKind, signal?: AbortSignal, onTimeout?: () => void): HttpReply {
    const { backend, maxMessageBytes, sessionId } = this.init;
    return new HttpReply(this.init.pool, request, { backend: this.backend, kind, timeoutMs: backend.timeoutMs, maxMessageBytes, inSession: sessionId !== null, signal, onTimeout });
  }
}

function isResponseTo(message: JsonRpcMessage, id: unknown): boolean {
  return !('method' in message) && message.id === id;
}
