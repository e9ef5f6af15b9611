import type { Dispatcher, Pool } from 'undici';
import type { RemoteBackendIR } from '../../ir/types.ts';
import type { ChannelReceiver, MessageChannel } from './channel.ts';
import { readSseEvents, type SseEvent } from './sse-reader.ts';
import { UpstreamError } from './types.ts';

/**
 * The legacy HTTP+SSE transport (MCP 2024-11-05): a GET opens an event stream whose first
 * "endpoint" event names where to POST; replies arrive as "message" events on the stream.
 */
export class LegacySseChannel implements MessageChannel {
  private readonly backend: RemoteBackendIR;
  private readonly pool: Pool;
  private readonly maxMessageBytes: number;
  private readonly headers: Record<string, string>;
  private readonly abort = new AbortController();
  private postPath: string | undefined;
  private receiver: ChannelReceiver | undefined;

  private constructor(backend: RemoteBackendIR, pool: Pool, maxMessageBytes: number, callerHeaders: Record<string, string> | undefined) {
    this.backend = backend;
    this.pool = pool;
    this.maxMessageBytes = maxMessageBytes;
    this.headers = { ...backend.headers, ...callerHeaders };
  }

  /** Opens the event stream and waits for the endpoint event (bounded by the backend timeout). */
  static async connect(backend: RemoteBackendIR, pool: Pool, maxMessageBytes: number, callerHeaders?: Record<string, string>): Promise<LegacySseChannel> {
    const channel = new LegacySseChannel(backend, pool, maxMessageBytes, callerHeaders);
    await channel.open();
    return channel;
  }

  attach(receiver: ChannelReceiver): void {
    this.receiver = receiver;
  }

  async send(raw: string): Promise<void> {
    if (!this.postPath || this.abort.signal.aborted) throw new UpstreamError(this.backend.name, 'expired', 'SSE stream is closed');
    let res: Dispatcher.ResponseData;
    try {
      res = await this.pool.request({
        method: 'POST',
        path: this.postPath,
        headers: { ...this.headers, 'content-type': 'application/json' },
        body: raw,
        headersTimeout: this.backend.timeoutMs,
      });
    } catch (err) {
      throw new UpstreamError(this.backend.name, 'unavailable', (err as Error).message, { cause: err });
    }
    await res.body.dump();
    if (res.statusCode === 404) throw new UpstreamError(this.backend.name, 'expired', 'HTTP 404 for the message endpoint');
    if (res.statusCode >= 300) throw new UpstreamError(this.backend.name, 'unavailable', `HTTP ${res.statusCode} for a posted message`);
  }

  async close(): Promise<void> {
    this.abort.abort();
  }

  private async open(): Promise<void> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.pool.request({
        method: 'GET',
        path: this.backend.path,
        headers: { ...this.headers, accept: 'text/event-stream' },
        signal: this.abort.signal,
        headersTimeout: this.backend.timeoutMs,
        bodyTimeout: 0,
      });
    } catch (err) {
      throw new UpstreamError(this.backend.name, 'unavailable', (err as Error).message, { cause: err });
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new UpstreamError(this.backend.name, 'unavailable', `HTTP ${res.statusCode} opening the SSE stream`);
    }
    const events = readSseEvents(res.body, this.maxMessageBytes);
    const timer = setTimeout(() => this.abort.abort(), this.backend.timeoutMs);
    try {
      for (;;) {
        const next = await events.next();
        if (next.done) throw new UpstreamError(this.backend.name, 'protocol', 'SSE stream ended before the endpoint event');
        if (next.value.event === 'endpoint') {
          this.postPath = this.resolveEndpoint(next.value.data);
          break;
        }
      }
    } catch (err) {
      this.abort.abort();
      if (err instanceof UpstreamError) throw err;
      throw new UpstreamError(this.backend.name, 'unavailable', (err as Error).message, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    void this.pump(events);
  }

  /** The endpoint must stay on the backend's own origin: a server cannot send our POSTs elsewhere. */
  private resolveEndpoint(data: string): string {
    const target = new URL(data.trim(), this.backend.url);
    if (target.origin !== this.backend.origin) {
      throw new UpstreamError(this.backend.name, 'protocol', `endpoint ${target.origin} is not on the backend's origin`);
    }
    return target.pathname + target.search;
  }

  private async pump(events: AsyncIterableIterator<SseEvent>): Promise<void> {
    let reason = new Error('SSE stream ended');
    try {
      for await (const e of events) {
        if ((e.event === undefined || e.event === 'message') && e.data.length > 0) this.receiver?.message(e.data);
      }
    } catch (err) {
      reason = err as Error;
    }
    this.abort.abort();
    this.receiver?.closed(reason);
  }
}
