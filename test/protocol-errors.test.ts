import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { INITIALIZE, post, rawSession, startGateway, type RunningGateway } from './helpers.ts';

describe('bad input gets a clear error and breaks nothing', () => {
  let upstream: Fixture;
  let gw: RunningGateway;
  let sid: string;
  const headers = () => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });

  beforeAll(async () => {
    upstream = await startFixtureServer({ name: 'up', tools: ['echo'] });
    gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }], {}, { limits: { maxBodyBytes: 4096, shutdownGrace: 500 } });
    sid = await rawSession(gw.url);
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  /** After every bad request, the same session still works. */
  async function stillServes(): Promise<void> {
    const res = await post(gw.url, { jsonrpc: '2.0', id: 'probe', method: 'tools/call', params: { name: 'up__echo', arguments: { text: 'ok' } } }, headers());
    expect(res.status).toBe(200);
    expect(res.text).toContain('up:echo:{\\"text\\":\\"ok\\"}');
  }

  it('malformed JSON → 400 with JSON-RPC -32700', async () => {
    const res = await post(gw.url, '{"jsonrpc":"2.0",', headers());
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe(-32700);
    await stillServes();
  });

  it('not JSON-RPC → 400 with -32600', async () => {
    for (const body of ['[]', '42', '{"jsonrpc":"1.0","id":1,"method":"ping"}', '{"jsonrpc":"2.0","id":{},"method":"ping"}', '{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}']) {
      const res = await post(gw.url, body, headers());
      expect(res.status, body).toBe(400);
      expect(res.json.error.code, body).toBe(-32600);
    }
    await stillServes();
  });

  it('unknown method → -32601', async () => {
    const res = await post(gw.url, { jsonrpc: '2.0', id: 7, method: 'tools/explode' }, headers());
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: 7, error: { code: -32601 } });
    await stillServes();
  });

  it('a body over the limit → 413, declared or streamed', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(10_000) } });
    const res = await post(gw.url, big, headers());
    expect(res.status).toBe(413);
    const streamed = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers() },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode('x'.repeat(1000)));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    await stillServes();
  });

  it('sessions: missing → 400, unknown or forged → 404, unsupported protocol version → 400', async () => {
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
    expect((await post(gw.url, ping)).status).toBe(400);
    expect((await post(gw.url, ping, { 'mcp-session-id': 'not-a-session' })).status).toBe(404);
    const tampered = sid.slice(0, -4) + (sid.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await post(gw.url, ping, { 'mcp-session-id': tampered })).status).toBe(404);
    expect((await post(gw.url, ping, { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' })).status).toBe(400);
    expect((await post(gw.url, ping, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' })).status).toBe(200);
    await stillServes();
  });

  it('negotiates the protocol version down, and offers the latest for an unknown one', async () => {
    const older = await post(gw.url, { ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion: '2025-03-26' } });
    expect(older.json.result.protocolVersion).toBe('2025-03-26');
    const future = await post(gw.url, { ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion: '2099-01-01' } });
    expect(future.json.result.protocolVersion).toBe('2025-11-25');
    const upstreamInit = upstream.initializeParams.at(-2) as any;
    expect(upstreamInit.protocolVersion).toBe('2025-03-26');
  });

  it('notifications and responses are accepted with 202', async () => {
    const res = await post(gw.url, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, headers());
    expect(res.status).toBe(202);
    await new Promise((r) => setTimeout(r, 100));
    expect(upstream.received.some((m) => m.method === 'notifications/roots/list_changed')).toBe(true);
    const stray = await post(gw.url, { jsonrpc: '2.0', id: 'nobody', result: {} }, headers());
    expect(stray.status).toBe(202);
  });

  it('wrong content type, accept or method are refused at the HTTP level', async () => {
    expect((await post(gw.url, '{}', { ...headers(), 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(gw.url, '{}', { ...headers(), accept: 'text/html' })).status).toBe(406);
    const put = await fetch(gw.url, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect((await fetch(gw.url.replace('/mcp', '/other'), { method: 'POST' })).status).toBe(404);
  });

  it('Origin and Host are checked (DNS rebinding)', async () => {
    expect((await post(gw.url, INITIALIZE, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await post(gw.url, INITIALIZE, { origin: 'http://localhost:6274' })).status).toBe(200);
    const rebinding = await new Promise<number>((resolve, reject) => {
      // fetch will not let us set Host; a raw request does.
      import('node:http').then(({ request }) => {
        const u = new URL(gw.url);
        const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end(JSON.stringify(INITIALIZE));
      });
    });
    expect(rebinding).toBe(403);
  });

  it('a deleted session is gone: 404 afterwards, and the upstream session is ended too', async () => {
    const own = await rawSession(gw.url);
    const del = await fetch(gw.url, { method: 'DELETE', headers: { 'mcp-session-id': own, 'mcp-protocol-version': '2025-11-25' } });
    expect(del.status).toBe(200);
    const after = await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': own, 'mcp-protocol-version': '2025-11-25' });
    expect(after.status).toBe(404);
    await stillServes();
  });

  it("a DELETE ends the session's open server streams", async () => {
    const own = await rawSession(gw.url);
    const headers = { 'mcp-session-id': own, 'mcp-protocol-version': '2025-11-25' };
    const stream = await fetch(gw.url, { headers: { ...headers, accept: 'text/event-stream' }, signal: AbortSignal.timeout(20_000) });
    expect(stream.status).toBe(200);
    expect((await fetch(gw.url, { method: 'DELETE', headers })).status).toBe(200);
    // The stream ends (its body is read to the end) instead of idling on with keep-alives.
    await stream.text();
  });
});
