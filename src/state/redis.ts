import type * as IoRedis from 'ioredis';
import type { Redis } from 'ioredis';
import { lazyModule } from '../util/lazy-module.ts';

export type { Redis };

const ioredis = lazyModule<typeof IoRedis>('ioredis');

/** Every key the gateway writes starts with this, then a kind: `switchboard:<kind>:…`. */
export const KEY_PREFIX = 'switchboard:';

/** How long a command may wait for its reply before it rejects (callers fail closed). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

export interface RedisConnectionOptions {
  /** Milliseconds before a command without a reply rejects; blocking reads get their block time on top. */
  readonly commandTimeoutMs?: number;
  /**
   * Connection errors (refused, reset, timed out). Commands reject on their own, so this is
   * for logging; without it ioredis prints them to the console.
   */
  readonly onError?: (error: Error) => void;
}

/**
 * The one connection a gateway process shares between its Redis stores. It connects at
 * once, queues commands while (re)connecting, retries a command on at most one
 * reconnect, and rejects any command that has no reply within the command timeout, so a
 * Redis that is down or unreachable makes callers fail rather than wait.
 */
export function createRedis(url: string, options: RedisConnectionOptions = {}): Redis {
  if (!/^rediss?:\/\//.test(url)) throw new Error(`redis url must start with redis:// or rediss://, got ${JSON.stringify(url)}`);
  const redis = new (ioredis().Redis)(url, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
  });
  if (options.onError) redis.on('error', options.onError);
  return redis;
}

/**
 * A key of the given kind: `switchboard:<kind>:<part>:<part>…`. Parts are URI-encoded, so
 * one holding ':' or '/' cannot be mistaken for two (`a:b` + `c` ≠ `a` + `b:c`).
 */
export function redisKey(kind: string, ...parts: string[]): string {
  return `${KEY_PREFIX}${kind}:${parts.map(encodeURIComponent).join(':')}`;
}

/** A TTL as PEXPIRE takes it: a whole number of milliseconds, at least 1. */
export function ttlArg(ttlMs: number): number {
  return Number.isFinite(ttlMs) ? Math.max(1, Math.ceil(ttlMs)) : 1;
}

/**
 * The replies of a MULTI/EXEC or pipeline, rejecting with the first command's error. EXEC
 * answers null when the transaction was aborted; that is an error here too.
 */
export function execReplies(result: [error: Error | null, reply: unknown][] | null): unknown[] {
  if (!result) throw new Error('redis transaction aborted');
  return result.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

/** Quits a connection, and drops it when the server no longer answers. */
export async function quitRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
