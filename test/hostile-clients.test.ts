import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { INITIALIZE, NODE, post, rawSession, startGateway, STDIO_FIXTURE, waitFor } from './helpers.ts';
import { readEvents, type Event } from './support/sse.ts';

/** Sends raw bytes on a TCP connection, slowly if asked; resolves with what came back. */
function rawExchange(port: number, chunks: string[], delayMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d.toString()));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    let i = 0;
    const next = (): void => {
      if (i >= chunks.length || socket.destroyed) return;
      socket.write(chunks[i++]!);
      setTimeout(next, delayMs);
    };
    next();
  });
}

describe('hostile clients', () => {
  let up: Fixture;

  beforeAll(async () => {
    up = await startFixtureServer({ name: 'up', tools: ['echo'] });
  });

  afterAll(async () => {
    await up?.close();
  });

  it('too many headers → 431; a client sending its headers byte by byte is cut off (408) and others are still served', async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }], {}, { limits: { headersTimeout: '500ms', requestTimeout: '1s', maxHeaders: 20, shutdownGrace: 200 } });
    try {
      const headers: Record<string, string> = {};
      for (let i = 0; i < 30; i++) headers[`x-h${i}`] = 'v';
      expect((await post(gw.url, INITIALIZE, headers)).status).toBe(431);
      const port = Number(new URL(gw.url).port);
      const request = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: ${'a'.repeat(40)}\r\n\r\n`;
      const before = up.received.length;
      const slow = rawExchange(port, [...request], 50);
      // While the slow client dribbles, the gateway keeps serving.
      expect((await post(gw.url, INITIALIZE)).status).toBe(200);
      expect(await slow).toMatch(/^HTTP\/1\.1 408/);
      expect(up.received.length).toBe(before + 2); // only the probe's initialize + initialized
    } finally {
      await gw.stop();
    }
  });

  it('a client that leaves in the middle of its body costs nothing: no upstream call, the gateway serves on', async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }]);
    try {
      const headers = { 'mcp-session-id': await rawSession(gw.url), 'mcp-protocol-version': '2025-11-25' };
      const before = up.received.length;
      const port = Number(new URL(gw.url).port);
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'up__echo', arguments: { text: 'x'.repeat(500) } } });
      await new Promise<void>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(
            `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n` +
              `Mcp-Session-Id: ${headers['mcp-session-id']}\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 100)}`,
          );
          setTimeout(() => socket.destroy(), 100);
        });
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
      const res = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'up__echo', arguments: { text: 'after' } } }, headers);
      expect(res.json.result.content[0].text).toContain('after');
      // Only the second call reached the upstream (before it, the guard may list the tools it checks arguments against).
      const calls = up.received.slice(before).filter((m) => m.method === 'tools/call');
      expect(calls.map((m) => (m.params as { arguments: { text: string } }).arguments.text)).toEqual(['after']);
    } finally {
      await gw.stop();
    }
  });

  it('X-Forwarded-For is believed only from a trusted proxy', async () => {
    const backends = [{ name: 'up', transport: 'streamable-http' as const, url: up.url }];
    const route = { authorization: { rules: [{ name: 'from-partner', when: 'source.address == "203.0.113.9"' }] } };
    const trusting = await startGateway(backends, route, { trustedProxies: ['127.0.0.1'] });
    const untrusting = await startGateway(backends, route);
    try {
      const xff = { 'x-forwarded-for': '198.51.100.1, 203.0.113.9' };
      expect((await post(trusting.url, INITIALIZE, xff)).json.result).toBeDefined();
      expect((await post(untrusting.url, INITIALIZE, xff)).json.error.code).toBe(403);
    } finally {
      await trusting.stop();
      await untrusting.stop();
    }
  });

  it('an idle server stream is closed after the idle timeout', async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }], {}, { limits: { streamIdleTimeout: '300ms', shutdownGrace: 200 } });
    try {
      const sid = await rawSession(gw.url);
      const started = Date.now();
      const res = await fetch(gw.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      await res.text();
      expect(Date.now() - started).toBeLessThan(9_000);
    } finally {
      await gw.stop();
    }
  });

  it('200 concurrent clients using identical JSON-RPC ids each get their own response', async () => {
    const gw = await startGateway([
      { name: 'up', transport: 'streamable-http', url: up.url },
      { name: 'proc', transport: 'stdio', command: NODE, args: [STDIO_FIXTURE], env: { FIXTURE_NAME: 'proc', FIXTURE_TOOLS: 'echo' }, scope: 'shared' },
    ]);
    try {
      const sessions = await Promise.all(Array.from({ length: 200 }, () => rawSession(gw.url)));
      const results = await Promise.all(
        sessions.map(async (sid, i) => {
          const tool = i % 2 === 0 ? 'up__echo' : 'proc__echo';
          const res = await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: { text: `client-${i}` } } }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
          return { i, text: res.text };
        }),
      );
      for (const { i, text } of results) {
        expect(text).toContain(`client-${i}\\"`);
        expect(text).toContain('"id":1');
      }
    } finally {
      await gw.stop();
    }
  });

  it("a client cannot answer a shared process's request made for another client's call", async () => {
    const gw = await startGateway([{ name: 'proc', transport: 'stdio', command: NODE, args: [STDIO_FIXTURE], env: { FIXTURE_NAME: 'proc', FIXTURE_TOOLS: 'ask' }, scope: 'shared' }]);
    try {
      const h = (sid: string) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
      const [alice, bob] = [h(await rawSession(gw.url)), h(await rawSession(gw.url))];
      const abort = new AbortController();
      const call = await fetch(gw.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...alice },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'proc__ask', arguments: {} } }),
        signal: abort.signal,
      });
      let seen: Event[] = [];
      const reading = readEvents(call, (events) => ((seen = events), events.some((e) => JSON.parse(e.data).result !== undefined)), abort);
      await waitFor(() => seen.length >= 1, 10_000, "the process's request to reach the client");
      const asked = JSON.parse(seen[0]!.data);
      expect(asked.method).toBe('test/ask');
      // The process's ids are small and the same for every client of it: Bob can guess Alice's.
      expect((await post(gw.url, { jsonrpc: '2.0', id: asked.id, result: { who: 'bob' } }, bob)).status).toBe(202);
      expect((await post(gw.url, { jsonrpc: '2.0', id: asked.id, result: { who: 'alice' } }, alice)).status).toBe(202);
      await reading;
      expect(JSON.parse(seen.at(-1)!.data).result.content[0].text).toBe('answered by alice');
    } finally {
      await gw.stop();
    }
  });

  it("a client's cancel reaches a shared process under the id the process knows the call by", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shared-cancel-'));
    const calls = join(dir, 'calls');
    const gw = await startGateway([{ name: 'proc', transport: 'stdio', command: NODE, args: [STDIO_FIXTURE], env: { FIXTURE_NAME: 'proc', FIXTURE_TOOLS: 'wait', FIXTURE_CALL_FILE: calls }, scope: 'shared' }]);
    try {
      const headers = { 'mcp-session-id': await rawSession(gw.url), 'mcp-protocol-version': '2025-11-25' };
      const call = post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'proc__wait', arguments: {} } }, headers);
      // Cancelled in a request of its own, once the process runs the call.
      await waitFor(() => existsSync(calls) && readFileSync(calls, 'utf8').includes('waiting'), 10_000, 'the process to run the call');
      await post(gw.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'test' } }, headers);
      expect(await call).toMatchObject({ status: 200, text: '' });
      await waitFor(() => existsSync(calls) && readFileSync(calls, 'utf8').includes('cancelled'), 10_000, 'the process to see the cancel');
    } finally {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rotated keys: old tokens open with previousKeys; tampered, truncated and foreign tokens are 404 with no upstream call', async () => {
    const key1 = 'first-session-key-0123456789-0123456789';
    const key2 = 'second-session-key-0123456789-012345678';
    const backends = [{ name: 'up', transport: 'streamable-http' as const, url: up.url }];
    const old = await startGateway(backends, {}, { session: { key: key1 } });
    const rotated = await startGateway(backends, {}, { session: { key: key2, previousKeys: [key1] } });
    const fresh = await startGateway(backends, {}, { session: { key: key2 } });
    try {
      const sid = await rawSession(old.url);
      const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
      const h = (s: string) => ({ 'mcp-session-id': s, 'mcp-protocol-version': '2025-11-25' });
      expect((await post(rotated.url, ping, h(sid))).status).toBe(200);
      expect((await post(fresh.url, ping, h(sid))).status).toBe(404);
      const before = up.received.length;
      const flipped = sid.slice(0, 20) + (sid[20] === 'A' ? 'B' : 'A') + sid.slice(21);
      for (const bad of [flipped, sid.slice(0, -5), sid.slice(0, 30), `${sid}AAAA`, 'x'.repeat(9000), 'not base64!']) {
        const res = await post(rotated.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'up__echo', arguments: {} } }, h(bad));
        expect(res.status, bad.slice(0, 10)).toBe(404);
      }
      expect(up.received.length).toBe(before);
    } finally {
      await old.stop();
      await rotated.stop();
      await fresh.stop();
    }
  });
});
