import type { ChannelSession } from './channel-session.ts';
import { UpstreamError } from './types.ts';

interface Entry {
  readonly session: ChannelSession;
  readonly idleMs: number;
  lastUsed: number;
}

const SWEEP_EVERY_MS = 5_000;

/**
 * The session-scoped upstream sessions this process holds for channel transports (a stdio
 * process or a legacy SSE connection per downstream session). Bounded in count; idle ones
 * are ended, since clients often vanish without sending DELETE and each may hold a process.
 */
export class ChannelRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(maxEntries: number) {
    this.maxEntries = maxEntries;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref();
  }

  get size(): number {
    return this.entries.size;
  }

  add(sid: string, backend: string, session: ChannelSession, idleMs: number): void {
    if (this.entries.size >= this.maxEntries) {
      void session.end();
      throw new UpstreamError(backend, 'unavailable', `the gateway holds its maximum of ${this.maxEntries} process-backed sessions`);
    }
    this.entries.set(key(sid, backend), { session, idleMs, lastUsed: Date.now() });
  }

  get(sid: string, backend: string): ChannelSession | undefined {
    const entry = this.entries.get(key(sid, backend));
    if (!entry) return undefined;
    if (!entry.session.alive) {
      this.entries.delete(key(sid, backend));
      return undefined;
    }
    entry.lastUsed = Date.now();
    return entry.session;
  }

  async endSession(sid: string): Promise<void> {
    const prefix = `${sid}\u0000`;
    const ending: Array<Promise<void>> = [];
    for (const [k, entry] of this.entries) {
      if (!k.startsWith(prefix)) continue;
      this.entries.delete(k);
      ending.push(entry.session.end());
    }
    await Promise.allSettled(ending);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(all.map((e) => e.session.end()));
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, entry] of this.entries) {
      // A client listening on the session's server stream uses it, though it sends nothing; its idle time starts when it stops.
      if (entry.session.listening) entry.lastUsed = now;
      if (!entry.session.alive || now - entry.lastUsed > entry.idleMs) {
        this.entries.delete(k);
        void entry.session.end();
      }
    }
  }
}

function key(sid: string, backend: string): string {
  return `${sid}\u0000${backend}`;
}
