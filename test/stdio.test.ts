import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectClient, isAlive, NODE, startGateway, STDIO_FIXTURE, waitFor, type RunningGateway } from './helpers.ts';

function pidFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'switchboard-stdio-')), 'pids');
}

function pids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function stdioBackend(file: string, scope: 'session' | 'shared', extra: Record<string, string> = {}) {
  return {
    name: 'proc',
    transport: 'stdio' as const,
    command: NODE,
    args: [STDIO_FIXTURE],
    env: { FIXTURE_NAME: 'proc', FIXTURE_TOOLS: 'echo', FIXTURE_PID_FILE: file, FIXTURE_SPAWN_CHILD: '1', ...extra },
    scope,
    restart: { initialDelay: 50, maxDelay: 200, maxRestarts: 3 },
  };
}

describe('stdio upstreams', () => {
  let gw: RunningGateway | undefined;

  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });

  it('session scope: one process per session, its whole tree reaped when the session ends', async () => {
    const file = pidFile();
    gw = await startGateway([stdioBackend(file, 'session')]);
    const a = await connectClient(gw.url);
    const b = await connectClient(gw.url);
    await waitFor(() => pids(file).length === 4, 10_000, 'two processes with a grandchild each');
    const r = await a.client.callTool({ name: 'proc__echo', arguments: { text: 'hi' } });
    expect((r.content as any)[0].text).toBe('proc:echo:{"text":"hi"}');

    const [serverA, childA, serverB, childB] = pids(file);
    await a.transport.terminateSession();
    await waitFor(() => !isAlive(serverA!) && !isAlive(childA!), 10_000, 'session A tree to be reaped');
    expect(isAlive(serverB!)).toBe(true);

    await gw.stop();
    gw = undefined;
    await waitFor(() => !isAlive(serverB!) && !isAlive(childB!), 10_000, 'every process to be reaped on shutdown');
    await b.client.close();
  });

  it('shared scope: one process started with the gateway serves every session, reaped on shutdown', async () => {
    const file = pidFile();
    gw = await startGateway([stdioBackend(file, 'shared')]);
    await waitFor(() => pids(file).length === 2, 10_000, 'shared process at start');
    const a = await connectClient(gw.url);
    const b = await connectClient(gw.url);
    // Both clients use JSON-RPC id 1..n: the shared process must still keep them apart.
    const [ra, rb] = await Promise.all([
      a.client.callTool({ name: 'proc__echo', arguments: { text: 'from-a' } }),
      b.client.callTool({ name: 'proc__echo', arguments: { text: 'from-b' } }),
    ]);
    expect((ra.content as any)[0].text).toContain('from-a');
    expect((rb.content as any)[0].text).toContain('from-b');
    await a.transport.terminateSession();
    expect(pids(file)).toHaveLength(2);
    const [server, child] = pids(file);
    expect(isAlive(server!)).toBe(true);
    await gw.stop();
    gw = undefined;
    await waitFor(() => !isAlive(server!) && !isAlive(child!), 10_000, 'shared tree reaped');
    await b.client.close();
  });

  it('a crashed process is restarted with backoff and re-initialized; the failed call says so', async () => {
    const file = pidFile();
    gw = await startGateway([stdioBackend(file, 'shared')]);
    const { client } = await connectClient(gw.url);
    await expect(client.callTool({ name: 'proc__crash', arguments: {} })).rejects.toThrow(/backend "proc"/);
    await waitFor(() => pids(file).length === 4, 10_000, 'a restarted process');
    let text = '';
    await waitFor(async () => {
      try {
        const r = await client.callTool({ name: 'proc__echo', arguments: { text: 'again' } });
        text = (r.content as any)[0].text;
        return true;
      } catch {
        return false;
      }
    }, 10_000, 'the restarted process to answer');
    expect(text).toBe('proc:echo:{"text":"again"}');
    await client.close();
  });

  it('a command that cannot start fails that backend only, with a clear error', async () => {
    gw = await startGateway([{ name: 'missing', transport: 'stdio', command: '/nonexistent/server', args: [] }]);
    const { client } = await connectClient(gw.url);
    const { tools } = await client.listTools();
    expect(tools).toEqual([]);
    await expect(client.callTool({ name: 'missing__x', arguments: {} })).rejects.toThrow(/backend "missing"/);
    await client.close();
  });
});
