import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { connectClient, NODE, startGateway, STDIO_FIXTURE, type RunningGateway } from './helpers.ts';

/** Every page of a list, following the gateway's cursors. */
async function listAll(client: Client, method: 'tools' | 'prompts' | 'resources' | 'resourceTemplates'): Promise<Array<Record<string, any>>> {
  const items: Array<Record<string, any>> = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page: any =
      method === 'tools'
        ? await client.listTools(cursor ? { cursor } : {})
        : method === 'prompts'
          ? await client.listPrompts(cursor ? { cursor } : {})
          : method === 'resources'
            ? await client.listResources(cursor ? { cursor } : {})
            : await client.listResourceTemplates(cursor ? { cursor } : {});
    items.push(...page[method]);
    cursor = page.nextCursor;
    pages++;
  } while (cursor && pages < 50);
  return items;
}

describe('federation of an HTTP and a stdio server', () => {
  let alpha: Fixture;
  let gw: RunningGateway;
  let client: Client;

  beforeAll(async () => {
    alpha = await startFixtureServer({
      name: 'alpha',
      tools: ['search', 'fetch', 'summarize'],
      prompts: ['review'],
      resources: ['file:///a.txt', 'file:///b.txt'],
      resourceTemplates: ['file:///docs/{name}'],
      pageSize: 2,
      completions: true,
    });
    gw = await startGateway([
      { name: 'alpha', transport: 'streamable-http', url: alpha.url },
      { name: 'beta', transport: 'stdio', command: NODE, args: [STDIO_FIXTURE], env: { FIXTURE_NAME: 'beta', FIXTURE_TOOLS: 'echo,search' } },
    ]);
    ({ client } = await connectClient(gw.url));
  });

  afterAll(async () => {
    await client?.close();
    await gw?.stop();
    await alpha?.close();
  });

  it('answers initialize with the gateway identity and the union of capabilities', () => {
    expect(client.getServerVersion()?.name).toBe('switchboard');
    const caps = client.getServerCapabilities()!;
    expect(caps.tools).toBeDefined();
    expect(caps.prompts).toBeDefined();
    expect(caps.resources?.subscribe).toBe(true);
    expect(caps.completions).toBeDefined();
  });

  it('merges tools from both backends across pages, prefixed, with every field passed through', async () => {
    const tools = await listAll(client, 'tools');
    expect(tools.map((t) => t.name).sort()).toEqual(['alpha__fetch', 'alpha__search', 'alpha__summarize', 'beta__crash', 'beta__echo', 'beta__search'].sort());
    const search = tools.find((t) => t.name === 'alpha__search')!;
    expect(search.annotations).toEqual({ readOnlyHint: true });
    expect(search.outputSchema).toBeDefined();
    expect(search.icons).toEqual([{ src: 'https://example.invalid/icon.png' }]);
    expect(search._meta).toEqual({ 'fixture/origin': 'alpha' });
    expect(search.execution).toEqual({ taskSupport: 'optional' });
  });

  it('paginates with gateway cursors: the first page holds the first page of each backend', async () => {
    const first = await client.listTools();
    expect(first.nextCursor).toBeTypeOf('string');
    expect(first.tools.filter((t) => t.name.startsWith('alpha__'))).toHaveLength(2);
    const second = await client.listTools({ cursor: first.nextCursor! });
    expect(second.tools.map((t) => t.name)).toEqual(['alpha__summarize']);
    expect(second.nextCursor).toBeUndefined();
  });

  it('routes tools/call to the owning backend with the upstream name', async () => {
    const a = await client.callTool({ name: 'alpha__search', arguments: { text: 'x' } });
    expect(a.content).toEqual([{ type: 'text', text: 'alpha:search:{"text":"x"}' }]);
    expect(a.structuredContent).toEqual({ server: 'alpha', tool: 'search', args: { text: 'x' } });
    const b = await client.callTool({ name: 'beta__search', arguments: { text: 'y' } });
    expect(b.content).toEqual([{ type: 'text', text: 'beta:search:{"text":"y"}' }]);
    const call = alpha.received.filter((m) => m.method === 'tools/call').at(-1)!;
    expect((call.params as any).name).toBe('search');
  });

  it('answers an unknown tool with a JSON-RPC error', async () => {
    await expect(client.callTool({ name: 'gamma__search', arguments: {} })).rejects.toThrow(/Unknown tool: gamma__search/);
    await expect(client.callTool({ name: 'nosuchtool', arguments: {} })).rejects.toThrow(/Unknown tool/);
  });

  it('routes prompts and completions by name', async () => {
    const prompts = await listAll(client, 'prompts');
    expect(prompts.map((p) => p.name)).toEqual(['alpha__review']);
    const got = await client.getPrompt({ name: 'alpha__review', arguments: { topic: 'gateways' } });
    expect(JSON.stringify(got.messages)).toContain('alpha:review:gateways');
    const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'alpha__review' }, argument: { name: 'topic', value: 'a' } });
    expect(completion.completion.values).toEqual(['alpha', 'beta']);
  });

  it('maps resource URIs reversibly, including templates', async () => {
    const resources = await listAll(client, 'resources');
    expect(resources.map((r) => r.uri)).toEqual(['alpha__file:///a.txt', 'alpha__file:///b.txt']);
    const read = await client.readResource({ uri: 'alpha__file:///b.txt' });
    expect(read.contents[0]).toMatchObject({ uri: 'alpha__file:///b.txt', text: 'alpha:file:///b.txt' });
    const templates = await listAll(client, 'resourceTemplates');
    expect(templates.map((t) => t.uriTemplate)).toEqual(['alpha__file:///docs/{name}']);
    const fromTemplate = await client.readResource({ uri: 'alpha__file:///docs/readme' });
    expect(fromTemplate.contents[0]).toMatchObject({ uri: 'alpha__file:///docs/readme' });
    await client.subscribeResource({ uri: 'alpha__file:///a.txt' });
    expect(alpha.subscriptions.at(-1)).toMatchObject({ action: 'subscribe', uri: 'file:///a.txt' });
  });

  it('sends the client its real capabilities and no client credentials upstream', async () => {
    const init = alpha.initializeParams.at(-1) as any;
    expect(init.clientInfo.name).toBe('test-client');
    const call = alpha.received.find((m) => m.method === 'tools/call')!;
    expect(call.headers.authorization).toBeUndefined();
    expect(call.headers['mcp-session-id']).toBeTypeOf('string');
  });
});

describe('prefix modes', () => {
  let one: Fixture;
  let two: Fixture;

  beforeAll(async () => {
    one = await startFixtureServer({ name: 'one', tools: ['shared', 'only_one'], pageSize: 1 });
    two = await startFixtureServer({ name: 'two', tools: ['shared', 'only_two'] });
  });

  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  const backends = () => [
    { name: 'one', transport: 'streamable-http' as const, url: one.url },
    { name: 'two', transport: 'streamable-http' as const, url: two.url },
  ];

  it('conditional: prefixes only the clashing names, and routes both kinds', async () => {
    const gw = await startGateway(backends(), { toolPrefix: 'conditional' });
    const { client } = await connectClient(gw.url);
    try {
      const { tools, nextCursor } = await client.listTools();
      expect(nextCursor).toBeUndefined();
      expect(tools.map((t) => t.name).sort()).toEqual(['one__shared', 'only_one', 'only_two', 'two__shared']);
      const r = await client.callTool({ name: 'two__shared', arguments: {} });
      expect((r.content as any)[0].text).toBe('two:shared:{}');
      const u = await client.callTool({ name: 'only_one', arguments: {} });
      expect((u.content as any)[0].text).toBe('one:only_one:{}');
    } finally {
      await client.close();
      await gw.stop();
    }
  });

  it('never: a clash is an error naming both backends, never silent shadowing', async () => {
    const gw = await startGateway(backends(), { toolPrefix: 'never' });
    const { client } = await connectClient(gw.url);
    try {
      await expect(client.listTools()).rejects.toThrow(/"shared" is offered by backends "one" and "two"/);
      await expect(client.callTool({ name: 'shared', arguments: {} })).rejects.toThrow(/"shared" is offered by backends "one" and "two"/);
    } finally {
      await client.close();
      await gw.stop();
    }
  });

  it('never: without a clash names pass through and calls are routed by listing', async () => {
    const gw = await startGateway([{ name: 'two', transport: 'streamable-http', url: two.url }], { toolPrefix: 'never' });
    const { client } = await connectClient(gw.url);
    try {
      // Call before any list: the gateway lists on its own to find the owner.
      const r = await client.callTool({ name: 'only_two', arguments: { text: 'hi' } });
      expect((r.content as any)[0].text).toBe('two:only_two:{"text":"hi"}');
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['only_two', 'shared']);
    } finally {
      await client.close();
      await gw.stop();
    }
  });
});
