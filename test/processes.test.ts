import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { post, rawSession, startCli, stopChild, waitFor, within } from './helpers.ts';

const KEY = 'test-session-key-that-is-long-enough-0123456789';

function configFile(dir: string, name: string, port: number, upstreams: Record<string, string>): string {
  const file = join(dir, name);
  const backends = Object.entries(upstreams)
    .map(([n, url]) => `  - name: ${n}\n    transport: streamable-http\n    url: ${url}`)
    .join('\n');
  writeFileSync(
    file,
    `listeners:
  - name: main
    port: ${port}
    routes:
      - name: mcp
        path: /mcp
        backends: [${Object.keys(upstreams).join(', ')}]
backends:
${backends}
session:
  key: \${SESSION_KEY}
admin:
  enabled: false
limits:
  shutdownGrace: 1s
`,
  );
  return file;
}

function callEcho(url: string, sid: string, text: string) {
  return post(url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'a__echo', arguments: { text } } }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
}

describe('gateway processes', () => {
  let a: Fixture;
  let b: Fixture;
  let dir: string;

  beforeAll(async () => {
    a = await startFixtureServer({ name: 'a', tools: ['echo'] });
    b = await startFixtureServer({ name: 'b', tools: ['other'] });
    dir = mkdtempSync(join(tmpdir(), 'switchboard-proc-'));
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('a session started on one gateway process is served by a second one with the same key', async () => {
    const first = await startCli(['run', '--config', configFile(dir, 'one.yaml', 0, { a: a.url })], { SESSION_KEY: KEY });
    const second = await startCli(['run', '--config', configFile(dir, 'two.yaml', 0, { a: a.url })], { SESSION_KEY: KEY });
    try {
      const sid = await rawSession(first.url);
      const res = await callEcho(second.url, sid, 'across');
      expect(res.status).toBe(200);
      expect(res.text).toContain('a:echo:{\\"text\\":\\"across\\"}');
      // Both processes used the same upstream session.
      const sessions = new Set(a.received.filter((m) => m.method === 'tools/call').map((m) => m.headers['mcp-session-id']));
      expect(sessions.size).toBe(1);
    } finally {
      expect(await stopChild(first.child)).toBe(0);
      expect(await stopChild(second.child)).toBe(0);
    }
  });

  it('a process with another key does not accept the session', async () => {
    const first = await startCli(['run', '--config', configFile(dir, 'k1.yaml', 0, { a: a.url })], { SESSION_KEY: KEY });
    const other = await startCli(['run', '--config', configFile(dir, 'k2.yaml', 0, { a: a.url })], { SESSION_KEY: `${KEY}-other` });
    try {
      const sid = await rawSession(first.url);
      expect((await callEcho(other.url, sid, 'x')).status).toBe(404);
    } finally {
      await stopChild(first.child);
      await stopChild(other.child);
    }
  });

  it('hot reload: a config change takes effect for live sessions and their server streams; a bad one is rejected and the old keeps serving', async () => {
    const file = configFile(dir, 'reload.yaml', 0, { a: a.url });
    const gw = await startCli(['run', '--config', file], { SESSION_KEY: KEY });
    try {
      const sid = await rawSession(gw.url);
      const list = async () => (await post(gw.url, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' })).json;
      expect((await list()).result.tools.map((t: any) => t.name)).toEqual(['a__echo']);

      writeFileSync(file, 'listeners: [ {name: main, routes: [] } ]\nbogus: 1\n');
      await waitForOutput(gw.output, /new configuration rejected/);
      expect(gw.output()).toMatch(/routes/);
      expect((await callEcho(gw.url, sid, 'still')).status).toBe(200);

      // Port 0 would move the listener: keep the bound port in the new file.
      const port = Number(new URL(gw.url).port);
      configFile(dir, 'reload.yaml', port, { a: a.url, b: b.url });
      await waitForOutput(gw.output, /configuration reloaded/);
      const names = (await list()).result.tools.map((t: any) => t.name).sort();
      expect(names).toEqual(['a__echo', 'b__other']);
      // The session predates backend b: the gateway opened b's upstream session on first use.
      expect((await callEcho(gw.url, sid, 'after')).status).toBe(200);

      // A server stream open across a reload (on the same listener) is ended, to be reopened on the new configuration.
      const stream = await fetch(gw.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
      expect(stream.status).toBe(200);
      const reloads = (gw.output().match(/configuration reloaded/g) ?? []).length;
      configFile(dir, 'reload.yaml', port, { a: a.url });
      await waitFor(() => (gw.output().match(/configuration reloaded/g) ?? []).length > reloads, 10_000, 'the second reload');
      await within(5_000, stream.text(), 'the server stream to end at the reload');
    } finally {
      await stopChild(gw.child);
    }
  });
});

async function waitForOutput(output: () => string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (pattern.test(output())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`output never matched ${pattern}:\n${output()}`);
}

