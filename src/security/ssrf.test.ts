import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../../test/support/certs.ts';
import { defaultSsrfPolicy, guardedAgent, guardedFetch, isAddressAllowed, SsrfError, type SsrfPolicy } from './ssrf.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A real HTTP(S) server on a loopback address that counts every request it receives. */
class CountingServer {
  readonly requests: IncomingMessage[] = [];
  handler: Handler = (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  port = 0;
  connections = 0;
  readonly server: Server;

  constructor(server: Server = createServer()) {
    this.server = server;
    server.on('connection', () => this.connections++);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.requests.push(req);
      this.handler(req, res);
    });
  }

  async listen(host: string): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
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

async function serve(host = '127.0.0.1', handler?: Handler): Promise<CountingServer> {
  const server = new CountingServer();
  if (handler) server.handler = handler;
  try {
    await server.listen(host);
  } catch (err) {
    throw new Error(`could not bind a test server on ${host} (Linux routes all of 127.0.0.0/8 to lo; this host does not): ${(err as Error).message}`);
  }
  cleanups.push(() => server.close());
  return server;
}

function agentFor(policy: SsrfPolicy, options?: Parameters<typeof guardedAgent>[1]): Agent {
  const agent = guardedAgent(policy, options);
  cleanups.push(() => agent.destroy());
  return agent;
}

/** Loopback 127.0.0.1 only, plain http: what the tests' servers need. */
const testPolicy = (overrides: Partial<SsrfPolicy> = {}): SsrfPolicy =>
  defaultSsrfPolicy({ allowedSchemes: ['http'], allowedRanges: ['127.0.0.1/32'], ...overrides });

async function refusal(promise: Promise<unknown>): Promise<SsrfError> {
  const err = await promise.then(
    () => {
      throw new Error('expected an SsrfError, got a response');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SsrfError);
  return err as SsrfError;
}

describe('isAddressAllowed', () => {
  const policy = defaultSsrfPolicy();

  it.each([
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'cloud metadata'],
    ['::1', 'loopback v6'],
    ['fc00::1', 'unique local'],
    ['fe80::1', 'link-local v6'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['0.0.0.0', 'unspecified'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.1', 'reserved (TEST-NET-1)'],
    ['240.0.0.1', 'reserved (class E)'],
    ['::', 'unspecified v6'],
    ['ff02::1', 'multicast v6'],
    ['fe80::1%lo', 'link-local v6 with zone'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['::127.0.0.1', 'deprecated IPv4-compatible'],
    ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
    ['64:ff9b:1::1', 'local-use NAT64'],
    ['2002:7f00:1::1', '6to4 of 127.0.0.1'],
    ['2002:a00:1::1', '6to4 of 10.0.0.1'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo with client 127.0.0.1'],
    ['fd00:ec2::254', 'AWS metadata over IPv6'],
    ['not-an-address', 'not an IP'],
    ['localhost', 'a host name, not an address'],
  ])('blocks %s (%s) by default', (address) => {
    expect(isAddressAllowed(address, policy)).toBe(false);
  });

  it.each([
    ['8.8.8.8'],
    ['2001:4860:4860::8888'],
    ['::ffff:8.8.8.8'],
    ['64:ff9b::808:808'],
    ['2002:808:808::1'],
  ])('allows public unicast %s (classifier only, no traffic)', (address) => {
    expect(isAddressAllowed(address, policy)).toBe(true);
  });

  it('allowedRanges opens exactly the listed range', () => {
    const loop = defaultSsrfPolicy({ allowedRanges: ['127.0.0.1/32'] });
    expect(isAddressAllowed('127.0.0.1', loop)).toBe(true);
    expect(isAddressAllowed('::ffff:127.0.0.1', loop)).toBe(true);
    expect(isAddressAllowed('127.0.0.2', loop)).toBe(false);
    expect(isAddressAllowed('::1', loop)).toBe(false);
    expect(isAddressAllowed('10.0.0.1', loop)).toBe(false);

    const cluster = defaultSsrfPolicy({ allowedRanges: ['10.0.0.0/8', 'fd00::/8'] });
    expect(isAddressAllowed('10.42.0.7', cluster)).toBe(true);
    expect(isAddressAllowed('fd12::7', cluster)).toBe(true);
    expect(isAddressAllowed('192.168.1.1', cluster)).toBe(false);
  });

  it('a broad range does not open the metadata address; naming the exact host does', () => {
    const linkLocal = defaultSsrfPolicy({ allowedRanges: ['169.254.0.0/16'] });
    expect(isAddressAllowed('169.254.1.1', linkLocal)).toBe(true);
    expect(isAddressAllowed('169.254.169.254', linkLocal)).toBe(false);
    expect(isAddressAllowed('169.254.169.254', defaultSsrfPolicy({ allowedRanges: ['169.254.169.254/32'] }))).toBe(true);
  });
});

describe('defaultSsrfPolicy', () => {
  it('defaults to https only, no ranges, 3 redirects, 5 s, 1 MiB', () => {
    expect(defaultSsrfPolicy()).toEqual({
      allowedSchemes: ['https'],
      allowedRanges: [],
      maxRedirects: 3,
      timeoutMs: 5000,
      maxResponseBytes: 1024 * 1024,
    });
  });

  it('rejects a range that is not CIDR and a scheme it cannot fetch', () => {
    expect(() => defaultSsrfPolicy({ allowedRanges: ['127.0.0.1'] })).toThrow(/not a CIDR range/);
    expect(() => defaultSsrfPolicy({ allowedRanges: ['10.0.0.0/33'] })).toThrow(/not a CIDR range/);
    expect(() => defaultSsrfPolicy({ allowedSchemes: ['ftp'] })).toThrow(/not supported/);
    expect(() => defaultSsrfPolicy({ maxRedirects: -1 })).toThrow(/maxRedirects/);
  });
});

describe('guardedFetch', () => {
  it('fetches an allowed loopback server and reports status, headers, body and final url', async () => {
    const server = await serve('127.0.0.1', (req, res) => {
      if (req.url === '/start') return res.writeHead(302, { location: '/final' }).end();
      res.writeHead(201, { 'content-type': 'application/json', 'x-trace': 'abc' }).end('{"ok":true}');
    });
    const res = await guardedFetch(`http://127.0.0.1:${server.port}/start`, testPolicy());
    expect(res.status).toBe(201);
    expect(res.headers['x-trace']).toBe('abc');
    expect(JSON.parse(res.body)).toEqual({ ok: true });
    expect(res.url).toBe(`http://127.0.0.1:${server.port}/final`);
    expect(server.requests.map((r) => r.url)).toEqual(['/start', '/final']);
  });

  it('refuses a redirect to 127.0.0.2 and sends it nothing', async () => {
    const target = await serve('127.0.0.2');
    const origin = await serve('127.0.0.1', (_req, res) => res.writeHead(302, { location: `http://127.0.0.2:${target.port}/` }).end());

    const err = await refusal(guardedFetch(`http://127.0.0.1:${origin.port}/`, testPolicy()));
    expect(err.reason).toBe('address');
    expect(err.address).toBe('127.0.0.2');
    expect(err.url).toBe(`http://127.0.0.2:${target.port}/`);
    expect(err.message).toContain(`http://127.0.0.2:${target.port}/`);
    expect(err.message).toContain('resolves to 127.0.0.2, a loopback address, which the SSRF policy does not allow');
    expect(origin.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });

  it('refuses a host name that resolves to a blocked address before connecting', async () => {
    const server = await serve('127.0.0.1');
    const policy = defaultSsrfPolicy({ allowedSchemes: ['http'] }); // loopback not allowed

    const err = await refusal(guardedFetch(`http://localhost:${server.port}/`, policy));
    expect(err.reason).toBe('address');
    expect(err.address).toBe('127.0.0.1');
    expect(err.message).toContain('localhost resolves to 127.0.0.1, a loopback address, which the SSRF policy does not allow');
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a redirect to a host name that resolves to a blocked address', async () => {
    const target = await serve('127.0.0.2');
    const origin = await serve('127.0.0.1', (_req, res) => res.writeHead(307, { location: `http://internal.test:${target.port}/admin` }).end());
    const policy = testPolicy();
    const agent = agentFor(policy, { lookup: async () => [{ address: '127.0.0.2', family: 4 }] });

    const err = await refusal(guardedFetch(`http://127.0.0.1:${origin.port}/`, policy, { agent }));
    expect(err.address).toBe('127.0.0.2');
    expect(err.url).toBe(`http://internal.test:${target.port}/admin`);
    expect(err.message).toContain('internal.test resolves to 127.0.0.2, a loopback address');
    expect(target.connections).toBe(0);
    expect(target.requests).toHaveLength(0);
  });

  it('refuses IPv6 and oddly written IPv4 literals by the address they denote', async () => {
    const server = await serve('127.0.0.1');
    const strict = defaultSsrfPolicy({ allowedSchemes: ['http'] });
    for (const url of [`http://[::1]:${server.port}/`, `http://0x7f000001:${server.port}/`, `http://127.1:${server.port}/`, `http://[::ffff:127.0.0.1]:${server.port}/`]) {
      const err = await refusal(guardedFetch(url, strict));
      expect(err.reason).toBe('address');
    }
    expect(server.connections).toBe(0);
  });

  it('refuses a scheme the policy does not allow, and file: and ftp:', async () => {
    const server = await serve('127.0.0.1');
    const httpsOnly = defaultSsrfPolicy({ allowedRanges: ['127.0.0.1/32'] });

    const http = await refusal(guardedFetch(`http://127.0.0.1:${server.port}/`, httpsOnly));
    expect(http.reason).toBe('scheme');
    expect(http.message).toContain("the scheme 'http' is not allowed");
    expect((await refusal(guardedFetch('file:///etc/passwd', testPolicy()))).reason).toBe('scheme');
    expect((await refusal(guardedFetch(`ftp://127.0.0.1:${server.port}/`, testPolicy()))).reason).toBe('scheme');
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a redirect to a scheme the policy does not allow', async () => {
    const server = await serve('127.0.0.1', (_req, res) => res.writeHead(301, { location: 'file:///etc/passwd' }).end());
    const err = await refusal(guardedFetch(`http://127.0.0.1:${server.port}/`, testPolicy()));
    expect(err.reason).toBe('scheme');
    expect(err.url).toBe('file:///etc/passwd');
  });

  it('refuses after maxRedirects redirects', async () => {
    const server = await serve('127.0.0.1', (req, res) => {
      const n = Number(req.url!.slice(1) || '0');
      res.writeHead(302, { location: `/${n + 1}` }).end();
    });
    const err = await refusal(guardedFetch(`http://127.0.0.1:${server.port}/`, testPolicy({ maxRedirects: 2 })));
    expect(err.reason).toBe('redirects');
    expect(err.message).toContain('too many redirects');
    expect(server.requests.map((r) => r.url)).toEqual(['/', '/1', '/2']);
  });

  it('refuses an oversized body, streamed or declared', async () => {
    const big = 'x'.repeat(64 * 1024);
    const server = await serve('127.0.0.1', (req, res) => {
      if (req.url === '/declared') return res.writeHead(200, { 'content-length': String(big.length * 4) }).end(big.repeat(4));
      res.writeHead(200); // chunked, no length: counted while streaming
      for (let i = 0; i < 4; i++) res.write(big);
      res.end();
    });
    const policy = testPolicy({ maxResponseBytes: 100_000 });

    const streamed = await refusal(guardedFetch(`http://127.0.0.1:${server.port}/streamed`, policy));
    expect(streamed.reason).toBe('size');
    expect(streamed.message).toContain('maxResponseBytes (100000 bytes)');
    const declared = await refusal(guardedFetch(`http://127.0.0.1:${server.port}/declared`, policy));
    expect(declared.reason).toBe('size');

    const fits = await guardedFetch(`http://127.0.0.1:${server.port}/streamed`, testPolicy({ maxResponseBytes: big.length * 4 }));
    expect(fits.body).toHaveLength(big.length * 4);
  });

  it('gives up on a server that never answers, or stalls mid-body', async () => {
    const server = await serve('127.0.0.1', (req, res) => {
      if (req.url === '/stall-body') res.writeHead(200).write('partial');
      // otherwise: never respond
    });
    const policy = testPolicy({ timeoutMs: 300 });

    const silent = await refusal(guardedFetch(`http://127.0.0.1:${server.port}/silent`, policy));
    expect(silent.reason).toBe('timeout');
    expect(silent.message).toContain('timeoutMs (300 ms)');
    expect((await refusal(guardedFetch(`http://127.0.0.1:${server.port}/stall-body`, policy))).reason).toBe('timeout');
  });

  it('drops credentials on a cross-origin redirect and turns 303 into GET', async () => {
    const other = await serve('127.0.0.1', (_req, res) => res.end('other'));
    const origin = await serve('127.0.0.1', (_req, res) => res.writeHead(303, { location: `http://127.0.0.1:${other.port}/landing` }).end());

    const res = await guardedFetch(`http://127.0.0.1:${origin.port}/submit`, testPolicy(), {
      method: 'POST',
      headers: { authorization: 'Bearer secret', 'content-type': 'application/json', 'x-keep': '1' },
      body: '{}',
    });
    expect(res.body).toBe('other');
    expect(origin.requests[0]!.headers.authorization).toBe('Bearer secret');
    const hop = other.requests[0]!;
    expect(hop.method).toBe('GET');
    expect(hop.headers.authorization).toBeUndefined();
    expect(hop.headers['content-type']).toBeUndefined();
    expect(hop.headers['x-keep']).toBe('1');
  });

  it('accepts only agents made by guardedAgent', async () => {
    const plain = new Agent();
    cleanups.push(() => plain.destroy());
    await expect(guardedFetch('http://127.0.0.1:1/', testPolicy(), { agent: plain })).rejects.toThrow(/guardedAgent/);
  });

  it('refuses through a shared guarded agent too', async () => {
    const server = await serve('127.0.0.1');
    const agent = agentFor(defaultSsrfPolicy({ allowedSchemes: ['http'] }));
    const err = await refusal(guardedFetch(`http://localhost:${server.port}/x`, testPolicy(), { agent }));
    expect(err.url).toBe(`http://localhost:${server.port}/x`);
    expect(server.requests).toHaveLength(0);
  });
});

describe('guardedAgent', () => {
  it('refuses a blocked literal IP without connecting', async () => {
    const server = await serve('127.0.0.2');
    const agent = agentFor(testPolicy());

    const err = await refusal(request(`http://127.0.0.2:${server.port}/`, { dispatcher: agent }));
    expect(err.address).toBe('127.0.0.2');
    expect(err.message).toContain('resolves to 127.0.0.2, a loopback address');
    expect(server.connections).toBe(0); // refused before connect, not just before the request
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a host name that resolves to a blocked address', async () => {
    const server = await serve('127.0.0.1');
    const agent = agentFor(defaultSsrfPolicy({ allowedSchemes: ['http'] }));
    const err = await refusal(request(`http://localhost:${server.port}/`, { dispatcher: agent }));
    expect(err.address).toBe('127.0.0.1');
    expect(err.url).toBe(`http://localhost:${server.port}`);
    expect(server.requests).toHaveLength(0);
  });

  it('lets an allowed literal IP through', async () => {
    const server = await serve('127.0.0.1');
    const res = await request(`http://127.0.0.1:${server.port}/`, { dispatcher: agentFor(testPolicy()) });
    expect(await res.body.text()).toBe('ok');
  });

  it('checks every resolved address: one blocked address refuses the host', async () => {
    const server = await serve('127.0.0.1');
    const agent = agentFor(testPolicy(), {
      lookup: async () => [
        { address: '127.0.0.1', family: 4 },
        { address: '127.0.0.2', family: 4 },
      ],
    });
    const err = await refusal(request(`http://multi.test:${server.port}/`, { dispatcher: agent }));
    expect(err.address).toBe('127.0.0.2');
    expect(err.message).toContain('multi.test resolves to 127.0.0.2');
    expect(server.requests).toHaveLength(0);
  });

  it('connects to the address it checked, with one lookup and the original Host header', async () => {
    const server = await serve('127.0.0.1');
    const lookups: string[] = [];
    const agent = agentFor(testPolicy(), {
      // pinned.test is a reserved name no real resolver answers: a second lookup would fail.
      lookup: async (host) => {
        lookups.push(host);
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    const res = await request(`http://pinned.test:${server.port}/`, { dispatcher: agent });
    expect(await res.body.text()).toBe('ok');
    expect(lookups).toEqual(['pinned.test']);
    expect(server.requests[0]!.headers.host).toBe(`pinned.test:${server.port}`);
    expect(server.requests[0]!.socket.localAddress).toBe('127.0.0.1');
  });

  it('tries the next checked address when one refuses the connection', async () => {
    const server = await serve('127.0.0.1');
    const agent = agentFor(testPolicy({ allowedRanges: ['127.0.0.0/8'] }), {
      // Nothing listens on 127.0.0.3 at this port: connection refused, then 127.0.0.1.
      lookup: async () => [
        { address: '127.0.0.3', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ],
    });
    const res = await request(`http://fallback.test:${server.port}/`, { dispatcher: agent });
    expect(await res.body.text()).toBe('ok');
  });

  describe('over TLS', () => {
    let ca: TestCa;
    beforeAll(() => {
      ca = createTestCa();
    });
    afterAll(() => ca.remove());

    async function tlsServer(): Promise<CountingServer> {
      const leaf = ca.server('pinned', ['DNS:api.pinned.test']);
      const server = new CountingServer(createTlsServer({ cert: leaf.cert, key: leaf.key }));
      await server.listen('127.0.0.1');
      cleanups.push(() => server.close());
      return server;
    }

    it('verifies the certificate against the host name while connecting to the pinned address', async () => {
      const server = await tlsServer();
      const policy = defaultSsrfPolicy({ allowedRanges: ['127.0.0.1/32'] }); // https only
      const agent = agentFor(policy, { tls: { ca: ca.cert }, lookup: async () => [{ address: '127.0.0.1', family: 4 }] });

      const res = await guardedFetch(`https://api.pinned.test:${server.port}/jwks.json`, policy, { agent });
      expect(res.body).toBe('ok');
      expect(server.requests[0]!.headers.host).toBe(`api.pinned.test:${server.port}`);
    });

    it('fails when the certificate does not name the host, even though the address is allowed', async () => {
      const server = await tlsServer();
      const policy = defaultSsrfPolicy({ allowedRanges: ['127.0.0.1/32'] });
      const agent = agentFor(policy, { tls: { ca: ca.cert }, lookup: async () => [{ address: '127.0.0.1', family: 4 }] });

      await expect(guardedFetch(`https://other.test:${server.port}/`, policy, { agent })).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      expect(server.requests).toHaveLength(0);
    });
  });
});
