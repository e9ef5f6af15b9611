import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_UNREAD_BYTES, SseWriter } from './sse.ts';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A server whose one response is handed to the test, and a client that sends the request and then reads nothing. */
async function unreadResponse(): Promise<ServerResponse> {
  let handed!: (res: ServerResponse) => void;
  const response = new Promise<ServerResponse>((resolve) => (handed = resolve));
  const server = createServer((_req, res) => handed(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.write('GET /stream HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n');
  socket.pause();
  closers.push(() => {
    socket.destroy();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return response;
}

describe('an SSE stream', () => {
  it('cuts off a client that reads nothing once MAX_UNREAD_BYTES wait for it, instead of buffering without end', async () => {
    const res = await unreadResponse();
    const sse = new SseWriter(res, {});
    const event = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x'.repeat(64 * 1024) } });
    let written = 0;
    while (sse.open && written < 8 * MAX_UNREAD_BYTES) {
      sse.message(event, String(written));
      written += event.length;
    }
    expect(sse.open).toBe(false);
    expect(written).toBeLessThan(2 * MAX_UNREAD_BYTES + 4 * 1024 * 1024);
    await sse.closed;
  });

  it('is closed at once when the client left before it opened', async () => {
    const res = await unreadResponse();
    const gone = new Promise((resolve) => res.once('close', resolve));
    res.destroy();
    await gone;
    const sse = new SseWriter(res, {}, 10);
    // A 'close' that came before would never come again: closed must not wait for it.
    await sse.closed;
    expect(sse.open).toBe(false);
  });
});
