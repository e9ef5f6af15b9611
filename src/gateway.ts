import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminHandler } from './http/admin.ts';
import { HttpError } from './http/errors.ts';
import { Listener } from './http/listener.ts';
import { sendProtectedResourceMetadata } from './http/oauth-metadata.ts';
import { ClientAddressResolver } from './http/client-address.ts';
import { defaultSsrfPolicy, guardedAgent, guardedFetch } from './security/ssrf.ts';
import { checkOrigin } from './http/origin.ts';
import { callerOf } from './security/caller.ts';
import { AuditLog } from './security/audit.ts';
import { Guards } from './mcp/guard/guards.ts';
import type { PinChange } from './mcp/guard/tool-pins.ts';
import { toolDefinitionChanges } from './telemetry/metrics.ts';
import { anonymous, type Identity } from './security/identity.ts';
import type { GatewayIR, ListenerIR } from './ir/types.ts';
import { SessionDispatcher } from './mcp/dispatcher.ts';
import { McpEndpoint, type EndpointConfig } from './mcp/endpoint.ts';
import { LegacySseEndpoint } from './mcp/legacy-endpoint.ts';
import { compileRoute, type RouteRuntime } from './mcp/route-runtime.ts';
import { OpenedSessions } from './mcp/session-token.ts';
import { ChannelRegistry } from './mcp/upstream/channel-registry.ts';
import { UpstreamConnector } from './mcp/upstream/connector.ts';
import { HttpPools } from './mcp/upstream/http-pools.ts';
import { MemorySessionStore } from './state/memory-session-store.ts';
import { createRedis, type Redis } from './state/redis.ts';
import { RedisEventStore } from './state/redis-event-store.ts';
import { RedisSessionStore } from './state/redis-session-store.ts';
import type { EventStore } from './state/event-store.ts';
import { MemoryEventStore } from './state/memory-event-store.ts';
import type { SessionStore } from './state/session-store.ts';
import type { Logger } from './telemetry/logger.ts';
import { killAllStdioProcessesSync } from './mcp/upstream/stdio-process.ts';
import { isoNow } from './util/iso-time.ts';

/** Everything a request reads from configuration, compiled once per load and swapped whole. */
interface Snapshot {
  readonly ir: GatewayIR;
  /** listener name → request path → what serves it */
  readonly routes: ReadonlyMap<string, ReadonlyMap<string, RouteEntry>>;
  readonly endpoint: EndpointConfig;
  readonly clientAddress: ClientAddressResolver;
  /** Aborted when a reload replaces this snapshot (see RouteRuntime.retired). */
  readonly retirement: AbortController;
}

const FORWARDING_HEADERS = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'forwarded'];

/** What a request path leads to: a route's streamable HTTP endpoint, or one of its legacy SSE paths. */
interface RouteEntry {
  readonly route: RouteRuntime;
  readonly serves: 'mcp' | 'sse' | 'message' | 'oauth-metadata';
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
  private readonly redis: Redis | undefined;
  /** Opened once at start (a reload keeps it): records keep flowing while configs change. */
  private readonly audit: AuditLog | undefined;
  /** Per-backend defences; they outlive reloads, so pins learned on first use are kept. */
  readonly guards: Guards;
  private readonly store: SessionStore;
  private readonly events: EventStore;
  private readonly endpoint: McpEndpoint;
  private readonly legacy: LegacySseEndpoint;
  private readonly listeners = new Map<string, { listener: Listener; ir: ListenerIR }>();
  private admin: Listener | undefined;
  private draining = false;

  constructor(ir: GatewayIR, logger: Logger) {
    this.logger = logger;
    warnAboutRisks(ir, logger);
    this.audit = ir.audit && new AuditLog({ destination: ir.audit.destination, maxBufferedRecords: ir.audit.maxBuffered }, (n) =>
      logger.warn({ dropped: n }, 'audit records dropped: the audit destination is too slow'),
    );
    this.guards = new Guards({ onPinChange: (change) => this.onPinChange(change) }, logger);
    this.snapshot = compileSnapshot(ir, this.audit, this.guards);
    if (ir.state.redisUrl) {
      this.redis = createRedis(ir.state.redisUrl, { onError: (err) => logger.warn({ err: err.message }, 'redis connection problem') });
      this.store = new RedisSessionStore(this.redis);
      this.events = new RedisEventStore(this.redis, ir.state.events);
    } else {
      this.store = new MemorySessionStore();
      this.events = new MemoryEventStore(ir.state.events);
    }
    this.connector = new UpstreamConnector(this.pools, this.channels, ir.limits.maxLineBytes, logger);
    const dispatcher = new SessionDispatcher({ connector: this.connector, store: this.store, logger });
    this.endpoint = new McpEndpoint({ dispatcher, connector: this.connector, store: this.store, events: this.events });
    this.legacy = new LegacySseEndpoint(dispatcher, this.connector);
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
      this.admin = new Listener('admin', adminHandler(this), this.logger, this.snapshot.ir.limits);
      const address = await this.admin.listen(admin.host, admin.port);
      this.logger.info({ listener: 'admin', address: `${address.address}:${address.port}` }, 'listening');
    }
  }

  /**
   * Swaps in a new configuration. Requests already running finish on the snapshot they
   * started with; sessions survive because their tokens do not depend on the snapshot.
   */
  async reload(ir: GatewayIR): Promise<void> {
    const next = compileSnapshot(ir, this.audit, this.guards);
    warnAboutRisks(ir, this.logger);
    const state = this.snapshot.ir.state;
    if (ir.state.redisUrl !== state.redisUrl || JSON.stringify(ir.state.events) !== JSON.stringify(state.events)) {
      this.logger.warn('state settings changed: they take effect at the next restart');
    }
    await this.connector.startShared(ir.backends.values());
    await this.bindListeners(ir);
    const previous = this.snapshot;
    this.snapshot = next;
    previous.retirement.abort();
    this.logger.info({ source: ir.source }, 'configuration reloaded');
  }

  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const grace = this.snapshot.ir.limits.shutdownGraceMs;
    this.endpoint.closeStreams();
    this.legacy.closeStreams();
    await Promise.allSettled([...this.listeners.values()].map(({ listener }) => listener.close(grace)));
    this.listeners.clear();
    await this.admin?.close(0);
    await this.channels.closeAll();
    await this.connector.stopShared();
    this.pools.close();
    await this.store.close();
    await this.events.close();
    await this.guards.close();
    await this.audit?.close();
    await this.redis?.quit().catch(() => this.redis?.disconnect());
    killAllStdioProcessesSync();
  }

  private onPinChange(change: PinChange): void {
    toolDefinitionChanges.inc({ backend: change.backend });
    this.logger.warn(change, 'tool definition changed since it was pinned');
    this.audit?.write({
      time: isoNow(),
      route: '*',
      backend: change.backend,
      method: 'tools/list',
      tool: change.tool,
      decision: 'deny',
      rule: 'tool-pin',
      reason: `definition changed: pinned ${change.pinnedHash.slice(0, 12)}…, now ${change.newHash.slice(0, 12)}…`,
    });
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
      const listener = new Listener(l.name, (req, res) => this.serve(l.name, req, res), this.logger, ir.limits, l.tls);
      const address = await listener.listen(l.host, l.port);
      this.listeners.set(l.name, { listener, ir: l });
      this.logger.info({ listener: l.name, address: `${address.address}:${address.port}` }, 'listening');
    }
  }

  /** Synchronous up to the endpoint unless a token must be verified: the common path costs no extra promise. */
  private serve(listener: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const snapshot = this.snapshot;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const entry = snapshot.routes.get(listener)?.get(path);
    if (!entry) throw new HttpError(404, `no route for ${path}`);
    if (entry.serves === 'oauth-metadata') {
      sendProtectedResourceMetadata(res, entry.route.ir.oauth!);
      return Promise.resolve();
    }
    checkOrigin(entry.route.ir.origin, req.headers);
    const peer = req.socket.remoteAddress ?? '';
    const address = snapshot.clientAddress.resolve(peer, req.headers['x-forwarded-for']);
    // Forwarding headers from anyone but a trusted proxy are the client's own claims: no policy may read them.
    // Looked up first: deleting a property that is not there still costs a runtime call.
    if (address === peer) for (const h of FORWARDING_HEADERS) if (req.headers[h] !== undefined) delete req.headers[h];
    const authenticator = entry.route.authenticator;
    if (!authenticator) return this.serveAs(entry, snapshot, req, res, anonymous(address));
    const identity = authenticator.authenticate(req, address);
    if (identity instanceof Promise) return identity.then((known) => this.serveAs(entry, snapshot, req, res, known));
    return this.serveAs(entry, snapshot, req, res, identity);
  }

  private serveAs(entry: RouteEntry, snapshot: Snapshot, req: IncomingMessage, res: ServerResponse, identity: Identity): Promise<void> {
    const caller = callerOf(req, identity);
    switch (entry.serves) {
      case 'mcp':
        return this.endpoint.handle(req, res, entry.route, snapshot.endpoint, caller);
      case 'sse':
        return this.legacy.open(req, res, entry.route, snapshot.endpoint, caller);
      case 'message':
        return this.legacy.message(req, res, entry.route, snapshot.endpoint, caller);
      case 'oauth-metadata':
        throw new Error('unreachable: metadata is answered before authentication');
    }
  }
}

/** Settings a reader of the logs should know were chosen on purpose. */
function warnAboutRisks(ir: GatewayIR, logger: Logger): void {
  for (const b of ir.backends.values()) {
    if (b.transport !== 'stdio' && b.passthrough) {
      logger.warn({ backend: b.name }, 'passthrough: clients\' own tokens are sent to this backend (the MCP specification forbids token passthrough)');
    }
  }
}

function compileSnapshot(ir: GatewayIR, audit: AuditLog | undefined, guards: Guards): Snapshot {
  const policy = defaultSsrfPolicy({ allowedSchemes: [...ir.outbound.schemes], allowedRanges: [...ir.outbound.allowedRanges], maxRedirects: ir.outbound.maxRedirects, timeoutMs: ir.outbound.timeoutMs });
  const agent = guardedAgent(policy);
  // Key sets only, and never through a redirect: an open redirect on the IdP's host would hand the keys to whoever it points at.
  const keysPolicy = { ...policy, maxRedirects: 0 };
  const fetchJson = async (url: URL): Promise<unknown> => {
    const res = await guardedFetch(url, keysPolicy, { agent, headers: { accept: 'application/json' } });
    if (res.status !== 200) throw new Error(`HTTP ${res.status} from ${url.href}`);
    return JSON.parse(res.body);
  };
  const retirement = new AbortController();
  const routes = new Map<string, Map<string, RouteEntry>>();
  for (const l of ir.listeners) {
    const paths = new Map<string, RouteEntry>();
    for (const r of l.routes) {
      const route = compileRoute(r, audit, fetchJson, guards, retirement.signal);
      paths.set(r.path, { route, serves: 'mcp' });
      if (r.oauth) paths.set(r.oauth.metadataPath, { route, serves: 'oauth-metadata' });
      if (r.legacySse) {
        paths.set(`${r.path}/sse`, { route, serves: 'sse' });
        paths.set(`${r.path}/message`, { route, serves: 'message' });
      }
    }
    routes.set(l.name, paths);
  }
  return {
    ir,
    routes,
    endpoint: { keys: ir.session.keys, sessions: new OpenedSessions(ir.session.keys, ir.session.ttlMs), ttlMs: ir.session.ttlMs, maxBodyBytes: ir.limits.maxBodyBytes, streamIdleTimeoutMs: ir.limits.streamIdleTimeoutMs },
    clientAddress: new ClientAddressResolver(ir.trustedProxies),
    retirement,
  };
}
