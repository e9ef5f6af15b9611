import { getEventListeners } from 'node:events';
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClientPool } from '../../http/client/pool.ts';
import { HttpReply, type HttpReplyOptions } from './http-reply.ts';
import type { Inbound, ReplySink } from './types.ts';

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
      case '/no-stream':
        res.writeHead(405, { allow: 'POST, DELETE' }).end();
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
      case '/heartbeat': {
        // The response, then a stream that never ends: a comment every 100 ms.
        res.writeHead(200, { 'content-type': 'text/event-stream' }).write(sse(response(1)));
        const beat = setInterval(() => res.write(': ping\n\n'), 100);
        res.on('close', () => clearInterval(beat));
        return;
      }
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

/** A consumer in a test: records what the reply delivers, and says when it has enough. */
class Recorder implements ReplySink {
  readonly messages: unknown[] = [];
  reply!: HttpReply;
  /** The messages, once the reply ended; its failure, once it failed. */
  readonly settled: Promise<unknown[]>;
  private wake: () => void = () => {};
  private resolve!: (messages: unknown[]) => void;
  private reject!: (err: unknown) => void;
  private done = false;

  constructor() {
    this.settled = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.settled.catch(() => {});
  }

  message(inbound: Inbound): void {
    if (this.done) throw new Error('a message after the reply settled');
    this.messages.push(inbound.message);
    this.wake();
  }

  end(): void {
    this.settle();
    this.resolve(this.messages);
  }

  fail(error: Error): void {
    this.settle();
    this.reject(error);
  }

  /** Resolves once n messages have arrived; rejects if the reply settles with fewer. */
  async arrived(n: number): Promise<unknown[]> {
    while (this.messages.length < n) {
      if (this.done) throw new Error(`the reply settled after ${this.messages.length} of ${n} messages`);
      await Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), this.settled.then(() => {}, () => {})]);
    }
    return this.messages;
  }

  private settle(): void {
    if (this.done) throw new Error('the reply settled twice');
    this.done = true;
    this.wake();
  }
}

describe('an upstream HTTP reply', () => {
  let server: Server;
  let pool: HttpClientPool;
  const on = (dispatcher: HttpClientPool, path: string, options: Partial<HttpReplyOptions> = {}): Recorder => {
    const recorder = new Recorder();
    recorder.reply = new HttpReply(dispatcher, { method: 'GET', path, headers: {} }, { backend: 'b', timeoutMs: 5_000, maxMessageBytes: 4096, kind: 'request', inSession: false, ...options }, recorder);
    return recorder;
  };
  /** A consumer that does something to the reply with every message it takes. */
  const reacting = (dispatcher: HttpClientPool, path: string, react: (reply: HttpReply) => void): Recorder => {
    const recorder = new Recorder();
    const sink: ReplySink = {
      message(inbound) {
        recorder.message(inbound);
        react(recorder.reply);
      },
      end: () => recorder.end(),
      fail: (err) => recorder.fail(err),
    };
    recorder.reply = new HttpReply(dispatcher, { method: 'GET', path, headers: {} }, { backend: 'b', timeoutMs: 5_000, maxMessageBytes: 4096, kind: 'request', inSession: false }, sink);
    return recorder;
  };
  const open = (path: string, options: Partial<HttpReplyOptions> = {}): Recorder => on(pool, path, options);
  const readAll = (path: string, options: Partial<HttpReplyOptions> = {}): Promise<unknown[]> => open(path, options).settled;
  const release = async (): Promise<void> => {
    await open('/release', { kind: 'message' }).settled;
  };

  beforeAll(async () => {
    server = await startServer();
    pool = new HttpClientPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 4 });
  });

  afterAll(async () => {
    pool.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('delivers the messages of an SSE reply, and of a JSON one', async () => {
    expect(await readAll('/sse')).toEqual([progress(1), response(1)]);
    expect(await readAll('/json')).toEqual([response(1)]);
    expect(await readAll('/accepted')).toEqual([]);
  });

  it('hands each SSE message over as it arrives, before the reply ends', async () => {
    const reply = open('/held');
    expect(await reply.arrived(1)).toEqual([progress(1)]);
    await release();
    expect(await reply.settled).toEqual([progress(1), response(1)]);
  });

  it('delivers every message of a long stream, in order', async () => {
    const messages = await readAll('/many');
    expect(messages).toHaveLength(101);
    expect(messages.slice(0, 100).map((m) => (m as { params: { progress: number } }).params.progress)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('holds delivery while paused, and goes on where it stopped when resumed', async () => {
    const reply = open('/held');
    reply.reply.pause();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The first chunk may have been read before the pause took hold; the response was not.
    expect(reply.messages).not.toContainEqual(response(1));
    reply.reply.resume();
    expect(await reply.settled).toEqual([progress(1), response(1)]);
  });

  it('turns a failed status into the upstream failure it means', async () => {
    await expect(readAll('/broken')).rejects.toThrow('backend "b" is unavailable: HTTP 500: database on fire');
    await expect(readAll('/gone', { inSession: true })).rejects.toMatchObject({ kind: 'expired' });
    await expect(readAll('/gone')).rejects.toMatchObject({ kind: 'unavailable' });
    await expect(readAll('/html')).rejects.toThrow('backend "b" broke the protocol: unexpected content-type "text/html"');
    await expect(readAll('/big-json')).rejects.toThrow('response body larger than 4096 bytes');
    // 405 to a server stream's GET: the upstream offers none, which is not worth asking again.
    await expect(readAll('/no-stream', { kind: 'listen' })).rejects.toMatchObject({ kind: 'unsupported' });
    await expect(readAll('/no-stream')).rejects.toMatchObject({ kind: 'unavailable' });
  });

  it('times out without headers, and when the body stalls, after the messages that came', async () => {
    let told = 0;
    await expect(readAll('/hang', { timeoutMs: 100, onTimeout: () => told++ })).rejects.toMatchObject({ kind: 'timeout', message: expect.stringContaining('no response within 100 ms') });
    expect(told).toBe(1);
    const stalled = open('/stall', { timeoutMs: 100 });
    await expect(stalled.settled).rejects.toThrow('the response stalled for 100 ms');
    expect(stalled.messages).toEqual([progress(1)]);
  });

  it('takes any 200 or 202 as the acknowledgement of a notification, whatever the body', async () => {
    for (const path of ['/accepted', '/html', '/json', '/sse']) expect(await readAll(path, { kind: 'message' })).toEqual([]);
    await expect(readAll('/broken', { kind: 'message' })).rejects.toThrow('HTTP 500');
  });

  it('fails on a failed status once it has enough of the explanation, without waiting for the rest', async () => {
    await expect(readAll('/endless-error')).rejects.toThrow(/^backend "b" is unavailable: HTTP 500: x+$/);
    // A server stream's GET too, though an open stream is never timed.
    await expect(readAll('/endless-error', { kind: 'listen', timeoutMs: 0 })).rejects.toThrow('HTTP 500');
  });

  it('lets an open server stream idle past the timeout, but not a stream that never opens', async () => {
    const stream = open('/held', { kind: 'listen', timeoutMs: 100 });
    await stream.arrived(1);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await release();
    expect(await stream.arrived(2)).toEqual([progress(1), response(1)]);
    stream.reply.stop();
    await expect(readAll('/hang', { kind: 'listen', timeoutMs: 100 })).rejects.toMatchObject({ kind: 'timeout' });
  });

  it('times out, and is cancelled, while it waits for a connection of a busy pool', async () => {
    const single = new HttpClientPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    try {
      const busy = on(single, '/hang', { timeoutMs: 0 });
      let told = 0;
      await expect(on(single, '/sse', { timeoutMs: 100, onTimeout: () => told++ }).settled).rejects.toMatchObject({
        kind: 'timeout',
        message: expect.stringContaining('no response within 100 ms'),
      });
      expect(told).toBe(1);
      const controller = new AbortController();
      const queued = on(single, '/sse', { timeoutMs: 0, signal: controller.signal });
      controller.abort(new Error('client cancelled'));
      await expect(queued.settled).rejects.toThrow('client cancelled');
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      busy.reply.stop();
    } finally {
      single.close();
    }
  });

  it('never sends the request of a server stream given up while it waited for a connection', async () => {
    const single = new HttpClientPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    try {
      const busy = on(single, '/held');
      await busy.arrived(1);
      const stream = on(single, '/sse?given-up', { kind: 'listen' });
      stream.reply.stop();
      await release();
      expect(await busy.settled).toEqual([progress(1), response(1)]);
      expect(await on(single, '/sse').settled).toHaveLength(2);
      expect(received.get('/sse?given-up')).toBeUndefined();
      // The consumer stopped: it hears nothing more, not even the end.
      expect(stream.messages).toEqual([]);
    } finally {
      single.close();
    }
  });

  /**
   * Runs `body` on a pool of one connection and checks that the connection was kept: a reply
   * not drained would have it destroyed, and the next one opened anew.
   */
  const onOneConnection = async (body: (single: HttpClientPool) => Promise<void>): Promise<void> => {
    const single = new HttpClientPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    try {
      await on(single, '/sse').settled;
      const before = connections;
      await body(single);
      expect(await on(single, '/sse').settled).toHaveLength(2);
      expect(connections).toBe(before);
    } finally {
      single.close();
    }
  };

  it('keeps the connection when the consumer stops early, and delivers nothing after the stop', async () => {
    await onOneConnection(async (single) => {
      for (let i = 0; i < 5; i++) {
        const recorder = reacting(single, '/many', (reply) => reply.stop());
        await recorder.arrived(1);
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(recorder.messages).toHaveLength(1);
      }
    });
  });

  it('drains what follows a stop even when a pause comes after it', async () => {
    // A consumer whose backlog grows past its mark after it stopped the reply pauses it still: the drain must go on.
    await onOneConnection(async (single) => {
      const recorder = reacting(single, '/many', (reply) => {
        reply.stop();
        reply.pause();
      });
      await recorder.arrived(1);
      // The connection is free again long before the 5 s timeout would free it.
      expect(await Promise.race([on(single, '/sse').settled, new Promise((resolve) => setTimeout(() => resolve('still held'), 2_000))])).toHaveLength(2);
    });
  });

  it('gives up, a second after the stop, a connection whose stream goes on after the response', async () => {
    const single = new HttpClientPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    try {
      const before = connections;
      const recorder = reacting(single, '/heartbeat', (reply) => reply.stop());
      await recorder.arrived(1);
      // Each heartbeat re-armed the 5 s timeout while they were wanted; once stopped, they would hold the
      // only connection for good, and the next request would time out waiting for it.
      expect(await on(single, '/sse').settled).toHaveLength(2);
      expect(connections).toBe(before + 2);
    } finally {
      single.close();
    }
  });

  it('leaves no listener on the signal once the reply has ended, or failed', async () => {
    const signal = new AbortController().signal;
    await readAll('/sse', { signal });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    await expect(readAll('/reset', { signal })).rejects.toMatchObject({ kind: 'unavailable' });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('is aborted by the signal while it waits, and lets go of it', async () => {
    const controller = new AbortController();
    const reply = open('/hang', { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('client cancelled'));
    await expect(reply.settled).rejects.toThrow('client cancelled');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
