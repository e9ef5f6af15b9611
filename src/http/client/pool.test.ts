import type { IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestCa } from '../../../test/support/certs.ts';
import { HttpClientPool, PreparedHeaders, type ClientExchange, type ClientRequest, type HttpClientPoolOptions } from './pool.ts';

interface Outcome {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen<S extends HttpServer | NetServer>(server: S): Promise<{ server: S; origin: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sockets };
}

function pool(origin: string, options?: HttpClientPoolOptions): HttpClientPool {
  const p = new HttpClientPool(origin, options);
  closers.push(() => p.close());
  return p;
}

/** Sends a request and gathers its whole response. */
function send(p: HttpClientPool, request: ClientRequest, onExchange?: (x: ClientExchange) => void): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const exchange = p.dispatch(request, {
      onResponseStart: (s, h) => {
        status = s;
        headers = h;
      },
      onResponseData: (c) => chunks.push(Buffer.from(c)),
      onResponseEnd: () => resolve({ status, headers, body: Buffer.concat(chunks).toString() }),
      onResponseError: reject,
    });
    onExchange?.(exchange);
  });
}

const get = (path = '/'): ClientRequest => ({ method: 'GET', path, headers: {} });
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An HTTP server that answers every request with its method, path, body and the connection's number. */
async function echoServer(): Promise<{ origin: string; connections: () => number; server: HttpServer }> {
  let connections = 0;
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const socket = req.socket as Socket & { serial?: number };
      socket.serial ??= ++connections;
      res.setHeader('x-connection', String(socket.serial));
      res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString(), headers: req.headers }));
    });
  });
  const { origin } = await listen(server);
  return { origin, connections: () => connections, server };
}

describe('HttpClientPool', () => {
  it('sends method, path, headers and body, and reuses one kept-alive connection for requests in turn', async () => {
    const { origin, connections } = await echoServer();
    const p = pool(origin);
    const first = await send(p, { method: 'POST', path: '/mcp?x=1', headers: { 'content-type': 'application/json', 'x-caller': 'a' }, body: '{"é":1}' });
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toMatchObject({ method: 'POST', url: '/mcp?x=1', body: '{"é":1}', headers: { 'x-caller': 'a', 'content-length': '8', host: new URL(origin).host } });
    for (let i = 0; i < 5; i++) await send(p, { method: 'DELETE', path: '/mcp', headers: {} });
    expect(connections()).toBe(1);
  });

  it('opens at most `connections` at once and serves the rest in order as they free up', async () => {
    const { origin, connections } = await echoServer();
    const p = pool(origin, { connections: 2 });
    const replies = await Promise.all(Array.from({ length: 7 }, (_, i) => send(p, get(`/${i}`))));
    expect(replies.map((r) => JSON.parse(r.body).url)).toEqual(['/0', '/1', '/2', '/3', '/4', '/5', '/6']);
    expect(connections()).toBe(2);
  });

  it('an exchange aborted while it waits for a connection is never sent', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const server = createHttpServer((req, res) => {
      seen.push(req.url!);
      if (req.url === '/slow') void held.then(() => res.end('slow'));
      else res.end('fast');
    });
    const { origin } = await listen(server);
    const p = pool(origin, { connections: 1 });
    const slow = send(p, get('/slow'));
    let queued!: ClientExchange;
    const aborted = send(p, get('/never'), (x) => (queued = x));
    queued.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    release();
    expect((await slow).body).toBe('slow');
    expect((await send(p, get('/after'))).body).toBe('fast');
    expect(seen).toEqual(['/slow', '/after']);
  });

  it('refuses at once a request beyond `maxWaiting` waiting ones; those aborted while waiting do not count', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { origin } = await listen(createHttpServer((req, res) => void (req.url === '/slow' ? held.then(() => res.end('slow')) : res.end('fast'))));
    const p = pool(origin, { connections: 1, maxWaiting: 2 });
    const slow = send(p, get('/slow'));
    let first!: ClientExchange;
    const aborted = send(p, get('/a'), (x) => (first = x));
    const waits = send(p, get('/b'));
    await expect(send(p, get('/c'))).rejects.toThrow('all 1 connections to http://127.0.0.1');
    first.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    // The aborted one's place is free again.
    const next = send(p, get('/d'));
    release();
    expect([(await slow).body, (await waits).body, (await next).body]).toEqual(['slow', 'fast', 'fast']);
  });

  it('does not reuse a connection whose response came before its request was written whole', async () => {
    // A server that answers on the first bytes and reads the rest of the body only later.
    let opened = 0;
    const bytes: number[] = [];
    const { origin } = await listen(
      createNetServer((s: Socket) => {
        const at = opened++;
        const count = (n: number): void => void (bytes[at] = (bytes[at] ?? 0) + n);
        s.on('error', () => {});
        s.once('data', (first) => {
          count(first.length);
          s.pause();
          s.write('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
          setTimeout(() => s.on('data', (d) => count(d.length)).resume(), 200);
        });
      }),
    );
    const p = pool(origin);
    const body = 'x'.repeat(16 << 20);
    expect((await send(p, { method: 'POST', path: '/big', headers: {}, body })).status).toBe(401);
    const second = send(p, get('/second'));
    await tick(400);
    expect(opened).toBe(2);
    // The first connection carried the first request alone.
    expect(bytes[0]).toBeLessThanOrEqual(body.length + 200);
    p.close();
    await second.catch(() => {});
  });

  it('an exchange aborted in flight closes its connection, and the next request gets a new one', async () => {
    const { server, origin, sockets } = await listen(createHttpServer((req, res) => (req.url === '/hang' ? res.write('partial') : res.end('ok'))));
    let opened = 0;
    server.on('connection', () => opened++);
    const p = pool(origin);
    let exchange!: ClientExchange;
    const hanging = send(p, get('/hang'), (x) => (exchange = x));
    await tick(50);
    exchange.abort(new Error('timed out'));
    await expect(hanging).rejects.toThrow('timed out');
    await tick(20);
    expect(sockets.size).toBe(0);
    expect((await send(p, get('/'))).body).toBe('ok');
    expect(opened).toBe(2);
  });

  it('pause() stops the reading of a response and resume() goes on, nothing lost', async () => {
    const { origin } = await listen(
      createHttpServer((_req, res) => {
        res.write('a'.repeat(1000));
        setTimeout(() => res.end('b'.repeat(1000)), 30);
      }),
    );
    const p = pool(origin);
    const received: number[] = [];
    let paused = false;
    const done = new Promise<string>((resolve, reject) => {
      let body = '';
      const exchange = p.dispatch(get(), {
        onResponseStart: () => {},
        onResponseData: (c) => {
          received.push(c.length);
          if (paused) reject(new Error('data while paused'));
          body += c.toString();
          if (!body.includes('b') && body.length >= 1000) {
            paused = true;
            exchange.pause();
            setTimeout(() => {
              paused = false;
              exchange.resume();
            }, 100);
          }
        },
        onResponseEnd: () => resolve(body),
        onResponseError: reject,
      });
    });
    expect(await done).toBe('a'.repeat(1000) + 'b'.repeat(1000));
  });

  it('refuses header names and values that would inject into the request, and paths that are not origin-form', async () => {
    const { origin, connections } = await echoServer();
    const p = pool(origin);
    await expect(send(p, { method: 'GET', path: '/', headers: { 'x-a': 'v\r\nx-injected: 1' } })).rejects.toThrow(/bad request header "x-a"/);
    await expect(send(p, { method: 'GET', path: '/', headers: { 'x a': 'v' } })).rejects.toThrow(/bad request header/);
    await expect(send(p, get('/a b'))).rejects.toThrow(/bad request path/);
    await expect(send(p, get('http://elsewhere/'))).rejects.toThrow(/bad request path/);
    expect(connections()).toBe(0);
  });

  it('writes host, content-length and framing itself: a caller may name the host, not the framing', async () => {
    const { origin, connections } = await echoServer();
    const p = pool(origin);
    const named = JSON.parse((await send(p, { method: 'GET', path: '/', headers: { Host: 'api.example' } })).body);
    expect(named.headers.host).toBe('api.example');
    for (const name of ['content-length', 'Transfer-Encoding', 'connection', 'upgrade', 'te']) {
      await expect(send(p, { method: 'POST', path: '/', headers: { [name]: '0' }, body: 'x' })).rejects.toThrow(`request header "${name}" is the HTTP client's to write`);
    }
    expect(connections()).toBe(1);
  });

  it('sends prepared headers as it sends the same headers unprepared, and refuses prepared ones that fail the checks on every request', async () => {
    const { origin, connections } = await echoServer();
    const p = pool(origin);
    const fields = { 'Content-Type': 'application/json', 'x-caller': 'a', Host: 'api.example' };
    const prepared = new PreparedHeaders(fields);
    for (const headers of [fields, prepared, prepared]) {
      const echoed = JSON.parse((await send(p, { method: 'POST', path: '/mcp', headers, body: '{}' })).body);
      expect(echoed.headers).toEqual({ 'content-type': 'application/json', 'x-caller': 'a', host: 'api.example', 'content-length': '2' });
    }
    const injecting = new PreparedHeaders({ 'x-a': 'v\r\nx-injected: 1' });
    const framing = new PreparedHeaders({ 'Content-Length': '1' });
    for (let i = 0; i < 2; i++) {
      await expect(send(p, { method: 'GET', path: '/', headers: injecting })).rejects.toThrow(/bad request header "x-a"/);
      await expect(send(p, { method: 'POST', path: '/', headers: framing, body: 'x' })).rejects.toThrow(`request header "Content-Length" is the HTTP client's to write`);
    }
    expect(connections()).toBe(1);
  });

  it("gives up an idle connection a second before the server's Keep-Alive hint says it closes it", async () => {
    let opened = 0;
    const { server, origin } = await listen(createHttpServer((_req, res) => res.end('ok')));
    server.keepAliveTimeout = 1500; // Node sends "Keep-Alive: timeout=1"
    server.on('connection', () => opened++);
    const p = pool(origin);
    const first = await send(p, get());
    expect(first.headers['keep-alive']).toBe('timeout=1');
    await send(p, get());
    // A hint of one second leaves no time to reuse: each request had a connection of its own.
    expect(opened).toBe(2);
  });

  it('does not keep a connection the server says it closes', async () => {
    let opened = 0;
    const { server, origin } = await listen(createHttpServer((_req, res) => res.setHeader('connection', 'close').end('ok')));
    server.on('connection', () => opened++);
    const p = pool(origin);
    for (let i = 0; i < 3; i++) expect((await send(p, get())).body).toBe('ok');
    expect(opened).toBe(3);
  });

  describe('a kept-alive connection the server closes as the request goes out', () => {
    /**
     * Answers the first request on each connection, keeping it alive, and closes the
     * connection without a word when a second request arrives on it: the race with a server
     * that closes idle connections, made certain.
     */
    async function closesOnSecondRequest(): Promise<{ origin: string; requests: () => number }> {
      let requests = 0;
      const server = createNetServer((socket) => {
        let answered = false;
        socket.on('data', () => {
          requests++;
          if (answered) return socket.destroy();
          answered = true;
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        });
      });
      const { origin } = await listen(server);
      return { origin, requests: () => requests };
    }

    it('a replayable request goes again on a new connection', async () => {
      const { origin, requests } = await closesOnSecondRequest();
      const p = pool(origin);
      await send(p, get());
      expect((await send(p, { ...get(), replayable: true })).body).toBe('ok');
      expect(requests()).toBe(3);
    });

    it('any other request fails, and is not sent twice', async () => {
      const { origin, requests } = await closesOnSecondRequest();
      const p = pool(origin);
      await send(p, get());
      await expect(send(p, { method: 'POST', path: '/', headers: {}, body: 'x' })).rejects.toThrow(/closed before a response/);
      expect(requests()).toBe(2);
    });

    it('a replayable request that a new connection does not answer is not sent again', async () => {
      let requests = 0;
      const { origin } = await listen(
        createNetServer((socket) =>
          socket.on('data', () => {
            requests++;
            socket.destroy();
          }),
        ),
      );
      const p = pool(origin);
      await expect(send(p, { ...get(), replayable: true })).rejects.toThrow(/closed before a response/);
      expect(requests).toBe(1);
    });
  });

  it('fails what waits and what is under way when closed, and refuses what comes after', async () => {
    const { origin } = await listen(createHttpServer(() => {}));
    const p = new HttpClientPool(origin, { connections: 1 });
    const inFlight = send(p, get('/1'));
    const waiting = send(p, get('/2'));
    await tick(20);
    p.close();
    await expect(inFlight).rejects.toThrow('the HTTP client is closed');
    await expect(waiting).rejects.toThrow('the HTTP client is closed');
    await expect(send(p, get())).rejects.toThrow('the HTTP client is closed');
  });

  it('reports a refused connection as the request failing', async () => {
    const { server, origin } = await listen(createNetServer());
    await new Promise<void>((r) => server.close(() => r()));
    await expect(send(pool(origin), get())).rejects.toThrow(/ECONNREFUSED/);
  });

  it('speaks TLS to an https origin, and fails closed on a certificate it cannot verify', async () => {
    const ca = createTestCa();
    closers.push(() => ca.remove());
    const leaf = ca.server('upstream', ['IP:127.0.0.1']);
    const { server } = await listen(createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req, res) => res.end(`tls ${req.url}`)) as unknown as HttpServer);
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await expect(send(pool(origin), get('/x'))).rejects.toThrow(/certificate/);
    const trusting = pool(origin, { connect: (o) => tlsConnect({ host: o.hostname, port: Number(o.port), ca: ca.cert, ALPNProtocols: ['http/1.1'] }) });
    expect((await send(trusting, get('/x'))).body).toBe('tls /x');
    expect((await send(trusting, get('/y'))).body).toBe('tls /y');
  });
});
