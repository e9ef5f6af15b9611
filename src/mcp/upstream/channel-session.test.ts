import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { StdioBackendIR } from '../../ir/types.ts';
import { NODE, STDIO_FIXTURE } from '../../../test/helpers.ts';
import { ChannelSession } from './channel-session.ts';
import { responseTo } from './responses.ts';
import { StdioChannel } from './stdio-channel.ts';

const logger = pino({ level: 'silent' });
const channels: StdioChannel[] = [];

afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
});

/** A session with a real stdio MCP server (the SDK's), initialized. */
async function openSession(): Promise<ChannelSession> {
  // Only what a channel reads of its backend: the process to start and how to restart it.
  const backend = { name: 'echo', transport: 'stdio', command: NODE, args: [STDIO_FIXTURE], env: {}, cwd: undefined, restart: { initialDelayMs: 20, maxDelayMs: 100, maxRestarts: 0 } } as unknown as StdioBackendIR;
  const channel = StdioChannel.spawn(backend, 1024 * 1024, logger);
  channels.push(channel);
  const session = new ChannelSession('echo', channel, 5_000, logger);
  await session.initialize({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '0' } } });
  return session;
}

const call = (id: number): { jsonrpc: '2.0'; id: number; method: string; params: Record<string, unknown> } => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { n: id } } });

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
});
