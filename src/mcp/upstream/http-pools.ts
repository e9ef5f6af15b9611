import { HttpClientPool } from '../../http/client/pool.ts';

/**
 * The connections to one upstream origin, in two pools: one for requests, which come and go,
 * and one for server streams (a session's GET stream, a legacy SSE stream), each of which holds
 * its connection for as long as the session listens. Apart, so that sessions that listen can
 * never take every connection and leave the requests of all sessions queued behind them.
 */
export interface OriginPools {
  readonly requests: HttpClientPool;
  readonly streams: HttpClientPool;
}

/** Kept-alive connections per origin, shared by every session and kept across config reloads; closed once, at shutdown. */
export class HttpPools {
  private readonly pools = new Map<string, OriginPools>();
  private readonly requestConnections: number;
  private readonly streamConnections: number;

  constructor(requestConnections = 128, streamConnections = 1024) {
    this.requestConnections = requestConnections;
    this.streamConnections = streamConnections;
  }

  /** `origin` as compiled into the backend's IR: the same string on every request, so its hash is worked out once. */
  get(origin: string): OriginPools {
    let pools = this.pools.get(origin);
    if (!pools) {
      pools = {
        requests: new HttpClientPool(origin, { connections: this.requestConnections, keepAliveMs: 30_000 }),
        streams: new HttpClientPool(origin, { connections: this.streamConnections, keepAliveMs: 30_000 }),
      };
      this.pools.set(origin, pools);
    }
    return pools;
  }

  close(): void {
    for (const { requests, streams } of this.pools.values()) {
      requests.close();
      streams.close();
    }
    this.pools.clear();
  }
}
