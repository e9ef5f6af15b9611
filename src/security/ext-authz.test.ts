import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtAuthzClient, type CheckRequest, type ExtAuthzOptions } from './ext-authz.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: CheckRequest;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: CheckRequest) => void;

/** A real authz service on 127.0.0.1 whose behaviour each test scripts. */
class AuthzServer {
  readonly seen: Seen[] = [];
  connections = 0;
  private readonly server: Server;
  handler: Handler = (_req, res) => res.writeHead(200).end();

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const body = JSON.parse(raw) as CheckRequest;
        this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, raw, body });
        this.handler(req, res, body);
      });
    });
    this.server.on('connection', () => this.connections++);
  }

  async listen(): Promise<URL> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return new URL(`http://127.0.0.1:${port}/authz/check?v=1`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(options: Partial<ExtAuthzOptions> = {}): Promise<{ server: AuthzServer; client: ExtAuthzClient }> {
  const server = new AuthzServer();
  const url = await server.listen();
  cleanups.push(() => server.close());
  const client = new ExtAuthzClient({ url, timeoutMs: 2000, failOpen: false, ...options });
  cleanups.push(() => client.close());
  return { server, client };
}

/** A URL nothing listens on: bind a port, then give it back. */
async function deadUrl(): Promise<URL> {
  const server = new AuthzServer();
  const url = await server.listen();
  await server.close();
  return url;
}

function request(tool = 'search', extra: Partial<CheckRequest> = {}): CheckRequest {
  return {
    method: 'POST',
    path: '/mcp',
    headers: { 'x-team': 'blue', accept: 'application/json' },
    identity: { subject: 'alice', issuer: 'https://issuer.example', scopes: ['notes:read'] },
    mcp: { method: 'tools/call', tool, arguments: { q: 'hello', limit: 5 } },
    ...extra,
  };
}

describe('ExtAuthzClient: decisions', () => {
  it('allows on 200 and injects only the allowed response headers', async () => {
    const { server, client } = await setup({ allowedResponseHeaders: ['x-user-id', 'x-tenant'], headers: { 'x-authz-key': 'service-cred' } });
    server.handler = (_req, res) => res.writeHead(200, { 'x-user-id': 'u-42', 'x-tenant': 'acme', 'x-evil': 'injected', 'set-cookie': 'a=b' }).end('{}');

    const result = await client.check(request());
    expect(result).toEqual({ allowed: true, headers: { 'x-user-id': 'u-42', 'x-tenant': 'acme' } });

    const [seen] = server.seen;
    expect(seen!.method).toBe('POST');
    expect(seen!.url).toBe('/authz/check?v=1');
    expect(seen!.headers['content-type']).toBe('application/json');
    expect(seen!.headers['x-authz-key']).toBe('service-cred');
    expect(seen!.body).toEqual(request());
  });

  it('denies on 403 with the JSON body\'s reason and the service\'s status', async () => {
    const { server, client } = await setup();
    server.handler = (_req, res) => res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ reason: 'tool search is not for you' }));
    expect(await client.check(request())).toEqual({ allowed: false, status: 403, reason: 'tool search is not for you' });
  });

  it('denies on any 4xx with a plain-text reason, made single-line and cut to 200 chars', async () => {
    const { server, client } = await setup();
    server.handler = (_req, res) => res.writeHead(401, { 'content-type': 'text/plain' }).end(`line one\nline two ${'x'.repeat(500)}`);
    const result = await client.check(request());
    expect(result.allowed).toBe(false);
    if (result.allowed) return;
    expect(result.status).toBe(401);
    expect(result.reason.startsWith('line one line two xxx')).toBe(true);
    expect(result.reason).toHaveLength(200);
  });

  it('denies with a generic reason when the 4xx body is empty', async () => {
    const { server, client } = await setup();
    server.handler = (_req, res) => res.writeHead(429).end();
    expect(await client.check(request())).toEqual({ allowed: false, status: 429, reason: 'denied by external authorizer' });
  });

  it('reuses keep-alive connections across checks', async () => {
    const { server, client } = await setup();
    for (let i = 0; i < 10; i++) expect((await client.check(request(`t${i}`))).allowed).toBe(true);
    expect(server.seen).toHaveLength(10);
    // undici may open a second socket while the first is still settling; never one per check.
    expect(server.connections).toBeLessThanOrEqual(2);
  });
});

describe('ExtAuthzClient: the caller\'s credentials never reach the service', () => {
  it('drops authorization, cookie, proxy-authorization and session id headers and identity bearer fields', async () => {
    const { server, client } = await setup();
    await client.check(
      request('search', {
        headers: { Authorization: 'Bearer caller-jwt', cookie: 'sid=caller-cookie', 'Proxy-Authorization': 'Basic caller-proxy', 'Mcp-Session-Id': 'caller-sealed-session', 'x-team': 'blue' },
        identity: { subject: 'alice', bearer: 'caller-bearer-token', accessToken: 'caller-access-token' },
      }),
    );
    const [seen] = server.seen;
    expect(seen!.headers.authorization).toBeUndefined();
    expect(seen!.headers.cookie).toBeUndefined();
    expect(seen!.headers['proxy-authorization']).toBeUndefined();
    for (const secret of ['caller-jwt', 'caller-cookie', 'caller-proxy', 'caller-sealed-session', 'caller-bearer-token', 'caller-access-token']) {
      expect(seen!.raw).not.toContain(secret);
    }
    expect(seen!.body.headers).toEqual({ 'x-team': 'blue' });
    expect(seen!.body.identity).toEqual({ subject: 'alice' });
  });
});

describe('ExtAuthzClient: an unavailable authorizer', () => {
  it('fails closed when the service is down', async () => {
    const client = new ExtAuthzClient({ url: await deadUrl(), timeoutMs: 2000, failOpen: false });
    cleanups.push(() => client.close());
    const result = await client.check(request());
    expect(result.allowed).toBe(false);
    if (result.allowed) return;
    expect(result.status).toBe(403);
    expect(result.reason).toBe('external authorizer unavailable: ECONNREFUSED');
  });

  it('fails open when the service is down and failOpen is set', async () => {
    const client = new ExtAuthzClient({ url: await deadUrl(), timeoutMs: 2000, failOpen: true });
    cleanups.push(() => client.close());
    expect(await client.check(request())).toEqual({ allowed: true, headers: {} });
  });

  it('denies when the service does not answer within the timeout', async () => {
    const { server, client } = await setup({ timeoutMs: 150 });
    server.handler = () => {
      // Never answers: the client's budget, not the server, ends the exchange.
    };
    expect(await client.check(request())).toEqual({ allowed: false, status: 403, reason: 'external authorizer unavailable: no answer within 150ms' });
  });

  it('denies when the service stalls mid-body past the timeout', async () => {
    const { server, client } = await setup({ timeoutMs: 150 });
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"partial":');
    };
    expect(await client.check(request())).toEqual({ allowed: false, status: 403, reason: 'external authorizer unavailable: no answer within 150ms' });
  });

  it('denies on 5xx, and allows on 5xx only with failOpen', async () => {
    const closed = await setup();
    closed.server.handler = (_req, res) => res.writeHead(500).end('boom');
    expect(await closed.client.check(request())).toEqual({ allowed: false, status: 403, reason: 'external authorizer unavailable: status 500' });

    const open = await setup({ failOpen: true });
    open.server.handler = (_req, res) => res.writeHead(503).end();
    expect(await open.client.check(request())).toEqual({ allowed: true, headers: {} });
  });

  it('treats statuses outside the protocol as unavailable, not as allow', async () => {
    const { server, client } = await setup();
    server.handler = (_req, res) => res.writeHead(302, { location: '/elsewhere' }).end();
    expect(await client.check(request())).toEqual({ allowed: false, status: 403, reason: 'external authorizer unavailable: unexpected status 302' });
  });
});

describe('ExtAuthzClient: decision cache', () => {
  it('answers a repeated check from the cache when cacheTtlMs is set, whatever the key order', async () => {
    const { server, client } = await setup({ cacheTtlMs: 60_000, allowedResponseHeaders: ['x-user-id'] });
    server.handler = (_req, res) => res.writeHead(200, { 'x-user-id': 'u-1' }).end();
    const first = await client.check(request());
    const reordered: CheckRequest = {
      mcp: { arguments: { limit: 5, q: 'hello' }, tool: 'search', method: 'tools/call' },
      identity: { scopes: ['notes:read'], issuer: 'https://issuer.example', subject: 'alice' },
      headers: { accept: 'application/json', 'x-team': 'blue' },
      path: '/mcp',
      method: 'POST',
    };
    const second = await client.check(reordered);
    expect(second).toEqual(first);
    expect(server.seen).toHaveLength(1);

    await client.check(request('other-tool'));
    expect(server.seen).toHaveLength(2);
  });

  it('caches denials from the service too', async () => {
    const { server, client } = await setup({ cacheTtlMs: 60_000 });
    server.handler = (_req, res) => res.writeHead(403).end('{"reason":"no"}');
    await client.check(request());
    expect(await client.check(request())).toEqual({ allowed: false, status: 403, reason: 'no' });
    expect(server.seen).toHaveLength(1);
  });

  it('does not cache when cacheTtlMs is unset', async () => {
    const { server, client } = await setup();
    await client.check(request());
    await client.check(request());
    expect(server.seen).toHaveLength(2);
  });

  it('does not cache an outage', async () => {
    const { server, client } = await setup({ cacheTtlMs: 60_000 });
    server.handler = (_req, res) => res.writeHead(500).end();
    expect((await client.check(request())).allowed).toBe(false);
    server.handler = (_req, res) => res.writeHead(200).end();
    expect((await client.check(request())).allowed).toBe(true);
    expect(server.seen).toHaveLength(2);
  });

  it('is bounded: the least recently used entry is evicted', async () => {
    const { server, client } = await setup({ cacheTtlMs: 60_000, maxCacheEntries: 2 });
    await client.check(request('a'));
    await client.check(request('b'));
    await client.check(request('a')); // hit: a becomes most recent
    await client.check(request('c')); // evicts b
    expect(server.seen).toHaveLength(3);
    await client.check(request('a')); // still cached
    expect(server.seen).toHaveLength(3);
    await client.check(request('b')); // was evicted
    expect(server.seen).toHaveLength(4);
  });
});

describe('ExtAuthzClient: injected dispatcher', () => {
  it('sends through it and leaves it open on close', async () => {
    const server = new AuthzServer();
    const url = await server.listen();
    cleanups.push(() => server.close());
    const agent = new Agent();
    cleanups.push(() => agent.close());

    const client = new ExtAuthzClient({ url, timeoutMs: 2000, failOpen: false }, agent);
    expect((await client.check(request())).allowed).toBe(true);
    await client.close();
    expect(agent.closed).toBe(false);
    expect(server.seen).toHaveLength(1);
  });
});
