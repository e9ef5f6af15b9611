import { Pool } from '../../util/undici.ts';

/**
 * One keep-alive connection pool per upstream origin, shared by every session and kept
 * across config reloads; closed once, at shutdown.
 */
export class HttpPools {
  private readonly pools = new Map<string, Pool>();
  private readonly connections: number;

  constructor(connectionsPerOrigin = 128) {
    this.connections = connectionsPerOrigin;
  }

  /** `origin` as compiled into the backend's IR: the same string on every request, so its hash is worked out once. */
  get(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, { connections: this.connections, keepAliveTimeout: 30_000, pipelining: 1 });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}
