import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReverseServer, type ReverseServer } from './fixtures/reverse-server.ts';
import { rawSession, startGateway, type RunningGateway } from './helpers.ts';
import { checkResumed, dropAndResume, readEvents, type Event } from './support/sse.ts';

describe('resumable streams (in-memory event store)', () => {
  let slow: ReverseServer;
  let gw: RunningGateway;

  beforeAll(async () => {
    slow = await startReverseServer('slow');
    gw = await startGateway([{ name: 'slow', transport: 'streamable-http', url: slow.url }]);
  });

  afterAll(async () => {
    await gw?.stop();
    await slow?.close();
  });

  it('a POST stream dropped mid-way is resumed with GET and Last-Event-ID: the rest, then the response', async () => {
    const sid = await rawSession(gw.url);
    const { before, after } = await dropAndResume(gw.url, gw.url, sid, 6, 2);
    expect(before).toHaveLength(2);
    checkResumed(before, after, 6);
  });

  it('a Last-Event-ID of another session replays nothing of it', async () => {
    const a = await rawSession(gw.url);
    const b = await rawSession(gw.url);
    const { before } = await dropAndResume(gw.url, gw.url, a, 3, 1);
    const stolen = await fetch(gw.url, {
      headers: { 'mcp-session-id': b, 'mcp-protocol-version': '2025-11-25', accept: 'text/event-stream', 'last-event-id': before[0]!.id! },
      signal: AbortSignal.timeout(500),
    });
    const events = await readEvents(stolen, () => false).catch(() => [] as Event[]);
    expect(events.filter((e) => e.data.includes('progress'))).toEqual([]);
  });
});
