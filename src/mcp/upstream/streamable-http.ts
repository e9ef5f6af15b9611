import type { Dispatcher, Pool } from 'undici';
import { parseMessage } from '../../jsonrpc/parse.ts';
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';
import type { RemoteBackendIR } from '../../ir/types.ts';
import { dispatch, DispatchTimeout, type UpstreamResponse } from './dispatch.ts';
import { LazyReply, ReadyReply } from './replies.ts';
import { readSseMessages } from './sse-reader.ts';
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
    return new LazyReply(
      () => this.post(request, signal, headers).then((res) => this.replies(res)),
      (err) => {
        const failure = this.asUpstreamError(err);
        // The upstream may still be working on it: tell it to stop.
        if (failure.kind === 'timeout') {
          this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: request.id, reason: 'timeout' } }).catch(() => {});
        }
        return failure;
      },
    );
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    const res = await this.post(message);
    if (res.status === 202 || res.status === 200) {
      await res.body.return?.();
      return;
    }
    throw await this.failure(res);
  }

  async *listen(signal: AbortSignal): AsyncIterableIterator<Inbound> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.init.pool.request({
        method: 'GET',
        path: this.path,
        headers: { ...this.baseHeaders, accept: 'text/event-stream' },
        signal,
        bodyTimeout: 0,
      });
    } catch (err) {
      throw new UpstreamError(this.backend, 'unavailable', (err as Error).message, { cause: err });
    }
    if (res.statusCode === 405) {
      await res.body.dump();
      return;
    }
    if (res.statusCode !== 200) throw await this.failure({ status: res.statusCode, headers: res.headers, body: res.body[Symbol.asyncIterator]() });
    for await (const m of readSseMessages(res.body, this.init.maxMessageBytes)) yield m;
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
    const res = await bare.post(request);
    const header = res.headers['mcp-session-id'];
    const sessionId = typeof header === 'string' ? header : null;
    if (sessionId !== null && !VALID_SESSION_ID.test(sessionId)) {
      await res.body.return?.();
      throw new UpstreamError(backend.name, 'protocol', 'session id is not 1 to 1024 visible ASCII characters');
    }
    try {
      for await (const inbound of await bare.replies(res)) {
        if (isResponseTo(inbound.message, request.id)) return { sessionId, response: inbound };
      }
    } catch (err) {
      throw bare.asUpstreamError(err);
    }
    throw new UpstreamError(backend.name, 'protocol', 'no response to initialize');
  }

  private async post(message: JsonRpcMessage, signal?: AbortSignal, extraHeaders?: Record<string, string>): Promise<UpstreamResponse> {
    try {
      return await dispatch(
        this.init.pool,
        { method: 'POST', path: this.path, headers: extraHeaders ? { ...extraHeaders, ...this.postHeaders } : this.postHeaders, body: JSON.stringify(message) },
        this.init.backend.timeoutMs,
        signal,
      );
    } catch (err) {
      throw new UpstreamError(this.backend, err instanceof DispatchTimeout ? 'timeout' : 'unavailable', (err as Error).message, { cause: err });
    }
  }

  /** The messages of a reply: an SSE stream read as it arrives, or one JSON body. */
  private async replies(res: UpstreamResponse): Promise<AsyncIterableIterator<Inbound>> {
    if (res.status === 202) {
      await res.body.return?.();
      return new ReadyReply([]);
    }
    if (res.status !== 200) throw await this.failure(res);
    const type = String(res.headers['content-type'] ?? '');
    if (type.startsWith('text/event-stream')) return readSseMessages(res.body, this.init.maxMessageBytes);
    if (type.startsWith('application/json')) {
      try {
        const raw = await readBounded(res.body, this.init.maxMessageBytes);
        return new ReadyReply([{ message: parseMessage(raw), raw }]);
      } catch (err) {
        await res.body.return?.();
        throw err;
      }
    }
    await res.body.return?.();
    throw new UpstreamError(this.backend, 'protocol', `unexpected content-type "${type}"`);
  }

  /** What reading a reply failed with, as the upstream's failure. */
  private asUpstreamError(err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    return new UpstreamError(this.backend, err instanceof DispatchTimeout ? 'timeout' : 'protocol', (err as Error).message, { cause: err });
  }

  private async failure(res: UpstreamResponse): Promise<UpstreamError> {
    const text = (await readBounded(res.body, 4096).catch(() => '')).slice(0, 300);
    if ((res.status === 404 || res.status === 400) && this.init.sessionId) {
      return new UpstreamError(this.backend, 'expired', `HTTP ${res.status} for session`);
    }
    return new UpstreamError(this.backend, 'unavailable', `HTTP ${res.status}${text ? `: ${text}` : ''}`);
  }
}

function isResponseTo(message: JsonRpcMessage, id: unknown): boolean {
  return !('method' in message) && message.id === id;
}

async function readBounded(body: AsyncIterable<Buffer | Uint8Array>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error(`response body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
