import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startReverseServer, type ReverseServer } from './fixtures/reverse-server.ts';
import { connectClient, startGateway, waitFor, type RunningGateway } from './helpers.ts';

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

  it('sampling requests from two upstreams with the same ids reach the client and go back to the right upstream', async () => {
    const { client } = await connectClient(gw.url, { sampling: {} });
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
    const { client } = await connectClient(gw.url, { elicitation: {}, roots: { listChanged: true } });
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
