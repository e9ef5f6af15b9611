import type { ServerResponse } from 'node:http';

/**
 * What may wait in the gateway for a client that reads slower than its stream is written;
 * past it the stream is cut, and the client resumes it with Last-Event-ID (every event the
 * gateway sends on a stream is kept for that).
 */
export const MAX_UNREAD_BYTES = 4 * 1024 * 1024;

/** Writes Server-Sent Events to a response; JSON texts with newlines become several data lines. */
export class SseWriter {
  private readonly res: ServerResponse;
  private keepAlive: NodeJS.Timeout | undefined;
  private lastEvent = Date.now();
  /** Resolves when the stream ends, whoever ends it. */
  readonly closed: Promise<void>;

  /**
   * keepAliveMs: a comment goes out this often, so proxies keep the connection; idleMs: a
   * stream with no event for this long is closed (the client reconnects if it still cares).
   */
  constructor(res: ServerResponse, headers: Record<string, string>, keepAliveMs?: number, idleMs?: number) {
    this.res = res;
    // A client that left while the stream's request waited (a session lookup, a token check) is gone already: 'close' came before.
    this.closed = res.destroyed ? Promise.resolve() : new Promise((resolve) => res.once('close', resolve));
    void this.closed.then(() => this.stopKeepAlive());
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', ...headers });
    res.flushHeaders();
    if (keepAliveMs) {
      const every = idleMs ? Math.min(keepAliveMs, idleMs) : keepAliveMs;
      this.keepAlive = setInterval(() => {
        if (idleMs && Date.now() - this.lastEvent >= idleMs) this.end();
        else this.res.write(': keep-alive\n\n');
      }, every).unref();
    }
  }

  get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  /** Returns false when the client reads slower than we write; one that falls MAX_UNREAD_BYTES behind is cut off. */
  message(data: string, id?: string): boolean {
    this.lastEvent = Date.now();
    const lines = data.includes('\n') ? data.split(/\r?\n/).map((l) => `data: ${l}\n`).join('') : `data: ${data}\n`;
    if (this.res.write(`${id === undefined ? '' : `id: ${id}\n`}event: message\n${lines}\n`)) return true;
    if (this.res.writableLength > MAX_UNREAD_BYTES) this.res.destroy();
    return false;
  }

  end(): void {
    this.stopKeepAlive();
    if (this.open) this.res.end();
  }

  private stopKeepAlive(): void {
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}
