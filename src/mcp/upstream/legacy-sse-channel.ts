import type { IncomingHttpHeaders } from 'node:http';
import type { ClientExchange, ResponseHandler } from '../../http/client/pool.ts';
import type { RemoteBackendIR } from '../../ir/types.ts';
import type { ChannelReceiver, MessageChannel } from './channel.ts';
import { HttpReply } from './http-reply.ts';
import type { OriginPools } from './http-pools.ts';
import { SseDecoder, type SseEvent } from './sse-reader.ts';
import { UpstreamError } from './types.ts';

/**
 * The legacy HTTP+SSE transport (MCP 2024-11-05): a GET opens an event stream whose first
 * "endpoint" event names where to POST; replies arrive as "message" events on the stream.
 * The channel is the stream's response handler: events are decoded as the bytes arrive.
 */
export class LegacySseChannel implements MessageChannel, ResponseHandler {
  private readonly backend: RemoteBackendIR;
  private readonly pools: OriginPools;
  private readonly maxMessageBytes: number;
  private readonly headers: Record<string, string>;
  private stream: ClientExchange | undefined;
  private decoder: SseDecoder | undefined;
  /** Until the endpoint event: whoever waits for the channel to open. */
  private opening: { resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;
  private postPath: string | undefined;
  private receiver: ChannelReceiver | undefined;
  /** Why the stream ended; the channel is closed for good. */
  private ended: Error | undefined;

  private constructor(backend: RemoteBackendIR, pools: OriginPools, maxMessageBytes: number, callerHeaders: Record<string, string> | undefined) {
    this.backend = backend;
    this.pools = pools;
    this.maxMessageBytes = maxMessageBytes;
    this.headers = { ...backend.headers, ...callerHeaders };
  }

  /** Opens the event stream and waits for the endpoint event (bounded by the backend timeout). */
  static async connect(backend: RemoteBackendIR, pools: OriginPools, maxMessageBytes: number, callerHeaders?: Record<string, string>): Promise<LegacySseChannel> {
    const channel = new LegacySseChannel(backend, pools, maxMessageBytes, callerHeaders);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => channel.shut(channel.error('timeout', `no endpoint event within ${backend.timeoutMs} ms`)), backend.timeoutMs);
      channel.opening = { resolve, reject, timer };
      channel.stream = pools.streams.dispatch({ method: 'GET', path: backend.path, headers: { ...channel.headers, accept: 'text/event-stream' }, replayable: true }, channel);
    });
    return channel;
  }

  attach(receiver: ChannelReceiver): void {
    this.receiver = receiver;
  }

  send(raw: string): Promise<void> {
    if (!this.postPath || this.ended) return Promise.reject(this.error('expired', 'SSE stream is closed'));
    const { name, timeoutMs } = this.backend;
    return new Promise((resolve, reject) => {
      const request = { method: 'POST', path: this.postPath!, headers: { ...this.headers, 'content-type': 'application/json' }, body: raw, replayable: true } as const;
      new HttpReply(this.pools.requests, request, { backend: name, kind: 'message', timeoutMs, maxMessageBytes: this.maxMessageBytes, inSession: true }, { message: ignore, end: resolve, fail: reject });
    });
  }

  async close(): Promise<void> {
    this.shut(new Error('the channel was closed'));
  }

  onResponseStart(status: number, headers: IncomingHttpHeaders): void {
    if (status !== 200) return this.shut(this.error('unavailable', `HTTP ${status} opening the SSE stream`));
    if (!String(headers['content-type'] ?? '').startsWith('text/event-stream')) return this.shut(this.error('protocol', 'the stream is not text/event-stream'));
    this.decoder = new SseDecoder(this.maxMessageBytes, (e) => this.event(e));
  }

  onResponseData(chunk: Buffer): void {
    try {
      this.decoder?.feed(chunk);
    } catch (err) {
      this.shut(this.error('protocol', (err as Error).message, err));
    }
  }

  onResponseEnd(): void {
    try {
      this.decoder?.end();
    } catch (err) {
      return this.shut(this.error('protocol', (err as Error).message, err));
    }
    this.shut(this.opening ? this.error('protocol', 'SSE stream ended before the endpoint event') : new Error('SSE stream ended'));
  }

  onResponseError(error: Error): void {
    this.shut(error instanceof UpstreamError ? error : this.error('unavailable', error.message, error));
  }

  private event(e: SseEvent): void {
    if (this.opening) {
      if (e.event !== 'endpoint') return;
      try {
        this.postPath = this.resolveEndpoint(e.data);
      } catch (err) {
        return this.shut(err as Error);
      }
      clearTimeout(this.opening.timer);
      this.opening.resolve();
      this.opening = undefined;
    } else if ((e.event === undefined || e.event === 'message') && e.data.length > 0) {
      this.receiver?.message(e.data);
    }
  }

  /** Ends the stream once: whoever waits for it to open, or else the receiver, learns why. */
  private shut(reason: Error): void {
    if (this.ended) return;
    this.ended = reason;
    this.stream?.abort(reason);
    if (this.opening) {
      clearTimeout(this.opening.timer);
      this.opening.reject(reason);
      this.opening = undefined;
    } else {
      this.receiver?.closed(reason);
    }
  }

  /** The endpoint must stay on the backend's own origin: a server cannot send our POSTs elsewhere. */
  private resolveEndpoint(data: string): string {
    const target = new URL(data.trim(), this.backend.url);
    if (target.origin !== this.backend.origin) {
      throw this.error('protocol', `endpoint ${target.origin} is not on the backend's origin`);
    }
    return target.pathname + target.search;
  }

  private error(kind: UpstreamError['kind'], detail: string, cause?: unknown): UpstreamError {
    return new UpstreamError(this.backend.name, kind, detail, cause === undefined ? undefined : { cause });
  }
}

function ignore(): void {}
