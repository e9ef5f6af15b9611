import type { ServerResponse } from 'node:http';

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
    this.closed = new Promise((resolve) => res.once('close', resolve));
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

  /** Returns false when the client reads slower than we write (the caller may wait for 'drain'). */
  message(data: string, id?: string): boolean {
    this.lastEvent = Date.now();
    const lines = data.includes('\n') ? data.split(/\r?\n/).map((l) => `data: ${l}\n`).join('') : `data: ${data}\n`;
    return this.res.write(`${id === undefined ? '' : `id: ${id}\n`}event: message\n${lines}\n`);
  }

  end(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (this.open) this.res.end();
  }
}
