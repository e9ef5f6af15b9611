import type { UpstreamSessionRef } from '../mcp/session-token.ts';
import type { SessionStore, StoredSession } from './session-store.ts';

interface Record_ {
  ended: boolean;
  upstreams: Record<string, UpstreamSessionRef> | undefined;
  expiresAt: number;
}

/**
 * The single-process session store. Bounded: past maxEntries the oldest records go first
 * (Map keeps insertion order), which can only make an ended session's token usable again
 * after it would have been evicted, never the reverse; size the bound to the session rate.
 */
export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, Record_>();
  private readonly maxEntries: number;

  constructor(maxEntries = 100_000) {
    this.maxEntries = maxEntries;
  }

  lookup(sid: string): StoredSession | undefined {
    return this.live(sid);
  }

  async markEnded(sid: string, ttlMs: number): Promise<void> {
    this.write(sid, ttlMs).ended = true;
  }

  async setUpstream(sid: string, backend: string, ref: UpstreamSessionRef, ttlMs: number): Promise<void> {
    const record = this.write(sid, ttlMs);
    record.upstreams = { ...record.upstreams, [backend]: ref };
  }

  async close(): Promise<void> {
    this.records.clear();
  }

  private live(sid: string): Record_ | undefined {
    const record = this.records.get(sid);
    if (record && record.expiresAt < Date.now()) {
      this.records.delete(sid);
      return undefined;
    }
    return record;
  }

  private write(sid: string, ttlMs: number): Record_ {
    let record = this.live(sid);
    if (!record) {
      if (this.records.size >= this.maxEntries) this.records.delete(this.records.keys().next().value!);
      record = { ended: false, upstreams: undefined, expiresAt: 0 };
      this.records.set(sid, record);
    }
    record.expiresAt = Math.max(record.expiresAt, Date.now() + ttlMs);
    return record;
  }
}
