import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUtilityServer, type UtilityServerHandle } from '../src/demo/utility-server.ts';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const NOTES_SERVER = join(root, 'src/demo/notes-server.ts');
const STDIO_FIXTURE = join(root, 'test/fixtures/stdio-fixture.ts');

/**
 * The stdio servers are .ts files run by Node's type stripping. `./node_modules/.bin/vitest`
 * starts under whatever `node` is first on PATH (system Node 20 here), which cannot run them,
 * so fall back to the pinned Node 26 when the current runtime lacks type stripping.
 */
const TS_NODE = (process as { features?: { typescript?: unknown } }).features?.typescript
  ? process.execPath
  : join(root, 'node_modules/.bin/node');

function newClient(): Client {
  return new Client({ name: 'fixtures-test', version: '1.0.0' });
}

/** callTool's declared result is a union with the legacy `toolResult` shape, hence `unknown`. */
function textOf(result: unknown): string {
  const [first] = ((result as { content?: unknown }).content ?? []) as Array<{ type: string; text?: string }>;
  return first?.type === 'text' ? (first.text ?? '') : '';
}

function resourceText(result: { contents: Array<Record<string, unknown>> }): string {
  const text = result.contents[0]?.text;
  return typeof text === 'string' ? text : '';
}

/** Follows nextCursor until the server stops returning one. */
async function collectPages<T>(fetchPage: (cursor?: string) => Promise<{ items: T[]; nextCursor?: string | undefined }>) {
  const pages: T[][] = [];
  let cursor: string | undefined;
  do {
    const { items, nextCursor } = await fetchPage(cursor);
    pages.push(items);
    cursor = nextCursor;
  } while (cursor !== undefined);
  return { pages, all: pages.flat() };
}

describe('notes demo server (stdio)', () => {
  it('serves tools, resources and prompts, then exits when stdin closes', async () => {
    const transport = new StdioClientTransport({ command: TS_NODE, args: [NOTES_SERVER], stderr: 'ignore' });
    const client = newClient();
    await client.connect(transport);
    try {
      expect(client.getServerVersion()?.name).toBe('notes');

      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['add_note', 'delete_note', 'get_note', 'list_notes', 'search_notes']);
      const listNotes = tools.find((t) => t.name === 'list_notes');
      expect(listNotes?.annotations?.readOnlyHint).toBe(true);
      expect(listNotes?.outputSchema).toBeDefined();
      expect(tools.find((t) => t.name === 'delete_note')?.annotations?.destructiveHint).toBe(true);

      const listed = await client.callTool({ name: 'list_notes', arguments: {} });
      expect((listed.structuredContent as { notes: unknown[] }).notes).toHaveLength(3);

      const added = await client.callTool({ name: 'add_note', arguments: { title: 'Gateway', body: 'Routes calls', tags: ['Demo'] } });
      const { note } = added.structuredContent as { note: { id: string; tags: string[] } };
      expect(note.tags).toEqual(['demo']);
      const fetched = await client.callTool({ name: 'get_note', arguments: { id: note.id } });
      expect(fetched.structuredContent).toEqual({ note: expect.objectContaining({ id: note.id, title: 'Gateway' }) });

      const missing = await client.callTool({ name: 'get_note', arguments: { id: 'nope' } });
      expect(missing.isError).toBe(true);

      const found = await client.callTool({ name: 'search_notes', arguments: { query: 'audit' } });
      expect((found.structuredContent as { notes: unknown[] }).notes.length).toBeGreaterThan(0);

      const all = await client.readResource({ uri: 'notes://all' });
      expect(JSON.parse(resourceText(all))).toHaveLength(4);
      const one = await client.readResource({ uri: `notes://note/${note.id}` });
      expect(JSON.parse(resourceText(one)).title).toBe('Gateway');
      const { resources } = await client.listResources();
      expect(resources.map((r) => r.uri)).toContain(`notes://note/${note.id}`);
      const { resourceTemplates } = await client.listResourceTemplates();
      expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(['notes://note/{id}']);

      const prompt = await client.getPrompt({ name: 'summarize_notes', arguments: { tag: 'security' } });
      const message = prompt.messages[0];
      expect(message?.content.type === 'text' && message.content.text).toContain('Tool-level authorization');

      const deleted = await client.callTool({ name: 'delete_note', arguments: { id: note.id } });
      expect(deleted.isError).toBeFalsy();
    } finally {
      // The SDK closes stdin, waits 2s, then SIGTERMs: finishing well inside that window
      // shows the server exited on EOF by itself.
      const started = Date.now();
      await client.close();
      expect(Date.now() - started).toBeLessThan(1500);
    }
  });
});

describe('utility demo server (Streamable HTTP)', () => {
  let server: UtilityServerHandle;
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  beforeAll(async () => {
    server = await startUtilityServer({});
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    client = newClient();
    transport = new StreamableHTTPClientTransport(new URL(server.url));
    await client.connect(transport);
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('lists and calls tools', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      ['add', 'countdown', 'current_time', 'echo', 'hash_text', 'random_number', 'word_count'].sort(),
    );

    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe('hi');
    expect((await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })).structuredContent).toEqual({ sum: 5 });
    const hash = await client.callTool({ name: 'hash_text', arguments: { text: 'abc', algorithm: 'sha256' } });
    expect(textOf(hash)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const words = await client.callTool({ name: 'word_count', arguments: { text: 'one two\nthree' } });
    expect(words.structuredContent).toEqual({ words: 3, characters: 13, lines: 2 });
    const random = await client.callTool({ name: 'random_number', arguments: { min: 5, max: 5 } });
    expect(random.structuredContent).toEqual({ value: 5 });

    const paris = await client.callTool({ name: 'current_time', arguments: { timeZone: 'europe/paris' } });
    expect((paris.structuredContent as { timeZone: string }).timeZone).toBe('Europe/Paris');
    const bogus = await client.callTool({ name: 'current_time', arguments: { timeZone: 'Mars/Olympus' } });
    expect(bogus.isError).toBe(true);
  });

  it('reports countdown progress when given a progress token', async () => {
    const progress: Array<{ progress: number; total?: number }> = [];
    const result = await client.callTool({ name: 'countdown', arguments: { from: 3, delayMs: 5 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    expect(textOf(result)).toContain('Liftoff');
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);
    expect(progress.every((p) => p.total === 3)).toBe(true);
  });

  it('serves resources, a prompt and completions', async () => {
    const about = await client.readResource({ uri: 'utility://about' });
    expect(about.contents[0]?.mimeType).toBe('text/markdown');
    expect(resourceText(about)).toContain('# utility');

    const time = await client.readResource({ uri: 'utility://time/Asia%2FTokyo' });
    expect(JSON.parse(resourceText(time)).timeZone).toBe('Asia/Tokyo');

    const prompt = await client.getPrompt({ name: 'explain_code', arguments: { code: 'x = 1', language: 'python' } });
    const message = prompt.messages[0];
    expect(message?.content.type === 'text' && message.content.text).toContain('```python');

    const languages = await client.complete({
      ref: { type: 'ref/prompt', name: 'explain_code' },
      argument: { name: 'language', value: 'ty' },
    });
    expect(languages.completion.values).toEqual(['typescript']);
    const zones = await client.complete({
      ref: { type: 'ref/resource', uri: 'utility://time/{timeZone}' },
      argument: { name: 'timeZone', value: 'europe/par' },
    });
    expect(zones.completion.values).toContain('Europe/Paris');
  });

  it('answers 404 off /mcp and forgets a session after DELETE', async () => {
    expect((await fetch(server.url.replace(/\/mcp$/, '/elsewhere'))).status).toBe(404);

    const other = newClient();
    const otherTransport = new StreamableHTTPClientTransport(new URL(server.url));
    await other.connect(otherTransport);
    const sessionId = otherTransport.sessionId;
    expect(sessionId).toBeTruthy();
    await otherTransport.terminateSession();
    await other.close();

    const stale = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId! },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(stale.status).toBe(404);
  });
});

describe('fixture server', () => {
  let fixture: Fixture;
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  beforeAll(async () => {
    fixture = await startFixtureServer({
      name: 'alpha',
      tools: ['t1', 't2', 't3', 't4', 'boom'],
      prompts: ['p1', 'p2', 'p3'],
      resources: ['file:///a.txt', 'file:///b.txt', 'file:///c.txt'],
      resourceTemplates: ['file:///logs/{day}.log', 'file:///notes/{id}'],
      pageSize: 2,
      failTool: 'boom',
      slowToolMs: 20,
      completions: true,
    });
    client = newClient();
    transport = new StreamableHTTPClientTransport(new URL(fixture.url), {
      requestInit: { headers: { 'x-test-header': 'yes' } },
    });
    await client.connect(transport);
  });

  afterAll(async () => {
    await client?.close();
    await fixture?.close();
  });

  it('paginates every list with opaque cursors', async () => {
    const tools = await collectPages<Tool>(async (cursor) => {
      const r = await client.listTools(cursor ? { cursor } : {});
      return { items: r.tools, nextCursor: r.nextCursor };
    });
    expect(tools.pages.map((p) => p.length)).toEqual([2, 2, 2]);
    expect(tools.all.map((t) => t.name)).toEqual(['t1', 't2', 't3', 't4', 'boom', 'slow']);

    const prompts = await collectPages(async (cursor) => {
      const r = await client.listPrompts(cursor ? { cursor } : {});
      return { items: r.prompts, nextCursor: r.nextCursor };
    });
    expect(prompts.all.map((p) => p.name)).toEqual(['p1', 'p2', 'p3']);

    const resources = await collectPages(async (cursor) => {
      const r = await client.listResources(cursor ? { cursor } : {});
      return { items: r.resources, nextCursor: r.nextCursor };
    });
    expect(resources.pages).toHaveLength(2);
    expect(resources.all.map((r) => r.uri)).toEqual(['file:///a.txt', 'file:///b.txt', 'file:///c.txt']);

    const templates = await collectPages(async (cursor) => {
      const r = await client.listResourceTemplates(cursor ? { cursor } : {});
      return { items: r.resourceTemplates, nextCursor: r.nextCursor };
    });
    expect(templates.pages).toHaveLength(1);
    expect(templates.all.map((t) => t.uriTemplate)).toEqual(['file:///logs/{day}.log', 'file:///notes/{id}']);

    await expect(client.listTools({ cursor: 'not-a-cursor' })).rejects.toMatchObject({ code: -32602 });
    const firstToolsPage = await client.listTools();
    // A cursor is bound to its list.
    await expect(client.listPrompts({ cursor: firstToolsPage.nextCursor! })).rejects.toMatchObject({ code: -32602 });
  });

  it('describes tools with the full metadata set', async () => {
    const { tools } = await client.listTools();
    expect(tools[0]).toMatchObject({
      name: 't1',
      inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
      annotations: { readOnlyHint: true },
      icons: [{ src: 'https://example.invalid/icon.png' }],
      _meta: { 'fixture/origin': 'alpha' },
      execution: { taskSupport: 'optional' },
      outputSchema: { type: 'object' },
    });
  });

  it('echoes tool calls, fails the failTool and waits on slow', async () => {
    const result = await client.callTool({ name: 't1', arguments: { text: 'hi' } });
    expect(textOf(result)).toBe('alpha:t1:{"text":"hi"}');
    expect(result.structuredContent).toEqual({ server: 'alpha', tool: 't1', args: { text: 'hi' } });

    const failure = await client.callTool({ name: 'boom', arguments: {} }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(McpError);
    expect(failure).toMatchObject({ code: -32603 });
    expect((failure as Error).message).toContain('alpha failed');

    const started = Date.now();
    expect(textOf(await client.callTool({ name: 'slow', arguments: {} }))).toBe('alpha:slow:{}');
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
  });

  it('serves prompts, resources, subscriptions and completions', async () => {
    const prompt = await client.getPrompt({ name: 'p2', arguments: { topic: 'cats' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'alpha:p2:cats' });

    expect(resourceText(await client.readResource({ uri: 'file:///b.txt' }))).toBe('alpha:file:///b.txt');
    expect(resourceText(await client.readResource({ uri: 'file:///logs/monday.log' }))).toBe('alpha:file:///logs/monday.log');
    await expect(client.readResource({ uri: 'file:///missing' })).rejects.toMatchObject({ code: -32002 });

    await client.subscribeResource({ uri: 'file:///a.txt' });
    await client.unsubscribeResource({ uri: 'file:///a.txt' });
    expect(fixture.subscriptions.map((s) => s.action)).toEqual(['subscribe', 'unsubscribe']);
    expect(fixture.subscriptions[0]).toMatchObject({ uri: 'file:///a.txt', sessionId: transport.sessionId });

    const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'p1' }, argument: { name: 'topic', value: '' } });
    expect(completion.completion.values).toEqual(['alpha', 'beta']);
  });

  it('records what it received, with headers and session', () => {
    const init = fixture.received[0];
    expect(init?.method).toBe('initialize');
    expect(init?.sessionId).toBe(transport.sessionId);
    expect(init?.headers['x-test-header']).toBe('yes');
    expect(fixture.received[1]?.method).toBe('notifications/initialized');
    expect(fixture.received.filter((m) => m.method === 'tools/call').map((m) => (m.params as { name: string }).name)).toEqual([
      't1',
      'boom',
      'slow',
    ]);
    expect(fixture.received.slice(1).every((m) => m.sessionId === transport.sessionId)).toBe(true);
    expect(fixture.initializeParams).toHaveLength(1);
    expect(fixture.initializeParams[0]).toMatchObject({ clientInfo: { name: 'fixtures-test' }, capabilities: {} });
    expect(fixture.sessions()).toBe(1);
  });

  it('supports JSON responses and drops sessions on DELETE', async () => {
    const plain = await startFixtureServer({ name: 'beta', tools: ['ping'], jsonResponse: true });
    try {
      const c = newClient();
      const t = new StreamableHTTPClientTransport(new URL(plain.url));
      await c.connect(t);
      expect(c.getServerCapabilities()?.completions).toBeUndefined();
      expect(textOf(await c.callTool({ name: 'ping', arguments: { text: 'x' } }))).toBe('beta:ping:{"text":"x"}');
      expect(plain.sessions()).toBe(1);
      await t.terminateSession();
      await c.close();
      expect(plain.sessions()).toBe(0);
    } finally {
      await plain.close();
    }
  });
});

describe('stdio fixture', () => {
  it('echoes, records pids and crashes on demand', async () => {
    const pidFile = join(tmpdir(), `stdio-fixture-${process.pid}-${Date.now()}.pids`);
    const transport = new StdioClientTransport({
      command: TS_NODE,
      args: [STDIO_FIXTURE],
      env: { FIXTURE_NAME: 'stdio-a', FIXTURE_TOOLS: 'echo,shout', FIXTURE_PID_FILE: pidFile, FIXTURE_SPAWN_CHILD: '1' },
      stderr: 'ignore',
    });
    const client = newClient();
    let pids: number[] = [];
    try {
      await client.connect(transport);
      expect(client.getServerVersion()?.name).toBe('stdio-a');
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['echo', 'shout', 'crash']);
      const result = await client.callTool({ name: 'shout', arguments: { text: 'hi', extra: 1 } });
      expect(textOf(result)).toBe('stdio-a:shout:{"text":"hi","extra":1}');

      pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
      expect(pids).toHaveLength(2);
      expect(pids[0]).toBe(transport.pid);

      const closed = new Promise<void>((resolve) => {
        client.onclose = () => resolve();
      });
      await expect(client.callTool({ name: 'crash', arguments: {} })).rejects.toThrow();
      await closed;
    } finally {
      await client.close();
      // The fixture leaves its grandchild running on purpose; clean it up here.
      for (const pid of pids.slice(1)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      rmSync(pidFile, { force: true });
    }
  });
});
