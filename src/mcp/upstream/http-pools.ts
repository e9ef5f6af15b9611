import { HttpClientPool } from '../../http/client/pool.ts';

/**
 * One keep-alive connection pool per upstream origin, shared by every session and kept
 * across config reloads; closed once, at shutdown.
 */
export class HttpPools {
  private readonly pools = new Map<string, HttpClientPool>();
  private readonly connections: number;

  constructor(connectionsPerOrigin = 128) {
    this.connections = connectionsPerOrigin;
  }

  /** `origin` as compiled into the backend's IR: the same string on every request, so its hash is worked out once. */
  get(origin: string): HttpClientPool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new HttpClientPool(origin, { connections: this.connections, keepAliveMs: 30_000 });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  close(): void {
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }
}
