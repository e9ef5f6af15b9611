import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { INITIALIZE, post, startGateway, waitFor } from './helpers.ts';
import { readEvents, type Event } from './support/sse.ts';
import { MAX_LEGACY_SESSIONS_PER_CALLER } from '../src/mcp/legacy-endpoint.ts';

describe('downstream transports beside streamable HTTP', () => {
  let upstream: Fixture;

  beforeAll(async () => {
    upstream = await startFixtureServer({ name: 'up', tools: ['echo'], resources: ['file:///r.txt'] });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it('legacy HTTP+SSE clients reach the same federation at <path>/sse', async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }], { legacySse: true });
    const client = new Client({ name: 'old-client', version: '1' });
    try {
      await client.connect(new SSEClientTransport(new URL(`${gw.url}/sse`)));
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['up__echo']);
      const r = await client.callTool({ name: 'up__echo', arguments: { text: 'old' } });
      expect((r.content as any)[0].text).toBe('up:echo:{"text":"old"}');
      const read = await client.readResource({ uri: 'up__file:///r.txt' });
      expect(read.contents[0]).toMatchObject({ uri: 'up__file:///r.txt' });
      await expect(client.callTool({ name: 'up__nothing', arguments: {} })).rejects.toThrow(/Unknown tool/);
    } finally {
      await client.close();
      await gw.stop();
    }
  });

  it('a legacy session is initialized once, and the upstream sessions it opened end with its stream', async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }], { legacySse: true });
    await waitFor(() => upstream.sessions() === 0, 5_000, 'earlier sessions to end');
    try {
      const abort = new AbortController();
      const res = await fetch(`${gw.url}/sse`, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
      let seen: Event[] = [];
      const reading = readEvents(res, (events) => ((seen = events), events.length >= 3), abort);
      await waitFor(() => seen.length >= 1, 5_000, 'the endpoint event');
      const messages = new URL(seen[0]!.data, gw.url).href;
      expect((await post(messages, INITIALIZE)).status).toBe(202);
      await waitFor(() => seen.length >= 2, 5_000, 'the initialize result');
      expect(JSON.parse(seen[1]!.data).result.capabilities).toBeDefined();
      // A second initialize would open upstream sessions that the stream's end would not close.
      expect((await post(messages, { ...INITIALIZE, id: 2 })).status).toBe(202);
      await reading;
      expect(JSON.parse(seen[2]!.data)).toMatchObject({ id: 2, error: { message: 'the session is initialized already' } });
      expect(upstream.sessions()).toBe(1);
      // The stream is gone (the reader dropped it): so is the upstream session.
      await waitFor(() => upstream.sessions() === 0, 5_000, "the upstream session to end with the client's stream");
    } finally {
      await gw.stop();
    }
  });

  it(`one caller holds at most ${MAX_LEGACY_SESSIONS_PER_CALLER} legacy streams; others still get theirs, and a closed one frees its place`, async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }], {
      legacySse: true,
      authentication: { mode: 'optional', apiKeys: { keys: [{ name: 'other', key: 'k-0123456789abcdef-other' }] } },
    });
    // Responses are kept: undici cancels the body of one that is garbage-collected unread.
    const streams: Array<{ abort: AbortController; res: Response }> = [];
    const open = async (headers: Record<string, string> = {}): Promise<number> => {
      const abort = new AbortController();
      const res = await fetch(`${gw.url}/sse`, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
      if (res.status === 200) streams.push({ abort, res });
      else await res.text();
      return res.status;
    };
    try {
      for (let i = 0; i < MAX_LEGACY_SESSIONS_PER_CALLER; i++) expect(await open()).toBe(200);
      const refused = await fetch(`${gw.url}/sse`, { headers: { accept: 'text/event-stream' } });
      expect(refused.status).toBe(429);
      expect(await refused.text()).toContain('too many open SSE sessions for this caller');
      expect(await open({ 'x-api-key': 'k-0123456789abcdef-other' })).toBe(200);
      streams.shift()!.abort.abort();
      await waitFor(async () => (await open()) === 200, 5_000, 'a closed stream to free its place');
    } finally {
      for (const s of streams) s.abort.abort();
      await gw.stop();
    }
  });

  it('an unknown legacy session is 404 and the paths exist only when enabled', async () => {
    const on = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }], { legacySse: true });
    const off = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }]);
    try {
      expect((await post(`${on.url}/message?sessionId=nope`, INITIALIZE)).status).toBe(404);
      expect((await fetch(`${off.url}/sse`)).status).toBe(404);
    } finally {
      await on.stop();
      await off.stop();
    }
  });

  it('stateless routes: no session id, each request stands alone, upstream sessions do not pile up', async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }], { stateless: true });
    // Sessions of the legacy test may still be closing.
    await waitFor(() => upstream.sessions() === 0, 5_000, 'earlier sessions to end');
    try {
      const init = await post(gw.url, INITIALIZE);
      expect(init.status).toBe(200);
      expect(init.headers.get('mcp-session-id')).toBeNull();
      expect(init.json.result.capabilities.tools).toBeDefined();
      for (let i = 0; i < 3; i++) {
        const r = await post(gw.url, { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'up__echo', arguments: { text: `n${i}` } } }, { 'mcp-protocol-version': '2025-11-25' });
        expect(r.status).toBe(200);
        expect(r.text).toContain(`up:echo:{\\"text\\":\\"n${i}\\"}`);
      }
      // Every upstream session the gateway opened for those requests was ended.
      await waitFor(() => upstream.sessions() === 0, 5_000, 'every ephemeral upstream session to end');
      expect(upstream.received.filter((m) => m.method === 'initialize').length).toBeGreaterThanOrEqual(4);
      expect((await fetch(gw.url, { headers: { accept: 'text/event-stream' } })).status).toBe(405);
    } finally {
      await gw.stop();
    }
  });
});
