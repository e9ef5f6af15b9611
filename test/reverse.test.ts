import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startReverseServer, type ReverseServer } from './fixtures/reverse-server.ts';
import { connectClient, INITIALIZE, post, rawSession, startGateway, waitFor, type RunningGateway } from './helpers.ts';
import { finalMessage } from './support/sse.ts';
import { startMutableServer, type MutableServer } from './fixtures/mutable-server.ts';

describe('server-to-client traffic across a federation', () => {
  let left: ReverseServer;
  let right: ReverseServer;
  let gw: RunningGateway;

  beforeAll(async () => {
    left = await startReverseServer('left');
    right = await startReverseServer('right');
    gw = await startGateway([
      { name: 'left', transport: 'streamable-http', url: left.url },
      { name: 'right', transport: 'streamable-http', url: right.url },
    ]);
  });

  afterAll(async () => {
    await gw?.stop();
    await left?.close();
    await right?.close();
  });

  /** A client whose server stream both upstreams have: their tools ask the client on it. */
  async function connectListening(capabilities: Record<string, unknown>): Promise<Awaited<ReturnType<typeof connectClient>>> {
    const before = [left.streamsOpened, right.streamsOpened];
    const connected = await connectClient(gw.url, capabilities);
    await waitFor(() => left.streamsOpened > before[0]! && right.streamsOpened > before[1]!, 5_000, "the upstreams to have the session's server stream");
    return connected;
  }

  it('sampling requests from two upstreams with the same ids reach the client and go back to the right upstream', async () => {
    const { client } = await connectListening({ sampling: {} });
    // Each upstream saw the client's own capabilities, so it offers what depends on them.
    expect(left.clientCapabilities.at(-1)).toMatchObject({ sampling: {} });
    expect(right.clientCapabilities.at(-1)).toMatchObject({ sampling: {} });
    const seenIds: unknown[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, async (req, extra) => {
      seenIds.push(extra.requestId);
      const text = (req.params.messages[0]!.content as { text: string }).text;
      // Answer late, so both requests are pending at once.
      await new Promise((r) => setTimeout(r, 50));
      return { role: 'assistant', model: 'test', content: { type: 'text', text: `sampled(${text})` } };
    });
    const [a, b] = await Promise.all([
      client.callTool({ name: 'left__ask_model', arguments: { prompt: 'p1' } }),
      client.callTool({ name: 'right__ask_model', arguments: { prompt: 'p2' } }),
    ]);
    expect((a.content as any)[0].text).toBe('left got sampled(left:p1)');
    expect((b.content as any)[0].text).toBe('right got sampled(right:p2)');
    // Both upstreams used their own first id; the client saw two distinct ones.
    expect(new Set(seenIds).size).toBe(2);
    await client.close();
  });

  it('elicitation and roots requests are relayed too', async () => {
    const { client } = await connectListening({ elicitation: {}, roots: { listChanged: true } });
    client.setRequestHandler(ElicitRequestSchema, async (req) => ({ action: 'accept', content: { answer: `yes to ${req.params.message}` } }));
    client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: 'file:///work', name: 'work' }] }));
    const e = await client.callTool({ name: 'right__ask_user', arguments: { question: 'ok?' } });
    expect((e.content as any)[0].text).toBe('right heard accept:yes to right:ok?');
    const r = await client.callTool({ name: 'left__roots', arguments: {} });
    expect((r.content as any)[0].text).toBe('left sees file:///work');
    await client.close();
  });

  it('concurrent progress streams stay with their own calls', async () => {
    const { client } = await connectClient(gw.url);
    const seen = { left: [] as number[], right: [] as number[] };
    await Promise.all([
      client.callTool({ name: 'left__progress', arguments: { steps: 4, delayMs: 5 } }, undefined, { onprogress: (p) => seen.left.push(p.progress) }),
      client.callTool({ name: 'right__progress', arguments: { steps: 6, delayMs: 3 } }, undefined, { onprogress: (p) => seen.right.push(p.progress) }),
    ]);
    expect(seen.left).toEqual([1, 2, 3, 4]);
    expect(seen.right).toEqual([1, 2, 3, 4, 5, 6]);
    await client.close();
  });

  it('a client cancel reaches the upstream that owns the request', async () => {
    const { client } = await connectClient(gw.url);
    const controller = new AbortController();
    const call = client.callTool({ name: 'right__wait', arguments: { ms: 10_000 } }, undefined, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 200));
    controller.abort('changed my mind');
    await expect(call).rejects.toThrow();
    await waitFor(() => right.cancelled.includes('wait'), 5_000, 'the upstream to see the cancel');
    expect(left.cancelled).toEqual([]);
    await client.close();
  });

  it('a cancel names its request by id and id type: "7" is not 7', async () => {
    const sid = await rawSession(gw.url);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const call = (id: string | number, name: string) => post(gw.url, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { ms: 3_000 } } }, headers);
    const leftBefore = left.cancelled.length;
    const rightBefore = right.cancelled.length;
    const byString = call('7', 'right__wait');
    const byNumber = call(7, 'left__wait');
    await new Promise((r) => setTimeout(r, 200));
    await post(gw.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: '7', reason: 'test' } }, headers);
    await waitFor(() => right.cancelled.length > rightBefore, 5_000, 'the upstream of request "7" to see the cancel');
    // The cancelled one ends with no response, its upstream exchange given up.
    expect(await byString).toMatchObject({ status: 200, text: '' });
    // The numeric 7 runs to its end, uncancelled.
    expect(finalMessage((await byNumber).text).result.content[0].text).toBe('waited');
    expect(left.cancelled.length).toBe(leftBefore);
  });

  it("the client's server stream outlives an upstream restart: once a call recovered the session, it is opened again on the new one", async () => {
    const { client } = await connectListening({ roots: { listChanged: true } });
    client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: 'file:///work', name: 'work' }] }));
    const roots = async () => ((await client.callTool({ name: 'left__roots', arguments: {} })).content as any)[0].text;
    expect(await roots()).toBe('left sees file:///work');
    const opened = left.streamsOpened;
    await left.restart();
    // A safe call opens a new upstream session in place of the one the restart forgot.
    expect(((await client.callTool({ name: 'left__peek', arguments: {} })).content as any)[0].text).toBe('left peeked');
    await waitFor(() => left.streamsOpened > opened, 10_000, 'the server stream to be opened again on the new upstream session');
    // The upstream's requests outside a call's own stream reach the client again.
    expect(await roots()).toBe('left sees file:///work');
    await client.close();
  });

  it('an upstream restarted mid-session: safe calls recover, unsafe ones report the expiry and do not run', async () => {
    const { client } = await connectClient(gw.url);
    expect(((await client.callTool({ name: 'left__peek', arguments: {} })).content as any)[0].text).toBe('left peeked');
    await left.restart();
    // Read-only tool: a new upstream session is opened and the call retried.
    expect(((await client.callTool({ name: 'left__peek', arguments: {} })).content as any)[0].text).toBe('left peeked');
    // The session is now a new one; the next call on it just works.
    expect(((await client.callTool({ name: 'left__write', arguments: {} })).content as any)[0].text).toBe('left wrote');
    const writes = left.writes;
    await left.restart();
    await expect(client.callTool({ name: 'left__write', arguments: {} })).rejects.toThrow(/upstream session expired.*not retried/);
    expect(left.writes).toBe(writes);
    // Lists recover as well.
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('left__write');
    await client.close();
  });
});

describe('MCP tasks through the gateway', () => {
  let a: ReverseServer;
  let b: ReverseServer;
  let gw: RunningGateway;

  beforeAll(async () => {
    a = await startReverseServer('a');
    b = await startReverseServer('b');
    gw = await startGateway([
      { name: 'a', transport: 'streamable-http', url: a.url },
      { name: 'b', transport: 'streamable-http', url: b.url },
    ]);
  });

  afterAll(async () => {
    await gw?.stop();
    await a?.close();
    await b?.close();
  });

  it('task ids are routable: create, get, result and list go to the backend that owns the task', async () => {
    const sid = await rawSession(gw.url);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const init = await post(gw.url, { ...INITIALIZE, id: 'caps' });
    expect(init.json.result.capabilities.tasks).toMatchObject({ list: {}, cancel: {}, requests: { tools: { call: {} } } });

    const created = await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'b__long_job', arguments: { label: 'x' }, task: { ttl: 60_000 } } }, h);
    const taskId: string = finalMessage(created.text).result.task.taskId;
    expect(taskId.startsWith('b__')).toBe(true);

    const got = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tasks/get', params: { taskId } }, h);
    expect(finalMessage(got.text).result.taskId).toBe(taskId);

    await waitFor(async () => finalMessage((await post(gw.url, { jsonrpc: '2.0', id: 3, method: 'tasks/get', params: { taskId } }, h)).text).result.status === 'completed');
    const result = await post(gw.url, { jsonrpc: '2.0', id: 4, method: 'tasks/result', params: { taskId } }, h);
    expect(finalMessage(result.text).result.content[0].text).toBe('b finished x');

    const listed = await post(gw.url, { jsonrpc: '2.0', id: 5, method: 'tasks/list' }, h);
    expect(finalMessage(listed.text).result.tasks.map((t: any) => t.taskId)).toContain(taskId);

    const bogus = await post(gw.url, { jsonrpc: '2.0', id: 6, method: 'tasks/get', params: { taskId: 'nobody__123' } }, h);
    expect(finalMessage(bogus.text).error.message).toMatch(/Unknown task/);
  });

  it("a task's result is inspected by its backend's guard, as the call's would have been", async () => {
    const sid = await rawSession(gw.url);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const created = await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'a__long_job', arguments: { label: 'AKIAABCDEFGHIJKLMNOP' }, task: { ttl: 60_000 } } }, h);
    const taskId: string = finalMessage(created.text).result.task.taskId;
    await waitFor(async () => finalMessage((await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tasks/get', params: { taskId } }, h)).text).result.status === 'completed');
    const result = await post(gw.url, { jsonrpc: '2.0', id: 3, method: 'tasks/result', params: { taskId } }, h);
    expect(result.text).not.toContain('AKIA');
    expect(finalMessage(result.text).result.content[0].text).toBe('a finished [REDACTED:aws-access-key-id]');
  });
});

describe('a cancel that comes before the request left the gateway', () => {
  let upstream: MutableServer;
  let gw: RunningGateway;

  beforeAll(async () => {
    upstream = await startMutableServer();
    // Unprefixed names: the gateway learns which backend has a tool from the lists.
    gw = await startGateway([{ name: 'm', transport: 'streamable-http', url: upstream.url }], { toolPrefix: 'never' });
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  /** Sends `request` on a new session and cancels it while the upstream holds the tool list the gateway asked for: what the client got, and the session. */
  async function cancelWhileListing(request: { jsonrpc: '2.0'; id: number; method: string; params?: unknown }): Promise<{ status: number; type: string | null; text: string; headers: Record<string, string> }> {
    const sid = await rawSession(gw.url);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const before = upstream.heldLists;
    const release = upstream.holdLists();
    try {
      const sent = post(gw.url, request, headers);
      await waitFor(() => upstream.heldLists > before, 5_000, 'the gateway to ask for the tool list');
      await post(gw.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: request.id, reason: 'test' } }, headers);
      // Answered while the list is still held upstream.
      const { status, headers: got, text } = await sent;
      return { status, type: got.get('content-type'), text, headers };
    } finally {
      release();
    }
  }

  it('stops the listing the gateway waits on to route it, and the call never reaches the upstream', async () => {
    // The session has not listed its tools yet: routing "read" needs the upstream's list first.
    const call = { jsonrpc: '2.0' as const, id: 11, method: 'tools/call', params: { name: 'read', arguments: { path: '/etc/hosts' } } };
    const { status, type, text, headers } = await cancelWhileListing(call);
    // No response for a cancelled request: a stream that ends with nothing in it.
    expect([status, type, text]).toEqual([200, 'text/event-stream', '']);
    expect(upstream.calls).not.toContain('read');
    // The session goes on: the next call lists afresh and runs.
    const next = await post(gw.url, { ...call, id: 12 }, headers);
    expect(finalMessage(next.text).result.content[0].text).toBe('fine (/etc/hosts)');
  });

  it('gives a cancelled tools/list no answer, not a list without the backends the cancel cut short', async () => {
    const { status, type, text, headers } = await cancelWhileListing({ jsonrpc: '2.0', id: 21, method: 'tools/list' });
    expect([status, type, text]).toEqual([200, 'text/event-stream', '']);
    const next = await post(gw.url, { jsonrpc: '2.0', id: 22, method: 'tools/list' }, headers);
    expect(finalMessage(next.text).result.tools.map((t: { name: string }) => t.name)).toContain('read');
  });
});
