import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { INITIALIZE, post, startGateway, type RunningGateway } from './helpers.ts';
import { replyMessages } from './support/sse.ts';

/** JSON-RPC batches: MCP 2025-03-26 allowed them in a POST, 2025-06-18 took them out. */
describe('JSON-RPC batches', () => {
  let upstream: Fixture;
  let gw: RunningGateway;

  beforeAll(async () => {
    upstream = await startFixtureServer({ name: 'up', tools: ['echo'] });
    gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: upstream.url }]);
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  async function session(protocolVersion: string): Promise<Record<string, string>> {
    const res = await post(gw.url, { ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion } });
    expect(res.json.result.protocolVersion).toBe(protocolVersion);
    return { 'mcp-session-id': res.headers.get('mcp-session-id')!, 'mcp-protocol-version': protocolVersion };
  }

  const echo = (id: number, text: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'up__echo', arguments: { text } } });
  const byId = (messages: any[]) => Object.fromEntries(messages.map((m) => [String(m.id), m]));

  it('on 2025-03-26, each message is handled and the responses share one stream', async () => {
    const h = await session('2025-03-26');
    const before = upstream.received.length;
    const res = await post(gw.url, [echo(1, 'a'), { jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, echo(2, 'b'), { nonsense: true }, { ...INITIALIZE, id: 3 }], h);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const answers = byId(replyMessages(res.text));
    expect(answers['1'].result.content[0].text).toBe('up:echo:{"text":"a"}');
    expect(answers['2'].result.content[0].text).toBe('up:echo:{"text":"b"}');
    expect(answers['null'].error.code).toBe(-32600);
    expect(answers['3'].error.message).toMatch(/initialize cannot be part of a batch/);
    const reached = upstream.received.slice(before).map((m) => m.method);
    expect(reached.filter((m) => m === 'tools/call')).toHaveLength(2);
    expect(reached).toContain('notifications/roots/list_changed');
  });

  it('a client that takes JSON only gets one array; a batch with no request gets 202', async () => {
    const h = await session('2025-03-26');
    const res = await post(gw.url, [echo(1, 'x'), echo(2, 'y')], { ...h, accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(Array.isArray(res.json)).toBe(true);
    expect(byId(res.json)['2'].result.content[0].text).toBe('up:echo:{"text":"y"}');
    const quiet = await post(gw.url, [{ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }], h);
    expect(quiet.status).toBe(202);
    // Without requests, a refused member makes it a bad request, as it would alone.
    const refused = await post(gw.url, [{ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, { jsonrpc: '2.0', method: 'tools/call', params: { name: 'up__echo' } }], h);
    expect(refused.status).toBe(400);
    expect(refused.json[0].error.code).toBe(-32600);
  });

  it('later revisions refuse them, and an empty or oversized batch is an invalid request', async () => {
    const h = await session('2025-11-25');
    const before = upstream.received.length;
    const res = await post(gw.url, [echo(1, 'a')], h);
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: -32600, message: expect.stringMatching(/JSON-RPC batches are not part of MCP 2025-11-25/) });
    expect(upstream.received.length).toBe(before);
    const batching = await session('2025-03-26');
    const empty = await post(gw.url, [], batching);
    expect(empty.status).toBe(400);
    expect(empty.json.error.code).toBe(-32600);
    const sent = upstream.received.length;
    const huge = await post(gw.url, Array.from({ length: 101 }, (_, i) => echo(i, 'x')), batching);
    expect(huge.status).toBe(400);
    expect(huge.json.error.message).toMatch(/at most 100 go in one/);
    expect(upstream.received.length).toBe(sent);
  });
});
