import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminHandler } from './http/admin.ts';
import { HttpError } from './http/errors.ts';
import { Listener } from './http/listener.ts';
import { checkOrigin } from './http/origin.ts';
import type { GatewayIR, ListenerIR } from './ir/types.ts';
import { SessionDispatcher } from './mcp/dispatcher.ts';
import { McpEndpoint, type EndpointConfig } from './mcp/endpoint.ts';
import { compileRoute, type RouteRuntime } from './mcp/route-runtime.ts';
import { ChannelRegistry } from './mcp/upstream/channel-registry.ts';
import { UpstreamConnector } from './mcp/upstream/connector.ts';
import { HttpPools } from './mcp/upstream/http-pools.ts';
import { MemorySessionStore } from './state/memory-session-store.ts';
import type { EventStore } from './state/event-store.ts';
import { MemoryEventStore } from './state/memory-event-store.ts';
import type { SessionStore } from './state/session-store.ts';
import type { Logger } from './telemetry/logger.ts';
import { killAllStdioProcessesSync } from './mcp/upstream/stdio-process.ts';

/** Everything a request reads from configuration, compiled once per load and swapped whole. */
interface Snapshot {
  readonly ir: GatewayIR;
  /** listener name → route path → route */
  readonly routes: ReadonlyMap<string, ReadonlyMap<string, RouteRuntime>>;
  readonly endpoint: EndpointConfig;
}

/** Process-backed upstream sessions a gateway holds at most. */
const MAX_CHANNEL_SESSIONS = 1_000;

/**
 * The gateway process: listeners bound to the current snapshot, upstream plumbing shared
 * across reloads, and an orderly shutdown.
 */
export class Gateway {
  private snapshot: Snapshot;
  private readonly logger: Logger;
  private readonly pools = new HttpPools();
  private readonly channels = new ChannelRegistry(MAX_CHANNEL_SESSIONS);
  private readonly connector: UpstreamConnector;
  private readonly store: SessionStore = new MemorySessionStore();
  private readonly events: EventStore = new MemoryEventStore({ maxEventsPerStream: 1_000, ttlMs: 5 * 60_000 });
  private readonly endpoint: McpEndpoint;
  private readonly listeners = new Map<string, { listener: Listener; ir: ListenerIR }>();
  private admin: Listener | undefined;
  private draining = false;

  constructor(ir: GatewayIR, logger: Logger) {
    this.logger = logger;
    this.snapshot = compileSnapshot(ir);
    this.connector = new UpstreamConnector(this.pools, this.channels, ir.limits.maxLineBytes, logger);
    const dispatcher = new SessionDispatcher({ connector: this.connector, store: this.store, logger });
    this.endpoint = new McpEndpoint({ dispatcher, connector: this.connector, store: this.store, events: this.events });
  }

  get config(): GatewayIR {
    return this.snapshot.ir;
  }

  get ready(): boolean {
    return !this.draining && this.listeners.size === this.snapshot.ir.listeners.length;
  }

  /** Bound address of each listener (port 0 in config becomes the real port here). */
  addresses(): Map<string, AddressInfo> {
    const out = new Map<string, AddressInfo>();
    for (const [name, { listener }] of this.listeners) if (listener.address) out.set(name, listener.address);
    return out;
  }

  /** The admin listener's address, when it is enabled. */
  get adminAddress(): AddressInfo | undefined {
    return this.admin?.address;
  }

  async start(): Promise<void> {
    await this.connector.startShared(this.snapshot.ir.backends.values());
    await this.bindListeners(this.snapshot.ir);
    const admin = this.snapshot.ir.admin;
    if (admin) {
      this.admin = new Listener('admin', adminHandler(this), this.logger);
      const address = await this.admin.listen(admin.host, admin.port);
      this.logger.info({ listener: 'admin', address: `${address.address}:${address.port}` }, 'listening');
    }
  }

  /**
   * Swaps in a new configuration. Requests already running finish on the snapshot they
   * started with; sessions survive because their tokens do not depend on the snapshot.
   */
  async reload(ir: GatewayIR): Promise<void> {
    const next = compileSnapshot(ir);
    await this.connector.startShared(ir.backends.values());
    await this.bindListeners(ir);
    this.snapshot = next;
    this.logger.info({ source: ir.source }, 'configuration reloaded');
  }

  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const grace = this.snapshot.ir.limits.shutdownGraceMs;
    this.endpoint.closeStreams();
    await Promise.allSettled([...this.listeners.values()].map(({ listener }) => listener.close(grace)));
    this.listeners.clear();
    await this.admin?.close(0);
    await this.channels.closeAll();
    await this.connector.stopShared();
    await this.pools.close();
    await this.store.close();
    await this.events.close();
    killAllStdioProcessesSync();
  }

  private async bindListeners(ir: GatewayIR): Promise<void> {
    const wanted = new Map(ir.listeners.map((l) => [l.name, l]));
    for (const [name, current] of this.listeners) {
      const next = wanted.get(name);
      if (!next || next.host !== current.ir.host || (next.port !== current.ir.port && next.port !== 0)) {
        await current.listener.close(ir.limits.shutdownGraceMs);
        this.listeners.delete(name);
      }
    }
    for (const l of ir.listeners) {
      if (this.listeners.has(l.name)) continue;
      const listener = new Listener(l.name, (req, res) => this.serve(l.name, req, res), this.logger);
      const address = await listener.listen(l.host, l.port);
      this.listeners.set(l.name, { listener, ir: l });
      this.logger.info({ listener: l.name, address: `${address.address}:${address.port}` }, 'listening');
    }
  }

  private async serve(listener: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const snapshot = this.snapshot;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const route = snapshot.routes.get(listener)?.get(path);
    if (!route) throw new HttpError(404, `no route for ${path}`);
    checkOrigin(route.ir.origin, req.headers);
    await this.endpoint.handle(req, res, route, snapshot.endpoint);
  }
}

function compileSnapshot(ir: GatewayIR): Snapshot {
  const routes = new Map<string, Map<string, RouteRuntime>>();
  for (const l of ir.listeners) routes.set(l.name, new Map(l.routes.map((r) => [r.path, compileRoute(r)])));
  return {
    ir,
    routes,
    endpoint: { keys: ir.session.keys, ttlMs: ir.session.ttlMs, maxBodyBytes: ir.limits.maxBodyBytes },
  };
}
