import { AsyncQueue } from '../util/async-queue.ts';
import { parseEventId, type EventStore, type EventStoreLimits, type Replay, type StoredEvent } from './event-store.ts';

interface Stream {
  readonly key: string;
  readonly events: StoredEvent[];
  finished: boolean;
  expiresAt: number;
  /** What its events count against the store's memory (see `size`). */
  bytes: number;
  readonly tails: Set<AsyncQueue<StoredEvent>>;
}

/** What an event costs besides its characters: the event object, its place in the stream. */
const EVENT_OVERHEAD_BYTES = 64;

function size(event: StoredEvent): number {
  return event.data.length + event.id.length + EVENT_OVERHEAD_BYTES;
}

/**
 * The single-process event store: a bounded buffer per stream, at most maxStreams streams,
 * and at most `maxMemoryBytes` of events in all, the oldest streams dropped first. Expired
 * streams are dropped from the oldest end as new ones start, so a busy gateway holds the
 * last TTL's worth of streams, not the last maxStreams.
 */
export class MemoryEventStore implements EventStore {
  /** In the order the streams started: the oldest first. */
  private readonly streams = new Map<string, Stream>();
  private readonly limits: EventStoreLimits;
  private readonly maxStreams: number;
  private bytes = 0;
  /**
   * Event ids number every event of the store, not of its stream: a stream dropped while its
   * writer lives on (past its TTL, or for the memory bound) starts again under the same name,
   * and must not issue an id it issued before, nor one below (a client resuming after the old
   * one gets the new events).
   */
  private sequence = 0;

  constructor(limits: EventStoreLimits, maxStreams = 10_000) {
    this.limits = limits;
    this.maxStreams = maxStreams;
  }

  /** Characters and per-event costs of every event kept (what `maxMemoryBytes` bounds). */
  get memoryBytes(): number {
    return this.bytes;
  }

  async append(sid: string, stream: string, data: string): Promise<string> {
    const s = this.stream(sid, stream, true)!;
    const event = { id: `${stream}.${++this.sequence}`, data };
    s.events.push(event);
    this.count(s, size(event));
    if (s.events.length > this.limits.maxEventsPerStream) this.count(s, -size(s.events.shift()!));
    s.expiresAt = Date.now() + this.limits.ttlMs;
    for (const tail of s.tails) tail.push(event);
    this.fit(s);
    return event.id;
  }

  async finish(sid: string, stream: string): Promise<void> {
    const s = this.stream(sid, stream, false);
    if (!s) return;
    s.finished = true;
    for (const tail of s.tails) tail.end();
    s.tails.clear();
  }

  async resume(sid: string, lastEventId: string, signal: AbortSignal): Promise<Replay | undefined> {
    const parsed = parseEventId(lastEventId);
    if (!parsed || !/^\d+$/.test(parsed.seq)) return undefined;
    const s = this.stream(sid, parsed.stream, false);
    if (!s) return undefined;
    const after = Number(parsed.seq);
    const queue: AsyncQueue<StoredEvent> = new AsyncQueue<StoredEvent>(this.limits.maxEventsPerStream * 2, () => s.tails.delete(queue));
    let backlog = 0;
    for (const e of s.events) {
      if (Number(e.id.slice(e.id.lastIndexOf('.') + 1)) <= after) continue;
      queue.push(e);
      backlog++;
    }
    if (s.finished) queue.end();
    else {
      s.tails.add(queue);
      signal.addEventListener('abort', () => void queue.return(), { once: true });
    }
    return Object.assign(queue, { backlog });
  }

  async close(): Promise<void> {
    for (const s of this.streams.values()) for (const t of s.tails) t.end();
    this.streams.clear();
    this.bytes = 0;
  }

  private stream(sid: string, stream: string, create: boolean): Stream | undefined {
    const key = `${sid}/${stream}`;
    let s = this.streams.get(key);
    if (s && expired(s, Date.now())) {
      this.drop(s);
      s = undefined;
    }
    if (!s && create) {
      this.dropExpired();
      if (this.streams.size >= this.maxStreams) this.drop(this.streams.values().next().value!);
      s = { key, events: [], finished: false, expiresAt: Date.now() + this.limits.ttlMs, bytes: 0, tails: new Set() };
      this.streams.set(key, s);
    }
    return s;
  }

  private count(s: Stream, bytes: number): void {
    s.bytes += bytes;
    this.bytes += bytes;
  }

  /** Back within the memory bound after `current` grew: other streams go, oldest first; then `current`'s oldest events, down to its last. */
  private fit(current: Stream): void {
    for (const s of this.streams.values()) {
      if (this.bytes <= this.limits.maxMemoryBytes) return;
      if (s !== current) this.drop(s);
    }
    while (this.bytes > this.limits.maxMemoryBytes && current.events.length > 1) this.count(current, -size(current.events.shift()!));
  }

  /** Expired streams at the oldest end; one that is still live stops the sweep (it is amortized, not exact). */
  private dropExpired(): void {
    const now = Date.now();
    for (const s of this.streams.values()) {
      if (!expired(s, now)) return;
      this.drop(s);
    }
  }

  private drop(s: Stream): void {
    for (const t of s.tails) t.end();
    this.streams.delete(s.key);
    this.bytes -= s.bytes;
  }
}

/** Past its TTL and nobody tailing it. */
function expired(s: Stream, now: number): boolean {
  return s.expiresAt < now && s.tails.size === 0;
}
