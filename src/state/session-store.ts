import type { UpstreamSessionRef } from '../mcp/session-token.ts';
import type { MaybePromise } from '../util/maybe-promise.ts';

/** What the store holds for one session. */
export interface StoredSession {
  readonly ended: boolean;
  /** Upstream sessions opened after the token was issued, overriding the token's. */
  readonly upstreams: Record<string, UpstreamSessionRef> | undefined;
}

/**
 * What the sealed session token cannot carry because it changes after the token was
 * issued: sessions the client ended, and upstream sessions opened later (a backend that
 * was down at initialize, a reopened upstream). Memory by default; Redis when replicas
 * must agree.
 */
export interface SessionStore {
  /** Read on every request of a session: at once from memory, one round trip from Redis. */
  lookup(sid: string): MaybePromise<StoredSession | undefined>;
  markEnded(sid: string, ttlMs: number): Promise<void>;
  setUpstream(sid: string, backend: string, ref: UpstreamSessionRef, ttlMs: number): Promise<void>;
  close(): Promise<void>;
}
