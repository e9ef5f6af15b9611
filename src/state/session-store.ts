import type { UpstreamSessionRef } from '../mcp/session-token.ts';

/**
 * What the sealed session token cannot carry because it changes after the token was
 * issued: sessions the client ended, and upstream sessions opened later (a backend that
 * was down at initialize, a reopened upstream). Memory by default; Redis when replicas
 * must agree.
 */
export interface SessionStore {
  isEnded(sid: string): Promise<boolean>;
  markEnded(sid: string, ttlMs: number): Promise<void>;
  /** Upstream sessions opened after the token was issued, overriding the token's. */
  upstreams(sid: string): Promise<Record<string, UpstreamSessionRef> | undefined>;
  setUpstream(sid: string, backend: string, ref: UpstreamSessionRef, ttlMs: number): Promise<void>;
  close(): Promise<void>;
}
