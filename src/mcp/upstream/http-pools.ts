import { Pool } from 'undici';

/**
 * One keep-alive connection pool per upstream origin, shared by every session and kept
 * across config reloads; closed once, at shutdown.
 */
export class HttpPools {
  private readonly pools = new Map<string, Pool>();
  /** The pool of each compiled backend URL: URL's origin getter builds a new string on every call. */
  private byUrl = new WeakMap<URL, Pool>();
  private readonly connections: number;

  constructor(connectionsPerOrigin = 128) {
    this.connections = connectionsPerOrigin;
  }

  get(url: URL): Pool {
    const known = this.byUrl.get(url);
    if (known) return known;
    let pool = this.pools.get(url.origin);
    if (!pool) {
      pool = new Pool(url.origin, { connections: this.connections, keepAliveTimeout: 30_000, pipelining: 1 });
      this.pools.set(url.origin, pool);
    }
    this.byUrl.set(url, pool);
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    this.byUrl = new WeakMap();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}
