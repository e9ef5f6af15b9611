import type { IncomingHttpHeaders } from 'node:http';
import type { ClientExchange, ClientRequest, HttpClientPool, ResponseHandler } from '../../http/client/pool.ts';
import { parseMessage } from '../../jsonrpc/parse.ts';
import { SseDecoder, type SseEvent } from './sse-reader.ts';
import { UpstreamError, type Inbound, type ReplyControl, type ReplySink } from './types.ts';

/** What may still follow a reply we stopped reading, before the connection is given up instead. */
const MAX_DISCARD_BYTES = 64 * 1024;
/**
 * How long after the consumer's stop the rest of a reply may still be arriving: the bytes of a
 * finite body in flight, not a stream that goes on (heartbeats), which would hold its pooled
 * connection for as long as it liked.
 */
const DRAIN_MS = 1_000;
/** How much of a failed response's body is kept to explain the failure. */
const FAILURE_TEXT_BYTES = 4096;

/**
 * What the exchange carries, and so which answers mean "no messages":
 * - `request`: a POST of a request, answered with its messages (202: none);
 * - `message`: a POST of a notification or a response (or a DELETE of the session),
 *   acknowledged by 202 or any other 2xx, whatever its body: nothing in it is read;
 * - `listen`: the GET of the session's server stream, which may idle as long as it likes once
 *   it is open (405, the upstream offers none, fails as `unsupported`).
 */
export type ExchangeKind = 'request' | 'message' | 'listen';

export interface HttpReplyOptions {
  readonly backend: string;
  readonly kind: ExchangeKind;
  /**
   * How long the response may take to start, counted from the dispatch (time queued for a
   * pooled connection included), and then each chunk of its body; an open server stream's
   * body is not timed. 0: no limit.
   */
  readonly timeoutMs: number;
  readonly maxMessageBytes: number;
  /** The request named an upstream session: a 404 or 400 then says that session is gone. */
  readonly inSession: boolean;
  /** The caller's: aborting it aborts the exchange. */
  readonly signal?: AbortSignal | undefined;
  /** The timeout struck while someone still waited for the reply (e.g. to tell the upstream to stop). */
  readonly onTimeout?: (() => void) | undefined;
}

type Mode =
  /** No response yet. */
  | 'waiting'
  | 'sse'
  | 'json'
  /** A status other than 200: the body is the failure's explanation. */
  | 'failure-text'
  /** Nobody wants the rest of the body: it is counted and dropped. */
  | 'discarding';

/**
 * One HTTP exchange with an MCP upstream, and the JSON-RPC messages of its reply. The
 * object is the HTTP client's response handler itself: the reply is decoded in its callbacks as
 * its bytes arrive (an SSE stream event by event, a JSON body once whole, the empty status
 * as no messages, any other status as the upstream's failure) and each message is handed to
 * the sink there and then. Every forwarded request goes through one of these, so there is
 * nothing between the socket and the consumer: no stream, no queue, no promise per message.
 *
 * A consumer may stop early (the response it waited for arrived): the rest is then read and
 * discarded, so the keep-alive connection goes back to the pool instead of being destroyed,
 * within bounds: 64 KiB, a second after the stop for bytes that keep coming, and the timeout
 * (which discarded bytes do not re-arm) for a stream that goes quiet without ending. A consumer that falls behind pauses the exchange, which stops reading the
 * socket.
 *
 * The timeout is a native timer of the exchange's own, re-armed on every chunk and cleared
 * when it ends. The listener on the caller's signal goes when the exchange ends: it holds
 * the reply, and the signal outlives the exchange.
 */
export class HttpReply implements ReplyControl, ResponseHandler {
  status = 0;
  headers: IncomingHttpHeaders = {};
  private readonly options: HttpReplyOptions;
  private readonly sink: ReplySink;
  /** Undefined when the caller's signal had aborted before anything was sent. */
  private readonly exchange: ClientExchange | undefined;
  private timer: NodeJS.Timeout | undefined;
  private onAbort: (() => void) | undefined;
  private mode: Mode = 'waiting';
  private decoder: SseDecoder | undefined;
  /** A JSON body or a failure's text, as it arrives. */
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** When the consumer stopped a reply still arriving (performance.now()). */
  private stoppedAt = 0;
  /** The sink was told the reply ended or failed: it hears nothing more. */
  private settled = false;
  /** The consumer called stop(): it hears nothing more. */
  private stopped = false;
  /** The exchange has ended, one way or another. */
  private over = false;

  constructor(pool: HttpClientPool, request: ClientRequest, options: HttpReplyOptions, sink: ReplySink) {
    this.options = options;
    this.sink = sink;
    const { timeoutMs, signal } = options;
    if (signal?.aborted) {
      this.over = true;
      this.fail(this.error('unavailable', abortReason(signal).message));
      return;
    }
    // Armed now, not once a connection takes the request: a request queued for a busy pool waits too.
    if (timeoutMs > 0) this.timer = setTimeout(() => this.timedOut(), timeoutMs);
    if (signal) {
      this.onAbort = aborter(this, signal);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.exchange = pool.dispatch(request, this);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.over) return;
    this.stoppedAt = performance.now();
    // A stream that may never end is not worth draining.
    if (this.options.kind === 'listen') this.abort(new Error('the reader stopped'));
    else if (this.mode !== 'waiting') this.mode = 'discarding';
    this.resume();
  }

  pause(): void {
    // What follows a stop is drained, never held: a paused drain would keep its connection until the timeout.
    if (this.stopped || this.over) return;
    this.exchange?.pause();
  }

  resume(): void {
    this.exchange?.resume();
  }

  /** Ends the exchange (the caller's signal, the timeout); the sink hears of it through onResponseError. */
  abort(reason: Error): void {
    this.exchange?.abort(reason);
  }

  onResponseStart(status: number, headers: IncomingHttpHeaders): void {
    this.status = status;
    this.headers = headers;
    this.timer?.refresh();
    if (this.stopped) {
      this.mode = 'discarding';
      return;
    }
    if (this.isEmpty(status)) {
      this.mode = 'discarding';
      this.end();
    } else if (status !== 200) {
      this.mode = 'failure-text';
    } else {
      const type = String(headers['content-type'] ?? '');
      if (type.startsWith('text/event-stream')) {
        this.mode = 'sse';
        this.decoder = new SseDecoder(this.options.maxMessageBytes, (e) => this.event(e));
        if (this.options.kind === 'listen') this.untime();
      } else if (type.startsWith('application/json')) {
        this.mode = 'json';
      } else {
        this.mode = 'discarding';
        this.fail(this.error('protocol', `unexpected content-type "${type}"`));
      }
    }
  }

  onResponseData(chunk: Buffer): void {
    // Only bytes someone waits for re-arm the timeout: a discarded rest must end within it.
    if (this.mode !== 'discarding') this.timer?.refresh();
    switch (this.mode) {
      case 'sse':
        try {
          this.decoder!.feed(chunk);
        } catch (err) {
          this.giveUp(this.error('protocol', (err as Error).message, err));
        }
        return;
      case 'json':
        if (this.bytes + chunk.length > this.options.maxMessageBytes) {
          return this.giveUp(this.error('protocol', `response body larger than ${this.options.maxMessageBytes} bytes`));
        }
        this.keep(chunk);
        return;
      case 'failure-text':
        this.keep(chunk);
        // Enough to explain the failure: the consumer learns it now, and the rest is discarded.
        if (this.bytes >= FAILURE_TEXT_BYTES) {
          this.fail(this.statusFailure());
          this.mode = 'discarding';
        }
        return;
      default:
        this.bytes += chunk.length;
        if (this.bytes > MAX_DISCARD_BYTES || (this.stopped && performance.now() - this.stoppedAt > DRAIN_MS)) this.abort(new Error('upstream kept sending after its response'));
    }
  }

  onResponseEnd(): void {
    this.release();
    try {
      if (this.mode === 'sse') this.decoder!.end();
      else if (this.mode === 'json') {
        const raw = this.text();
        this.deliver({ message: parseMessage(raw), raw });
      } else if (this.mode === 'failure-text') return this.fail(this.statusFailure());
    } catch (err) {
      return this.fail(this.error('protocol', (err as Error).message, err));
    }
    this.end();
  }

  onResponseError(error: Error): void {
    this.release();
    if (error instanceof UpstreamError) return this.fail(error);
    switch (this.mode) {
      case 'waiting':
        return this.fail(this.error('unavailable', error.message, error));
      case 'failure-text':
        return this.fail(this.statusFailure());
      default:
        return this.fail(this.error('protocol', error.message, error));
    }
  }

  private event(e: SseEvent): void {
    if ((e.event !== undefined && e.event !== 'message') || e.data.length === 0 || this.stopped) return;
    this.deliver({ message: parseMessage(e.data), raw: e.data });
  }

  private deliver(inbound: Inbound): void {
    if (!this.stopped && !this.settled) this.sink.message(inbound);
  }

  /** No more messages: the consumer learns that the reply is over. */
  private end(): void {
    if (this.settled) return;
    this.settled = true;
    if (!this.stopped) this.sink.end();
  }

  /** The messages delivered so far stand; then the failure. */
  private fail(failure: UpstreamError): void {
    if (this.settled) return;
    this.settled = true;
    if (!this.stopped) this.sink.fail(failure);
  }

  private giveUp(failure: UpstreamError): void {
    this.fail(failure);
    this.mode = 'discarding';
    this.abort(failure);
  }

  private isEmpty(status: number): boolean {
    switch (this.options.kind) {
      case 'request':
        return status === 202;
      case 'message':
        return status >= 200 && status < 300;
      case 'listen':
        return false;
    }
  }

  private timedOut(): void {
    const phase = this.mode === 'waiting' ? `no response within ${this.options.timeoutMs} ms` : `the response stalled for ${this.options.timeoutMs} ms`;
    if (!this.stopped && !this.settled) this.options.onTimeout?.();
    this.abort(this.error('timeout', phase));
  }

  /** An open server stream may idle as long as it likes. */
  private untime(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The exchange is over: its timer and its listener on the caller's signal go. */
  private release(): void {
    this.over = true;
    this.untime();
    if (this.onAbort) this.options.signal!.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
  }

  private keep(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  private text(): string {
    const text = this.chunks.length === 1 ? this.chunks[0]!.toString('utf8') : Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    return text;
  }

  private statusFailure(): UpstreamError {
    if (this.status === 405 && this.options.kind === 'listen') return this.error('unsupported', 'HTTP 405: no server stream');
    if ((this.status === 404 || this.status === 400) && this.options.inSession) return this.error('expired', `HTTP ${this.status} for session`);
    const text = this.text().slice(0, 300);
    return this.error('unavailable', `HTTP ${this.status}${text ? `: ${text}` : ''}`);
  }

  private error(kind: UpstreamError['kind'], detail: string, cause?: unknown): UpstreamError {
    return new UpstreamError(this.options.backend, kind, detail, cause === undefined ? undefined : { cause });
  }
}

/**
 * The listener on the caller's signal, made out here so that its closure holds the reply and
 * the signal only, and goes when the exchange ends. Made inside a method, it would share that
 * method's context with the method's other closures: something old holding one of them kept
 * whole replies alive across scavenges. Measured: promoted bytes per run 10 → 100–200 MiB, GC
 * pauses per call 5 → 12 µs.
 */
function aborter(reply: HttpReply, signal: AbortSignal): () => void {
  return () => reply.abort(abortReason(signal));
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('request aborted');
}
