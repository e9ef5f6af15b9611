import { parseEventId, type EventStore, type EventStoreLimits, type Replay, type StoredEvent } from './event-store.ts';
import { DEFAULT_COMMAND_TIMEOUT_MS, execReplies, quitRedis, redisKey, ttlArg, type Redis } from './redis.ts';

export interface RedisEventStoreOptions {
  /** Quit the shared connection on close(); leave false when other stores share it. */
  readonly ownsConnection?: boolean;
  /**
   * How long one blocking read of a tail waits for new events before it reads again
   * (ms). Aborts disconnect the tail's connection at once; this bounds how long a tail
   * whose abort could not reach the socket lingers.
   */
  readonly blockMs?: number;
}

/** One Redis stream entry as XRANGE/XREAD give it. */
type Entry = [id: string, fields: string[]];

const DATA = 'd';
const END = 'end';
/** Entries one blocking read hands back at most. */
const READ_BATCH = 100;
const U64_MAX = 2n ** 64n - 1n;

/**
 * The event store replicas share: a Redis stream per (session, stream),
 * `switchboard:events:<sid>:<stream>`, each entry `d <data>`, and one `end 1` entry when
 * the stream finishes. An SSE id is `<stream>.<redis entry id>`; entry ids are ordered, so
 * a client can resume on any replica. Streams are trimmed exactly to the bound (one entry
 * per append once full, cheap) so every replica and the memory store keep the same events,
 * and expire ttlMs after their last append. Tails read on a connection of their own
 * (blocking reads would stall the shared one), disconnected when the tail ends or aborts.
 * Needs Redis 6.2 (exclusive XRANGE, NOMKSTREAM).
 */
export class RedisEventStore implements EventStore {
  private readonly redis: Redis;
  private readonly limits: EventStoreLimits;
  private readonly ownsConnection: boolean;
  private readonly blockMs: number;
  private readonly readers = new Set<Redis>();
  private closed = false;

  constructor(redis: Redis, limits: EventStoreLimits, options: RedisEventStoreOptions = {}) {
    this.redis = redis;
    this.limits = limits;
    this.ownsConnection = options.ownsConnection ?? false;
    this.blockMs = Math.max(1, Math.ceil(options.blockMs ?? 1_000));
  }

  async append(sid: string, stream: string, data: string): Promise<string> {
    const k = key(sid, stream);
    const [id] = execReplies(
      await this.redis
        .multi()
        .xadd(k, 'MAXLEN', '=', this.bound(), '*', DATA, data)
        .pexpire(k, ttlArg(this.limits.ttlMs))
        .exec(),
    );
    if (typeof id !== 'string') throw new Error(`redis XADD answered ${String(id)}`);
    return `${stream}.${id}`;
  }

  async finish(sid: string, stream: string): Promise<void> {
    // NOMKSTREAM: finishing a stream this store does not know (expired) creates nothing.
    // The bound is one higher so the marker does not push out an event.
    await this.redis.xadd(key(sid, stream), 'NOMKSTREAM', 'MAXLEN', '=', this.bound() + 1, '*', END, '1');
  }

  async resume(sid: string, lastEventId: string, signal: AbortSignal): Promise<Replay | undefined> {
    const parsed = parseEventId(lastEventId);
    if (!parsed || !isEntryId(parsed.seq)) return undefined;
    const k = key(sid, parsed.stream);
    const [exists, entries] = execReplies(await this.redis.multi().exists(k).xrange(k, `(${parsed.seq}`, '+').exec());
    if (exists !== 1) return undefined;
    const backlog = entries as Entry[];
    const finished = backlog.some(([, fields]) => isEnd(fields));
    return Object.assign(this.replay(k, parsed.stream, parsed.seq, backlog, finished, signal), { backlog: backlog.filter(([, fields]) => !isEnd(fields)).length });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const reader of this.readers) reader.disconnect();
    this.readers.clear();
    if (this.ownsConnection) await quitRedis(this.redis);
  }

  private bound(): number {
    return Math.max(1, Math.floor(this.limits.maxEventsPerStream));
  }

  /** The backlog, then (unless the stream already finished) what a tail reads after it. */
  private async *replay(
    k: string,
    stream: string,
    after: string,
    backlog: Entry[],
    finished: boolean,
    signal: AbortSignal,
  ): AsyncGenerator<StoredEvent> {
    for (const [id, fields] of backlog) {
      if (signal.aborted || this.closed) return;
      if (!isEnd(fields)) yield { id: `${stream}.${id}`, data: dataOf(fields, k, id) };
    }
    if (!finished) yield* this.tail(k, stream, backlog.at(-1)?.[0] ?? after, signal);
  }

  private async *tail(k: string, stream: string, after: string, signal: AbortSignal): AsyncGenerator<StoredEvent> {
    if (signal.aborted || this.closed) return;
    const reader = this.redis.duplicate({
      commandTimeout: this.blockMs + (this.redis.options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS),
    });
    // Its failures surface as rejected reads, thrown to the consumer below.
    reader.on('error', () => {});
    this.readers.add(reader);
    const stop = (): void => reader.disconnect();
    signal.addEventListener('abort', stop, { once: true });
    let last = after;
    try {
      while (!signal.aborted && !this.closed) {
        let reply: [key: string, entries: Entry[]][] | null;
        try {
          reply = (await reader.xread('COUNT', READ_BATCH, 'BLOCK', this.blockMs, 'STREAMS', k, last)) as typeof reply;
        } catch (error) {
          if (signal.aborted || this.closed) return;
          throw error;
        }
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            if (isEnd(fields) || signal.aborted || this.closed) return;
            yield { id: `${stream}.${id}`, data: dataOf(fields, k, id) };
            last = id;
          }
        }
      }
    } finally {
      signal.removeEventListener('abort', stop);
      this.readers.delete(reader);
      reader.disconnect();
    }
  }
}

function key(sid: string, stream: string): string {
  return redisKey('events', sid, stream);
}

/** A Redis entry id a stream could hold and an exclusive range could start after. */
function isEntryId(seq: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(seq);
  if (!match) return false;
  const ms = BigInt(match[1]!);
  const n = BigInt(match[2]!);
  return ms <= U64_MAX && n <= U64_MAX && !(ms === U64_MAX && n === U64_MAX);
}

function isEnd(fields: string[]): boolean {
  return fields[0] === END;
}

function dataOf(fields: string[], k: string, id: string): string {
  if (fields[0] === DATA && typeof fields[1] === 'string') return fields[1];
  throw new Error(`malformed event ${id} in redis stream ${k}`);
}
