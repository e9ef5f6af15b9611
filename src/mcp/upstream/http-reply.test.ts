import { getEventListeners } from 'node:events';
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpReply, type HttpReplyOptions } from './http-reply.ts';
import type { Inbound } from './types.ts';

const sse = (...messages: unknown[]): string => messages.map((m) => `event: message\ndata: ${JSON.stringify(m)}\n\n`).join('');
const response = (id: number): unknown => ({ jsonrpc: '2.0', id, result: { ok: true } });
const progress = (n: number): unknown => ({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 't', progress: n } });

/** Responses held open by /held, until /release ends them. */
const held: ServerResponse[] = [];
let connections = 0;
/** Requests the server received, by path. */
const received = new Map<string, number>();

function startServer(): Promise<Server> {
  const server = createServer((req, res) => {
    received.set(req.url!, (received.get(req.url!) ?? 0) + 1);
    switch (req.url!.split('?')[0]) {
      case '/sse':
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(sse(progress(1), response(1)));
        return;
      case '/many':
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(sse(...Array.from({ length: 100 }, (_, i) => progress(i)), response(1)));
        return;
      case '/held':
        res.writeHead(200, { 'content-type': 'text/event-stream' }).write(sse(progress(1)));
        held.push(res);
        return;
      case '/release':
        for (const h of held.splice(0)) h.end(sse(response(1)));
        res.end();
        return;
      case '/json':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response(1)));
        return;
      case '/big-json':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'x'.repeat(5000) } }));
        return;
      case '/accepted':
        res.writeHead(202).end();
        return;
      case '/gone':
        res.writeHead(404).end('no such session');
        return;
      case '/broken':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('database on fire');
        return;
      case '/html':
        res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hello</p>');
        return;
      case '/stall':
        res.writeHead(200, { 'content-type': 'text/event-stream' }).write(sse(progress(1)));
        return;
      case '/reset':
        req.socket.destroy();
        return;
      case '/endless-error': {
        // A failure whose explanation never ends.
        res.writeHead(500, { 'content-type': 'text/plain' });
        const drip = setInterval(() => res.write('x'.repeat(1024)), 5);
        res.on('close', () => clearInterval(drip));
        return;
      }
      // '/hang' never answers.
    }
  });
  server.on('connection', () => connections++);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function readAll(reply: AsyncIterable<Inbound>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const inbound of reply) out.push(inbound.message);
  return out;
}

describe('an upstream HTTP reply', () => {
  let server: Server;
  let pool: Pool;
  const open = (path: string, options: Partial<HttpReplyOptions> = {}): HttpReply =>
    new HttpReply(pool, { method: 'GET', path }, { backend: 'b', timeoutMs: 5_000, maxMessageBytes: 4096, kind: 'request', inSession: false, ...options });

  beforeAll(async () => {
    server = await startServer();
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 4 });
  });

  afterAll(async () => {
    await pool.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('reads the messages of an SSE reply, and of a JSON one', async () => {
    expect(await readAll(open('/sse'))).toEqual([progress(1), response(1)]);
    expect(await readAll(open('/json'))).toEqual([response(1)]);
    expect(await readAll(open('/accepted'))).toEqual([]);
  });

  it('hands each SSE message over as it arrives, before the reply ends', async () => {
    const reply = open('/held');
    expect((await reply.next()).value?.message).toEqual(progress(1));
    await pool.request({ method: 'GET', path: '/release' }).then((r) => r.body.dump());
    expect((await reply.next()).value?.message).toEqual(response(1));
    expect((await reply.next()).done).toBe(true);
  });

  it('gives a reader that falls behind every message, in order', async () => {
    const reply = open('/many');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const messages = await readAll(reply);
    expect(messages).toHaveLength(101);
    expect(messages.slice(0, 100).map((m) => (m as { params: { progress: number } }).params.progress)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('turns a failed status into the upstream failure it means', async () => {
    await expect(readAll(open('/broken'))).rejects.toThrow('backend "b" is unavailable: HTTP 500: database on fire');
    await expect(readAll(open('/gone', { inSession: true }))).rejects.toMatchObject({ kind: 'expired' });
    await expect(open('/gone').opened()).rejects.toMatchObject({ kind: 'unavailable' });
    await expect(readAll(open('/html'))).rejects.toThrow('backend "b" broke the protocol: unexpected content-type "text/html"');
    await expect(readAll(open('/big-json'))).rejects.toThrow('response body larger than 4096 bytes');
  });

  it('times out without headers, and when the body stalls, after the messages that came', async () => {
    let told = 0;
    await expect(readAll(open('/hang', { timeoutMs: 100, onTimeout: () => told++ }))).rejects.toMatchObject({ kind: 'timeout', message: expect.stringContaining('no response within 100 ms') });
    expect(told).toBe(1);
    const stalled = open('/stall', { timeoutMs: 100 });
    expect((await stalled.next()).value?.message).toEqual(progress(1));
    await expect(stalled.next()).rejects.toThrow('the response stalled for 100 ms');
  });

  it('takes any 200 or 202 as the acknowledgement of a notification, whatever the body', async () => {
    for (const path of ['/accepted', '/html', '/json', '/sse']) {
      const reply = open(path, { kind: 'message' });
      await reply.opened();
      expect(await readAll(reply)).toEqual([]);
    }
    await expect(open('/broken', { kind: 'message' }).opened()).rejects.toThrow('HTTP 500');
  });

  it('fails on a failed status once it has enough of the explanation, without waiting for the rest', async () => {
    await expect(readAll(open('/endless-error'))).rejects.toThrow(/^backend "b" is unavailable: HTTP 500: x+$/);
    // A server stream's GET too, though an open stream is never timed.
    await expect(readAll(open('/endless-error', { kind: 'listen', timeoutMs: 0 }))).rejects.toThrow('HTTP 500');
  });

  it('lets an open server stream idle past the timeout, but not a stream that never opens', async () => {
    const stream = open('/held', { kind: 'listen', timeoutMs: 100 });
    expect((await stream.next()).value?.message).toEqual(progress(1));
    await new Promise((resolve) => setTimeout(resolve, 250));
    await pool.request({ method: 'GET', path: '/release' }).then((r) => r.body.dump());
    expect((await stream.next()).value?.message).toEqual(response(1));
    await stream.return();
    await expect(readAll(open('/hang', { kind: 'listen', timeoutMs: 100 }))).rejects.toMatchObject({ kind: 'timeout' });
  });

  it('times out, and is cancelled, while it waits for a connection of a busy pool', async () => {
    const single = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    const on = (path: string, options: Partial<HttpReplyOptions> = {}): HttpReply =>
      new HttpReply(single, { method: 'GET', path }, { backend: 'b', kind: 'request', timeoutMs: 0, maxMessageBytes: 4096, inSession: false, ...options });
    try {
      const busy = on('/hang');
      const waiting = busy.next();
      let told = 0;
      await expect(readAll(on('/sse', { timeoutMs: 100, onTimeout: () => told++ }))).rejects.toMatchObject({ kind: 'timeout', message: expect.stringContaining('no response within 100 ms') });
      expect(told).toBe(1);
      const controller = new AbortController();
      const queued = on('/sse', { signal: controller.signal });
      const first = queued.next();
      controller.abort(new Error('client cancelled'));
      await expect(first).rejects.toThrow('client cancelled');
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      await busy.return();
      void waiting.catch(() => {});
    } finally {
      await single.destroy();
    }
  });

  it('never sends the request of a server stream given up while it waited for a connection', async () => {
    const single = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    const on = (path: string, kind: HttpReplyOptions['kind']): HttpReply =>
      new HttpReply(single, { method: 'GET', path }, { backend: 'b', kind, timeoutMs: 5_000, maxMessageBytes: 4096, inSession: false });
    try {
      const busy = on('/held', 'request');
      await busy.next();
      const stream = on('/sse?given-up', 'listen');
      await stream.return();
      // The reader stopped: it is done, not failed.
      expect((await stream.next()).done).toBe(true);
      await pool.request({ method: 'GET', path: '/release' }).then((r) => r.body.dump());
      expect(await readAll(busy)).toEqual([response(1)]);
      expect(await readAll(on('/sse', 'request'))).toHaveLength(2);
      expect(received.get('/sse?given-up')).toBeUndefined();
    } finally {
      await single.destroy();
    }
  });

  it('keeps the connection when the reader stops early', async () => {
    // One connection: a reply not drained would have it destroyed, and the next one opened anew.
    const single = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    const on = (path: string): HttpReply => new HttpReply(single, { method: 'GET', path }, { backend: 'b', timeoutMs: 5_000, maxMessageBytes: 4096, kind: 'request', inSession: false });
    try {
      await readAll(on('/sse'));
      const before = connections;
      for (let i = 0; i < 5; i++) {
        const reply = on('/many');
        await reply.next();
        await reply.return();
      }
      expect(await readAll(on('/sse'))).toHaveLength(2);
      expect(connections).toBe(before);
    } finally {
      await single.destroy();
    }
  });

  it('leaves no listener on the signal once the reply has ended, or failed', async () => {
    const signal = new AbortController().signal;
    await readAll(open('/sse', { signal }));
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    await expect(readAll(open('/reset', { signal }))).rejects.toMatchObject({ kind: 'unavailable' });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('is aborted by the signal while it waits, and lets go of it', async () => {
    const controller = new AbortController();
    const reply = open('/hang', { signal: controller.signal });
    const first = reply.next();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('client cancelled'));
    await expect(first).rejects.toThrow('client cancelled');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
