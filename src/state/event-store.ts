/**
 * Keeps the SSE events the gateway sent on each downstream stream, so a client whose
 * stream dropped can reconnect with Last-Event-ID (on any replica, with Redis) and get
 * what it missed, then what follows. Bounded per stream and in time.
 */
export interface StoredEvent {
  /** The SSE event id: `<stream>.<sequence>`, unique per session and stream, ordered. */
  readonly id: string;
  readonly data: string;
}

/** A stream's events after a given one: those already stored come first (`backlog` of them), then those still to come. */
export interface Replay extends AsyncIterable<StoredEvent> {
  readonly backlog: number;
}

export interface EventStore {
  /** Appends an event to a session's stream; returns its SSE id. */
  append(sid: string, stream: string, data: string): Promise<string>;
  /** Marks a stream finished: replays of it end after its last event. */
  finish(sid: string, stream: string): Promise<void>;
  /**
   * The events after `lastEventId` on the stream that id belongs to, then the events still
   * to come, until the stream finishes or the signal aborts. Undefined when the id names no
   * stream this store knows for the session (expired, evicted, or never ours).
   */
  resume(sid: string, lastEventId: string, signal: AbortSignal): Promise<Replay | undefined>;
  close(): Promise<void>;
}

export interface EventStoreLimits {
  /** Events kept per stream; older ones are dropped first. */
  readonly maxEventsPerStream: number;
  /** How long a stream's events are kept after its last append. */
  readonly ttlMs: number;
  /**
   * Memory for kept events in a single process (the memory store; Redis bounds its own):
   * beyond it the oldest streams go first. Counted as characters of event data and ids, plus
   * a fixed cost per event.
   */
  readonly maxMemoryBytes: number;
}

/** Splits an SSE id into its stream and sequence; undefined for ids the gateway never issued. */
export function parseEventId(id: string): { stream: string; seq: string } | undefined {
  const dot = id.lastIndexOf('.');
  if (dot <= 0 || dot === id.length - 1 || id.length > 256) return undefined;
  return { stream: id.slice(0, dot), seq: id.slice(dot + 1) };
}
