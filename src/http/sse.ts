import type { ServerResponse } from 'node:http';

/** Writes Server-Sent Events to a response; JSON texts with newlines become several data lines. */
export class SseWriter {
  private readonly res: ServerResponse;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(res: ServerResponse, headers: Record<string, string>, keepAliveMs?: number) {
    this.res = res;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', ...headers });
    res.flushHeaders();
    if (keepAliveMs) this.keepAlive = setInterval(() => this.res.write(': keep-alive\n\n'), keepAliveMs).unref();
  }

  get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  /** Returns false when the client reads slower than we write (the caller may wait for 'drain'). */
  message(data: string, id?: string): boolean {
    const lines = data.includes('\n') ? data.split(/\r?\n/).map((l) => `data: ${l}\n`).join('') : `data: ${data}\n`;
    return this.res.write(`${id === undefined ? '' : `id: ${id}\n`}event: message\n${lines}\n`);
  }

  end(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (this.open) this.res.end();
  }
}
