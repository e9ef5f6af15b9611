import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRedisServer, type RunningRedis } from '../../test/support/redis-server.ts';
import { within } from '../../test/helpers.ts';
import type { UpstreamSessionRef } from '../mcp/session-token.ts';
import { parseEventId, type EventStore, type EventStoreLimits, type StoredEvent } from './event-store.ts';
import { MemoryEventStore } from './memory-event-store.ts';
import { MemorySessionStore } from './memory-session-store.ts';
import { createRedis, quitRedis, redisKey, type Redis } from './redis.ts';
import { RedisEventStore } from './redis-event-store.ts';
import { RedisSessionStore } from './redis-session-store.ts';
import type { SessionStore } from './session-store.ts';

let server: RunningRedis | undefined;
const connections: Redis[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  server = await startRedisServer();
}, 600_000);

afterAll(async () => {
  for (const close of closers.splice(0)) await close();
  for (const redis of connections.splice(0)) await quitRedis(redis);
  await server?.stop();
});

/** A connection of its own, as a separate gateway replica would have. */
function connect(): Redis {
  const redis = createRedis(server!.url);
  connections.push(redis);
  return redis;
}

function track<T extends { close(): Promise<void> }>(store: T): T {
  closers.push(() => store.close());
  return store;
}

interface Backend {
  readonly name: string;
  /** Two handles on one shared state: two replicas (Redis, own connections) or the same store twice (memory). */
  sessions(): [SessionStore, SessionStore];
  events(limits: EventStoreLimits): [EventStore, EventStore];
}

const memory: Backend = {
  name: 'memory',
  sessions() {
    const store = track(new MemorySessionStore());
    return [store, store];
  },
  events(limits) {
    const store = track(new MemoryEventStore(limits));
    return [store, store];
  },
};

const redis: Backend = {
  name: 'redis',
  sessions() {
    return [track(new RedisSessionStore(connect(), { ownsConnection: true })), track(new RedisSessionStore(connect(), { ownsConnection: true }))];
  },
  events(limits) {
    // A long block: an abort that ends a tail promptly did so by disconnecting its reader.
    const options = { ownsConnection: true, blockMs: 20_000 };
    return [track(new RedisEventStore(connect(), limits, options)), track(new RedisEventStore(connect(), limits, options))];
  },
};

const LIMITS: EventStoreLimits = { maxEventsPerStream: 100, ttlMs: 60_000, maxMemoryBytes: 64 * 1024 * 1024 };

const ref = (id: string, features: string[] = ['tools']): UpstreamSessionRef => ({ id, protocolVersion: '2025-06-18', features });

/** Orders the sequence parts of two SSE ids of one stream: `12` (memory) or `1700000000000-3` (Redis). */
function compareSeq(a: string, b: string): number {
  const x = parseEventId(a)!.seq.split('-').map(BigInt);
  const y = parseEventId(b)!.seq.split('-').map(BigInt);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0n) - (y[i] ?? 0n);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  return 0;
}

async function take(it: AsyncIterator<StoredEvent>, n: number): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) throw new Error(`iterator ended after ${i} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

async function resumeIt(store: EventStore, sid: string, id: string, signal = new AbortController().signal): Promise<AsyncIterator<StoredEvent>> {
  const iterable = await store.resume(sid, id, signal);
  expect(iterable).toBeDefined();
  return iterable![Symbol.asyncIterator]();
}


describe.each([memory, redis])('$name session store', (backend) => {
  it('revocation is seen by every replica and survives until its TTL', async () => {
    const [a, b] = backend.sessions();
    const sid = randomUUID();
    expect(((await a.lookup(sid))?.ended ?? false)).toBe(false);
    await a.markEnded(sid, 60_000);
    expect(((await a.lookup(sid))?.ended ?? false)).toBe(true);
    expect(((await b.lookup(sid))?.ended ?? false)).toBe(true);
    expect(((await b.lookup(randomUUID()))?.ended ?? false)).toBe(false);
  });

  it('revocation expires after a short TTL', async () => {
    const [a, b] = backend.sessions();
    const sid = randomUUID();
    await a.markEnded(sid, 1_500);
    expect(((await b.lookup(sid))?.ended ?? false)).toBe(true);
    await vi.waitFor(async () => expect(((await b.lookup(sid))?.ended ?? false)).toBe(false), { timeout: 10_000, interval: 50 });
    expect((await b.lookup(sid))?.upstreams).toBeUndefined();
  });

  it('a shorter TTL written later does not cut a revocation short', async () => {
    const [a, b] = backend.sessions();
    const sid = randomUUID();
    await a.markEnded(sid, 60_000);
    await b.setUpstream(sid, 'x', ref('u1'), 50);
    await new Promise((r) => setTimeout(r, 300));
    expect(((await a.lookup(sid))?.ended ?? false)).toBe(true);
    expect((await a.lookup(sid))?.upstreams).toEqual({ x: ref('u1') });
  });

  it('upstream overrides merge per backend, last write per backend wins', async () => {
    const [a, b] = backend.sessions();
    const sid = randomUUID();
    expect((await a.lookup(sid))?.upstreams).toBeUndefined();
    await a.setUpstream(sid, 'alpha', ref('a1'), 60_000);
    await b.setUpstream(sid, 'beta', { id: null, protocolVersion: '2025-03-26', features: [] }, 60_000);
    await a.setUpstream(sid, 'alpha', ref('a2', ['tools', 'prompts']), 60_000);
    expect((await b.lookup(sid))?.upstreams).toEqual({
      alpha: ref('a2', ['tools', 'prompts']),
      beta: { id: null, protocolVersion: '2025-03-26', features: [] },
    });
    expect(((await b.lookup(sid))?.ended ?? false)).toBe(false);
    await b.markEnded(sid, 60_000);
    expect(((await a.lookup(sid))?.ended ?? false)).toBe(true);
    expect(Object.keys(((await a.lookup(sid))?.upstreams)!).sort()).toEqual(['alpha', 'beta']);
    expect((await a.lookup(randomUUID()))?.upstreams).toBeUndefined();
  });
});

describe.each([memory, redis])('$name event store', (backend) => {
  it('appends in order with <stream>.<seq> ids; a resume returns only later events, tails, and ends on finish', async () => {
    const [store] = backend.events(LIMITS);
    const sid = randomUUID();
    const stream = 'get-1';
    const ids = [await store.append(sid, stream, 'one'), await store.append(sid, stream, 'two'), await store.append(sid, stream, 'three')];
    for (const id of ids) expect(parseEventId(id)?.stream).toBe(stream);
    expect(compareSeq(ids[0]!, ids[1]!)).toBe(-1);
    expect(compareSeq(ids[1]!, ids[2]!)).toBe(-1);

    const it = await resumeIt(store, sid, ids[0]!);
    expect(await take(it, 2)).toEqual([
      { id: ids[1], data: 'two' },
      { id: ids[2], data: 'three' },
    ]);
    const pending = it.next();
    const four = await store.append(sid, stream, 'four');
    expect(compareSeq(ids[2]!, four)).toBe(-1);
    expect(await pending).toEqual({ done: false, value: { id: four, data: 'four' } });
    const five = await store.append(sid, stream, 'five');
    expect(await it.next()).toEqual({ done: false, value: { id: five, data: 'five' } });
    const end = it.next();
    await store.finish(sid, stream);
    expect(await within(10_000, end, 'tail after finish')).toEqual({ done: true, value: undefined });

    // A finished stream replays what is left and ends at once.
    const again = await resumeIt(store, sid, ids[2]!);
    expect(await take(again, 2)).toEqual([
      { id: four, data: 'four' },
      { id: five, data: 'five' },
    ]);
    expect((await within(10_000, again.next(), 'finished replay')).done).toBe(true);
  });

  it('never issues an id twice, even in a stream dropped while its writer lives on', async () => {
    const [store] = backend.events({ ...LIMITS, ttlMs: 50 });
    const sid = randomUUID();
    const before = [await store.append(sid, 'get-live', 'one'), await store.append(sid, 'get-live', 'two')];
    await new Promise((r) => setTimeout(r, 120));
    // A new stream sweeps the expired ones (memory); the key is gone by its TTL (redis).
    await store.append(sid, 'get-other', 'sweep');
    const after = await store.append(sid, 'get-live', 'three');
    expect(before).not.toContain(after);
    // A client that had the old stream's last event gets what came after it.
    const it = await resumeIt(store, sid, before[1]!);
    expect(await take(it, 1)).toEqual([{ id: after, data: 'three' }]);
    await store.finish(sid, 'get-live');
  });

  it('keeps streams and sessions apart', async () => {
    const [store] = backend.events(LIMITS);
    const sid = randomUUID();
    const other = randomUUID();
    const a = await store.append(sid, 'a', 'in a');
    await store.append(sid, 'b', 'in b');
    await store.append(other, 'a', 'other session');
    await store.append(sid, 'a', 'a again');
    await store.finish(sid, 'a');
    const it = await resumeIt(store, sid, a);
    expect((await take(it, 1))[0]!.data).toBe('a again');
    expect((await it.next()).done).toBe(true);
  });

  it('resume of an unknown id is undefined', async () => {
    const [store] = backend.events(LIMITS);
    const sid = randomUUID();
    const id = await store.append(sid, 'known', 'x');
    const signal = new AbortController().signal;
    const seq = parseEventId(id)!.seq;
    expect(await store.resume(randomUUID(), id, signal)).toBeUndefined();
    expect(await store.resume(sid, `unknown.${seq}`, signal)).toBeUndefined();
    expect(await store.resume(sid, 'no-dot', signal)).toBeUndefined();
    expect(await store.resume(sid, 'known.', signal)).toBeUndefined();
    expect(await store.resume(sid, 'known.not-a-seq', signal)).toBeUndefined();
    expect(await store.resume(sid, 'known.99999999999999999999999-0', signal)).toBeUndefined();
    expect(await store.resume(sid, '', signal)).toBeUndefined();
  });

  it('a second replica resumes and tails what the first appends', async () => {
    const [first, second] = backend.events(LIMITS);
    const sid = randomUUID();
    const id1 = await first.append(sid, 's-1', 'one');
    const id2 = await first.append(sid, 's-1', 'two');
    const it = await resumeIt(second, sid, id1);
    expect(await take(it, 1)).toEqual([{ id: id2, data: 'two' }]);
    const pending = it.next();
    const id3 = await first.append(sid, 's-1', 'three');
    expect(await within(10_000, pending, 'tail on the second replica')).toEqual({ done: false, value: { id: id3, data: 'three' } });
    const end = it.next();
    await first.finish(sid, 's-1');
    expect((await within(10_000, end, 'finish seen by the second replica')).done).toBe(true);
  });

  it('bounds each stream, dropping the oldest events', async () => {
    const [store, replica] = backend.events({ ...LIMITS, maxEventsPerStream: 3 });
    const sid = randomUUID();
    const ids: string[] = [];
    for (let i = 1; i <= 6; i++) ids.push(await store.append(sid, 'bounded', `e${i}`));
    await store.append(sid, 'other', 'unbounded by its neighbour');
    const it = await resumeIt(replica, sid, ids[0]!);
    await store.finish(sid, 'bounded');
    const seen: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) seen.push(r.value.data);
    expect(seen).toEqual(['e4', 'e5', 'e6']);
  });

  it('forgets a stream its TTL after the last append', async () => {
    const [store, replica] = backend.events({ ...LIMITS, maxEventsPerStream: 10, ttlMs: 1_000 });
    const sid = randomUUID();
    const id = await store.append(sid, 'short', 'x');
    const it = await resumeIt(replica, sid, id);
    await it.return?.();
    await vi.waitFor(
      async () => {
        const replay = await replica.resume(sid, id, new AbortController().signal);
        // A live tail keeps a memory stream alive: give each poll's tail back.
        await replay?.[Symbol.asyncIterator]().return?.();
        expect(replay).toBeUndefined();
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  it('aborting a resume ends the tail promptly', async () => {
    const [store, replica] = backend.events(LIMITS);
    const sid = randomUUID();
    const id = await store.append(sid, 'abortable', 'x');
    const controller = new AbortController();
    const it = await resumeIt(replica, sid, id, controller.signal);
    const pending = it.next();
    // Let the tail reach its blocking read before the abort.
    await new Promise((r) => setTimeout(r, 200));
    controller.abort();
    expect(await within(5_000, pending, 'aborted tail')).toEqual({ done: true, value: undefined });
    expect((await it.next()).done).toBe(true);
    // The stream is still usable after an abandoned tail.
    const next = await store.append(sid, 'abortable', 'y');
    expect(parseEventId(next)?.stream).toBe('abortable');
  });

  it('close ends the tails it serves', async () => {
    const [store, replica] = backend.events(LIMITS);
    const sid = randomUUID();
    const id = await store.append(sid, 'closing', 'x');
    const it = await resumeIt(replica, sid, id);
    const pending = it.next();
    await new Promise((r) => setTimeout(r, 200));
    await replica.close();
    expect(await within(5_000, pending, 'tail after close')).toEqual({ done: true, value: undefined });
  });
});

describe('memory event store specifics', () => {
  /** Every event the store still has for a stream, from the first. */
  async function kept(store: MemoryEventStore, sid: string, stream: string): Promise<string[] | undefined> {
    const replay = await store.resume(sid, `${stream}.0`, new AbortController().signal);
    if (!replay) return undefined;
    await store.finish(sid, stream);
    const out: string[] = [];
    for await (const e of replay) out.push(e.data);
    return out;
  }

  it('keeps at most maxMemoryBytes of events, dropping the oldest streams first', async () => {
    const event = 'x'.repeat(1000);
    const store = track(new MemoryEventStore({ ...LIMITS, maxMemoryBytes: 10_000 }));
    const sid = randomUUID();
    for (let s = 1; s <= 5; s++) for (let e = 0; e < 3; e++) await store.append(sid, `s${s}`, event);
    // Each event costs its 1000 characters, its id and 64: three streams of three fit, not four.
    expect(store.memoryBytes).toBeLessThanOrEqual(10_000);
    expect(await kept(store, sid, 's1')).toBeUndefined();
    expect(await kept(store, sid, 's2')).toBeUndefined();
    expect(await kept(store, sid, 's5')).toHaveLength(3);
  });

  it('trims a stream larger than the whole budget to its newest events', async () => {
    const store = track(new MemoryEventStore({ ...LIMITS, maxMemoryBytes: 5_000 }));
    const sid = randomUUID();
    for (let e = 1; e <= 10; e++) await store.append(sid, 'big', `${e}`.padEnd(1000, '.'));
    expect(store.memoryBytes).toBeLessThanOrEqual(5_000);
    const left = (await kept(store, sid, 'big'))!;
    expect(left.length).toBeGreaterThanOrEqual(1);
    expect(left.at(-1)!.startsWith('10')).toBe(true);
  });

  it('drops expired streams as new ones start, and their memory with them', async () => {
    const store = track(new MemoryEventStore({ ...LIMITS, ttlMs: 50 }));
    const sid = randomUUID();
    for (let s = 0; s < 20; s++) await store.append(sid, `old${s}`, 'x'.repeat(100));
    const before = store.memoryBytes;
    await new Promise((r) => setTimeout(r, 120));
    await store.append(sid, 'new', 'y');
    expect(store.memoryBytes).toBeLessThan(before / 10);
    expect(await kept(store, sid, 'new')).toEqual(['y']);
  });
});

describe('redis specifics', () => {
  async function clients(redis: Redis): Promise<number> {
    const info = await redis.info('clients');
    return Number(/connected_clients:(\d+)/.exec(info)![1]);
  }

  it('keys carry the switchboard: prefix and their kind, parts encoded', async () => {
    const admin = connect();
    const sessions = track(new RedisSessionStore(admin));
    const events = track(new RedisEventStore(admin, LIMITS));
    const sid = `${randomUUID()}:with/colon`;
    await sessions.markEnded(sid, 60_000);
    await events.append(sid, 'st-1', 'x');
    expect(await admin.exists(redisKey('session', sid))).toBe(1);
    expect(await admin.type(`switchboard:events:${encodeURIComponent(sid)}:st-1`)).toBe('stream');
    expect(await admin.pttl(redisKey('session', sid))).toBeGreaterThan(0);
    expect(await admin.pttl(redisKey('events', sid, 'st-1'))).toBeGreaterThan(0);
    expect(redisKey('events', 'a:b', 'c')).not.toBe(redisKey('events', 'a', 'b:c'));
  });

  it('a tail keeps reading across idle blocks', async () => {
    const store = track(new RedisEventStore(connect(), LIMITS, { ownsConnection: true, blockMs: 100 }));
    const sid = randomUUID();
    const id = await store.append(sid, 'idle', 'x');
    const it = await resumeIt(store, sid, id);
    const pending = it.next();
    await new Promise((r) => setTimeout(r, 500));
    const later = await store.append(sid, 'idle', 'later');
    expect(await within(10_000, pending, 'tail after idle blocks')).toEqual({ done: false, value: { id: later, data: 'later' } });
    await it.return?.();
  });

  it('tails read on a connection of their own and give it back when they end', async () => {
    const admin = connect();
    const store = track(new RedisEventStore(connect(), LIMITS, { ownsConnection: true }));
    const sid = randomUUID();
    const id = await store.append(sid, 'conn', 'x');
    const before = await clients(admin);
    const controller = new AbortController();
    const it = await resumeIt(store, sid, id, controller.signal);
    const pending = it.next();
    await vi.waitFor(async () => expect(await clients(admin)).toBe(before + 1), { timeout: 10_000, interval: 20 });
    // The shared connection is not blocked while the tail waits.
    expect(await store.append(sid, 'conn', 'y')).toMatch(/^conn\./);
    expect((await pending).value?.data).toBe('y');
    controller.abort();
    expect((await it.next()).done).toBe(true);
    await vi.waitFor(async () => expect(await clients(admin)).toBe(before), { timeout: 10_000, interval: 20 });

    // Breaking out of a for-await gives it back too.
    const iterable = await store.resume(sid, id, new AbortController().signal);
    for await (const e of iterable!) if (e.data === 'y') break;
    await vi.waitFor(async () => expect(await clients(admin)).toBe(before), { timeout: 10_000, interval: 20 });
  });

  it('commands against an unreachable Redis reject instead of hanging', async () => {
    const errors: Error[] = [];
    // Port 1: nothing listens there, every connection attempt is refused.
    const dead = createRedis(`redis://127.0.0.1:1`, { commandTimeoutMs: 300, onError: (e) => errors.push(e) });
    try {
      const sessions = new RedisSessionStore(dead);
      const events = new RedisEventStore(dead, LIMITS);
      await expect(within(10_000, Promise.resolve(sessions.lookup('s')), 'lookup')).rejects.toThrow();
      await expect(within(10_000, sessions.markEnded('s', 1_000), 'markEnded')).rejects.toThrow();
      await expect(within(10_000, events.append('s', 'x', 'd'), 'append')).rejects.toThrow();
      await expect(within(10_000, events.resume('s', 'x.1-0', new AbortController().signal), 'resume')).rejects.toThrow();
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      dead.disconnect();
    }
  });

  it('rejects a url that is not redis', () => {
    expect(() => createRedis('http://127.0.0.1:6379')).toThrow(/redis:\/\//);
  });
});
