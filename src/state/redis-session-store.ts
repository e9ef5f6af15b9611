import type { UpstreamSessionRef } from '../mcp/session-token.ts';
import { execReplies, quitRedis, redisKey, ttlArg, type Redis } from './redis.ts';
import type { SessionStore, StoredSession } from './session-store.ts';

export interface RedisStoreOptions {
  /** Quit the connection on close(); leave false when other stores share it. */
  readonly ownsConnection?: boolean;
}

const ENDED = 'ended';
const UPSTREAM = 'up:';

/**
 * The session store replicas share: one hash per downstream session,
 * `switchboard:session:<sid>`, holding `ended` and one `up:<backend>` field per upstream
 * override (JSON). Every write keeps the longest TTL asked for so far, as the memory store
 * does, so a short-lived override can never cut a revocation short. Needs Redis 7
 * (PEXPIRE NX/GT).
 */
export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis;
  private readonly ownsConnection: boolean;

  constructor(redis: Redis, options: RedisStoreOptions = {}) {
    this.redis = redis;
    this.ownsConnection = options.ownsConnection ?? false;
  }

  async lookup(sid: string): Promise<StoredSession | undefined> {
    const record = await this.redis.hgetall(key(sid));
    let upstreams: Record<string, UpstreamSessionRef> | undefined;
    let fields = 0;
    for (const [field, value] of Object.entries(record)) {
      fields++;
      if (!field.startsWith(UPSTREAM)) continue;
      upstreams ??= {};
      upstreams[field.slice(UPSTREAM.length)] = parseRef(value, sid, field);
    }
    return fields === 0 ? undefined : { ended: record[ENDED] === '1', upstreams };
  }

  async markEnded(sid: string, ttlMs: number): Promise<void> {
    await this.write(sid, ENDED, '1', ttlMs);
  }

  async setUpstream(sid: string, backend: string, ref: UpstreamSessionRef, ttlMs: number): Promise<void> {
    const stored: UpstreamSessionRef = { id: ref.id, protocolVersion: ref.protocolVersion, features: [...ref.features] };
    await this.write(sid, UPSTREAM + backend, JSON.stringify(stored), ttlMs);
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await quitRedis(this.redis);
  }

  /** HSET, then a TTL: set when the hash has none (new), raised when the new one is longer. */
  private async write(sid: string, field: string, value: string, ttlMs: number): Promise<void> {
    const k = key(sid);
    const ttl = ttlArg(ttlMs);
    execReplies(await this.redis.multi().hset(k, field, value).pexpire(k, ttl, 'NX').pexpire(k, ttl, 'GT').exec());
  }
}

function key(sid: string): string {
  return redisKey('session', sid);
}

/** A stored override; anything else is an error (fail closed), never a guess. */
function parseRef(value: string, sid: string, field: string): UpstreamSessionRef {
  const ref: unknown = JSON.parse(value);
  if (
    typeof ref === 'object' &&
    ref !== null &&
    'id' in ref &&
    (typeof ref.id === 'string' || ref.id === null) &&
    'protocolVersion' in ref &&
    typeof ref.protocolVersion === 'string' &&
    'features' in ref &&
    Array.isArray(ref.features) &&
    ref.features.every((f) => typeof f === 'string')
  ) {
    return { id: ref.id, protocolVersion: ref.protocolVersion, features: ref.features };
  }
  throw new Error(`malformed upstream session in redis for session ${sid} (${field})`);
}
