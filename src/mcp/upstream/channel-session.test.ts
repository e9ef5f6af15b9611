import { getEventListeners } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StdioBackendIR } from '../../ir/types.ts';
import { NODE, STDIO_FIXTURE, waitFor } from '../../../test/helpers.ts';
import { ChannelRegistry } from './channel-registry.ts';
import { ChannelSession } from './channel-session.ts';
import { responseTo } from './responses.ts';
import { StdioChannel } from './stdio-channel.ts';

const logger = pino({ level: 'silent' });
const channels: StdioChannel[] = [];

afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
});

/** A session with a real stdio MCP server (the SDK's), initialized; `env` configures the fixture, `maxRestarts` its restarts. */
async function openSession(env: Record<string, string> = {}, maxRestarts = 0): Promise<ChannelSession> {
  // Only what a channel reads of its backend: the process to start and how to restart it.
  const backend = { name: 'echo', transport: 'stdio', command: NODE, args: [STDIO_FIXTURE], env, cwd: undefined, restart: { initialDelayMs: 20, maxDelayMs: 100, maxRestarts } } as unknown as StdioBackendIR;
  const channel = StdioChannel.spawn(backend, 1024 * 1024, logger);
  channels.push(channel);
  const session = new ChannelSession('echo', channel, 5_000, logger);
  await session.initialize({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '0' } } });
  return session;
}

const call = (id: number, tool = 'echo'): { jsonrpc: '2.0'; id: number; method: string; params: Record<string, unknown> } => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { n: id } } });

describe('a session over a message channel', () => {
  it('answers a request by its id', async () => {
    const session = await openSession();
    const { message } = await responseTo('echo', call(1), (sink) => session.request(call(1), sink));
    expect(message).toMatchObject({ id: 1, result: { content: [{ type: 'text' }] } });
  });

  it('never sends a request whose caller gave up before it could be sent, and serves the next', async () => {
    const session = await openSession();
    const controller = new AbortController();
    controller.abort();
    // A request sent anyway would be answered: the echo server answers every call.
    await expect(responseTo('echo', call(1), (sink) => session.request(call(1), sink, controller.signal))).rejects.toThrow('request aborted');
    // Its id was never taken: the same id goes through afterwards.
    expect((await responseTo('echo', call(1), (sink) => session.request(call(1), sink))).message).toMatchObject({ id: 1 });
  });

  it('never sends a request that waited for a restart and was cancelled meanwhile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'channel-session-'));
    const pids = join(dir, 'pids');
    const calls = join(dir, 'calls');
    try {
      // Each start of the server takes 500 ms before it reads stdin: a restart's re-initialization waits that long.
      const session = await openSession({ FIXTURE_PID_FILE: pids, FIXTURE_CALL_FILE: calls, FIXTURE_START_DELAY_MS: '500' }, 1);
      await expect(responseTo('echo', call(1, 'crash'), (sink) => session.request(call(1, 'crash'), sink))).rejects.toThrow();
      await waitFor(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split('\n').length === 2, 10_000, 'the server to be started again');
      const heard: string[] = [];
      const control = session.request(call(2), { message: () => heard.push('message'), end: () => heard.push('end'), fail: (err) => heard.push(`fail: ${err.message}`) });
      control.abort(new Error('the client cancelled the request'));
      // The next request waits for the same re-initialization, and is answered.
      expect((await responseTo('echo', call(3), (sink) => session.request(call(3), sink))).message).toMatchObject({ id: 3 });
      expect(heard).toEqual(['fail: the client cancelled the request']);
      expect(readFileSync(calls, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([{ n: 3 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the registry of session-scoped channels', () => {
  it('ends an idle session, but not one whose server stream a client listens on; a listener lets go of its signal when it stops', async () => {
    const session = await openSession();
    const listening = new AbortController();
    const sink = { message() {}, end() {}, fail() {} };
    const control = session.listen(sink, listening.signal);
    vi.useFakeTimers({ toFake: ['setInterval', 'Date'] });
    const registry = new ChannelRegistry(10);
    try {
      registry.add('sid', 'echo', session, 7_000);
      vi.advanceTimersByTime(10_000);
      expect(session.alive).toBe(true);
      expect(registry.size).toBe(1);
      control.stop();
      expect(getEventListeners(listening.signal, 'abort')).toHaveLength(0);
      // Its idle time starts when the client stops listening.
      vi.advanceTimersByTime(5_000);
      expect(registry.size).toBe(1);
      vi.advanceTimersByTime(5_000);
      expect(registry.size).toBe(0);
      vi.useRealTimers();
      await waitFor(() => !session.alive, 5_000, 'the idle session to end');
    } finally {
      vi.useRealTimers();
      await registry.closeAll();
    }
  });
});
