import { AsyncQueue } from '../util/async-queue.ts';
import { parseEventId, type EventStore, type EventStoreLimits, type StoredEvent } from './event-store.ts';

interface Stream {
  readonly events: StoredEvent[];
  next: number;
  finished: boolean;
  expiresAt: number;
  readonly tails: Set<AsyncQueue<StoredEvent>>;
}

/** The single-process event store: a bounded buffer per stream, and at most maxStreams streams. */
export class MemoryEventStore implements EventStore {
  private readonly streams = new Map<string, Stream>();
  private readonly limits: EventStoreLimits;
  private readonly maxStreams: number;

  constructor(limits: EventStoreLimits, maxStreams = 10_000) {
    this.limits = limits;
    this.maxStreams = maxStreams;
  }

  async append(sid: string, stream: string, data: string): Promise<string> {
    const s = this.stream(sid, stream, true)!;
    const event = { id: `${stream}.${s.next++}`, data };
    s.events.push(event);
    if (s.events.length > this.limits.maxEventsPerStream) s.events.shift();
    s.expiresAt = Date.now() + this.limits.ttlMs;
    for (const tail of s.tails) tail.push(event);
    return event.id;
  }

  async finish(sid: string, stream: string): Promise<void> {
    const s = this.stream(sid, stream, false);
    if (!s) return;
    s.finished = true;
    for (const tail of s.tails) tail.end();
    s.tails.clear();
  }

  async resume(sid: string, lastEventId: string, signal: AbortSignal): Promise<AsyncIterable<StoredEvent> | undefined> {
    const parsed = parseEventId(lastEventId);
    if (!parsed || !/^\d+$/.test(parsed.seq)) return undefined;
    const s = this.stream(sid, parsed.stream, false);
    if (!s) return undefined;
    const after = Number(parsed.seq);
    const queue: AsyncQueue<StoredEvent> = new AsyncQueue<StoredEvent>(this.limits.maxEventsPerStream * 2, () => s.tails.delete(queue));
    for (const e of s.events) if (Number(e.id.slice(e.id.lastIndexOf('.') + 1)) > after) queue.push(e);
    if (s.finished) queue.end();
    else {
      s.tails.add(queue);
      signal.addEventListener('abort', () => void queue.return(), { once: true });
    }
    return queue;
  }

  async close(): Promise<void> {
    for (const s of this.streams.values()) for (const t of s.tails) t.end();
    this.streams.clear();
  }

  private stream(sid: string, stream: string, create: boolean): Stream | undefined {
    const key = `${sid}/${stream}`;
    let s = this.streams.get(key);
    if (s && s.expiresAt < Date.now() && s.tails.size === 0) {
      this.streams.delete(key);
      s = undefined;
    }
    if (!s && create) {
      if (this.streams.size >= this.maxStreams) this.evictOne();
      s = { events: [], next: 1, finished: false, expiresAt: Date.now() + this.limits.ttlMs, tails: new Set() };
      this.streams.set(key, s);
    }
    return s;
  }

  private evictOne(): void {
    const oldest = this.streams.keys().next().value;
    if (oldest === undefined) return;
    const s = this.streams.get(oldest)!;
    for (const t of s.tails) t.end();
    this.streams.delete(oldest);
  }
}
