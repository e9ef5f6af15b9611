import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { TokenCache } from '../util/token-cache.ts';

/**
 * The downstream session id is this state, sealed with AES-256-GCM: any replica holding
 * the key can open it, so replicas share no session table and a restart loses nothing.
 */
export interface SessionState {
  /** Random id naming the session in logs, in-memory stream state and the revocation list. */
  readonly sid: string;
  /** "listener/route": a token minted for one route is not accepted on another. */
  readonly route: string;
  /** Who opened the session (identity.principalKey): the same credentials must come with every request. */
  readonly owner: string;
  readonly protocolVersion: string;
  /** The client's initialize params, replayed to open or reopen upstream sessions. */
  readonly client: { readonly capabilities: Record<string, unknown>; readonly clientInfo: Record<string, unknown> };
  /** Upstream session per backend: the id it issued, or null when it issued none. */
  readonly upstreams: Readonly<Record<string, UpstreamSessionRef>>;
  /** Issued at, in seconds since the epoch. */
  readonly iat: number;
}

export interface UpstreamSessionRef {
  readonly id: string | null;
  readonly protocolVersion: string;
  /** Server features the upstream declared, so requests go only where they can be answered. */
  readonly features: readonly string[];
}

/** A downstream session id as the client holds it: distinct from upstream ids by type. */
export type DownstreamSessionId = string & { readonly __brand: 'DownstreamSessionId' };

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** The IV's length in a token's base64url. */
const IV_CHARS = Math.ceil((IV_BYTES * 4) / 3);
/** Bounds the work an attacker can cause by sending a huge Mcp-Session-Id. */
export const MAX_TOKEN_CHARS = 8192;

export function newSessionSid(): string {
  return randomBytes(16).toString('base64url');
}

export function sealSession(state: SessionState, key: KeyObject): DownstreamSessionId {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(state), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url') as DownstreamSessionId;
}

/**
 * Opens a token with any of the keys (the first is the current one, the rest are being
 * rotated out). Returns undefined for anything forged, truncated, foreign or expired.
 */
export function openSession(token: string, keys: readonly KeyObject[], ttlMs: number, nowMs = Date.now()): SessionState | undefined {
  if (token.length === 0 || token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  const raw = Buffer.from(token, 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
  // base64url's last character may carry unused bits: only the one spelling we issued is a token,
  // so a session id cannot be varied into another string that opens to the same session.
  if (raw.toString('base64url') !== token) return undefined;
  const iv = raw.subarray(0, IV_BYTES);
  const tag = raw.subarray(raw.length - TAG_BYTES);
  const body = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
  for (const key of keys) {
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(tag);
      plain = Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      continue;
    }
    const state = JSON.parse(plain.toString('utf8')) as SessionState;
    if (nowMs - state.iat * 1000 > ttlMs) return undefined;
    return state;
  }
  return undefined;
}

/**
 * Opened tokens, remembered: a session sends the same token with every request, and
 * opening one (base64, AES-GCM, JSON) costs more than the rest of the gateway's own work
 * on a call. Made per config snapshot, so a change of keys starts it empty; expiry is
 * still checked on every use. Bounded: when full it starts over, which costs only a
 * re-open per active session.
 */
export class OpenedSessions {
  private readonly keys: readonly KeyObject[];
  private readonly ttlMs: number;
  /** Found by the token's first characters, its random IV. */
  private readonly opened: TokenCache<SessionState>;

  constructor(keys: readonly KeyObject[], ttlMs: number, capacity = 10_000) {
    this.keys = keys;
    this.ttlMs = ttlMs;
    this.opened = new TokenCache((token) => token.slice(0, IV_CHARS), capacity);
  }

  open(token: string, nowMs = Date.now()): SessionState | undefined {
    const known = this.opened.get(token);
    if (known) return nowMs - known.iat * 1000 > this.ttlMs ? undefined : known;
    const state = openSession(token, this.keys, this.ttlMs, nowMs);
    if (state) this.opened.set(token, state);
    return state;
  }
}
