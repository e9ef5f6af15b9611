import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReverseServer, type ReverseServer } from './fixtures/reverse-server.ts';
import { post, rawSession, startCli, stopChild, waitFor } from './helpers.ts';
import { startRedisServer } from './support/redis-server.ts';
import { checkResumed, dropAndResume, readEvents, type Event } from './support/sse.ts';

describe('replicas sharing Redis', () => {
  let redis: { url: string; stop(): Promise<void> };
  let slow: ReverseServer;
  let config: string;

  beforeAll(async () => {
    redis = await startRedisServer();
    slow = await startReverseServer('slow');
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-replicas-'));
    config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `listeners:
  - name: main
    port: 0
    routes: [{ name: mcp, path: /mcp, backends: [slow] }]
backends:
  - { name: slow, transport: streamable-http, url: "${slow.url}" }
session:
  key: replicas-share-this-key-of-enough-length-0123456789
state:
  redis: { url: "${redis.url}" }
admin: { enabled: false }
limits: { shutdownGrace: 1s }
`,
    );
  });

  afterAll(async () => {
    await slow?.close();
    await redis?.stop();
  });

  type Replica = Awaited<ReturnType<typeof startCli>>;
  async function withTwoReplicas(test: (one: Replica, two: Replica) => Promise<void>): Promise<void> {
    const one = await startCli(['run', '--config', config]);
    const two = await startCli(['run', '--config', config]);
    try {
      await test(one, two);
    } finally {
      await stopChild(one.child);
      await stopChild(two.child);
    }
  }

  it('a stream dropped on one replica is resumed with Last-Event-ID on another', () =>
    withTwoReplicas(async (one, two) => {
      const sid = await rawSession(one.url);
      const { before, after } = await dropAndResume(one.url, two.url, sid, 8, 2);
      checkResumed(before, after, 8);
    }));

  it('a server stream resumed on another replica after its own died gets what it missed, then live messages', () =>
    withTwoReplicas(async (one, two) => {
      const sid = await rawSession(one.url);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      const askRoots = (url: string, id: number) => post(url, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'slow__roots', arguments: {} } }, h).catch(() => undefined);
      const streamsBefore = slow.streamsOpened;
      const first = await fetch(one.url, { headers: { ...h, accept: 'text/event-stream' } });
      await waitFor(() => slow.streamsOpened > streamsBefore, 5_000, 'the upstream server stream');
      // Two server requests on replica one's stream; the client has read them when the replica dies
      // (no finish is ever written for that stream), and resumes from the first.
      void askRoots(one.url, 1);
      void askRoots(one.url, 2);
      const seen = await firstEvents(first, 2);
      expect(seen.map((e) => JSON.parse(e.data).method)).toEqual(['roots/list', 'roots/list']);
      await stopChild(one.child, 'SIGKILL');
      // The upstream allows one server stream per session: it must have seen the dead one close.
      await waitFor(() => slow.streamsOpen === 0, 5_000, 'the upstream to see the dead replica go');
      const streamsAfterDeath = slow.streamsOpened;
      const resumed = await fetch(two.url, { headers: { ...h, accept: 'text/event-stream', 'last-event-id': seen[0]!.id! } });
      expect(resumed.status).toBe(200);
      const events: Event[] = [];
      const reading = readEvents(resumed, (e) => (events.splice(0, events.length, ...e), e.length >= 2), new AbortController());
      await waitFor(() => events.length >= 1, 5_000, 'the missed event');
      expect(events[0]!.data).toBe(seen[1]!.data);
      // Under the new stream's ids, so that the next Last-Event-ID names one stream.
      expect(events[0]!.id!.split('.')[0]).not.toBe(seen[0]!.id!.split('.')[0]);
      // Replica two listens on its own, though the dead replica's stream never finishes.
      await waitFor(() => slow.streamsOpened > streamsAfterDeath, 10_000, "replica two's upstream server stream");
      void askRoots(two.url, 3);
      await reading;
      expect(JSON.parse(events[1]!.data).method).toBe('roots/list');
    }));

  it('a session ended on one replica is gone on the other', () =>
    withTwoReplicas(async (one, two) => {
      const sid = await rawSession(one.url);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      expect((await post(two.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, h)).status).toBe(200);
      expect((await fetch(one.url, { method: 'DELETE', headers: h })).status).toBe(200);
      expect((await post(two.url, { jsonrpc: '2.0', id: 2, method: 'ping' }, h)).status).toBe(404);
    }));

  it('refuses to start with Redis but no session key', async () => {
    const bad = config.replace('gateway.yaml', 'nokey.yaml');
    writeFileSync(
      bad,
      `listeners: [{ name: m, port: 0, routes: [{ name: r, path: /mcp, backends: [s] }] }]\nbackends: [{ name: s, transport: streamable-http, url: "${slow.url}" }]\nstate: { redis: { url: "${redis.url}" } }\n`,
    );
    await expect(startCli(['run', '--config', bad])).rejects.toThrow(/session\.key: replicas sharing Redis need the same session\.key/);
  });
});

/** The first `n` events of a stream, read while its connection stays open. */
async function firstEvents(res: Response, n: number): Promise<Event[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const blocks = text.split('\n\n').slice(0, -1).filter((b) => /^data: /m.test(b));
    if (blocks.length >= n) return blocks.slice(0, n).map((b) => ({ id: /^id: (.*)$/m.exec(b)?.[1], data: /^data: (.*)$/m.exec(b)![1]! }));
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended after ${blocks.length} of ${n} events`);
    text += decoder.decode(value, { stream: true });
  }
}
