import type { BackendIR, RemoteBackendIR, StdioBackendIR } from '../../ir/types.ts';
import type { JsonRpcRequest } from '../../jsonrpc/message.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { MaybePromise } from '../../util/maybe-promise.ts';
import { FEATURES, GATEWAY_INFO, LATEST_PROTOCOL_VERSION } from '../protocol.ts';
import type { UpstreamSessionRef } from '../session-token.ts';
import { ChannelRegistry } from './channel-registry.ts';
import { ChannelSession } from './channel-session.ts';
import type { HttpPools } from './http-pools.ts';
import { LegacySseChannel } from './legacy-sse-channel.ts';
import { SharedSessionView } from './shared-session.ts';
import { StdioChannel } from './stdio-channel.ts';
import { StreamableHttpSession } from './streamable-http.ts';
import { UpstreamError, type Inbound, type UpstreamSession } from './types.ts';

export interface ClientInit {
  readonly protocolVersion: string;
  readonly capabilities: Record<string, unknown>;
  readonly clientInfo: Record<string, unknown>;
}

export interface OpenedUpstream {
  readonly session: UpstreamSession;
  readonly ref: UpstreamSessionRef;
  /** The upstream's initialize result: capabilities, serverInfo, instructions, protocolVersion. */
  readonly result: Record<string, unknown>;
}

/**
 * Opens and resumes upstream sessions for every kind of backend. Streamable HTTP sessions
 * are rebuilt from the token alone; channel-backed ones (stdio, legacy SSE) live in this
 * process and are reopened when this process does not hold them (restart, other replica).
 */
export class UpstreamConnector {
  private readonly pools: HttpPools;
  private readonly channels: ChannelRegistry;
  private readonly maxMessageBytes: number;
  private readonly logger: Logger;
  private nextId = 0;
  /** Shared stdio processes, by the configuration that started them. */
  private readonly shared = new Map<string, Promise<ChannelSession>>();
  /**
   * Each downstream session's view of a shared process, by session and backend: what it sent
   * and was asked lives across its requests (a cancel, a client's answer come in requests of
   * their own). Bounded: past MAX_SHARED_VIEWS the oldest is forgotten.
   */
  private readonly sharedViews = new Map<string, SharedSessionView>();
  /** Session-scoped channels being opened, by session and backend. */
  private readonly channelsOpening = new Map<string, Promise<OpenedUpstream>>();
  /**
   * Streamable-HTTP sessions by the token's reference they were rebuilt from: opened tokens
   * are remembered (session-token.ts), so each call of a session finds its upstream
   * session, headers prepared, instead of building it again.
   */
  private readonly httpSessions = new WeakMap<UpstreamSessionRef, StreamableHttpSession>();

  constructor(pools: HttpPools, channels: ChannelRegistry, maxMessageBytes: number, logger: Logger) {
    this.pools = pools;
    this.channels = channels;
    this.maxMessageBytes = maxMessageBytes;
    this.logger = logger;
  }

  /** `callerHeaders`: per-caller headers (a passed-through token) on top of the backend's own. */
  async open(backend: BackendIR, sid: string, client: ClientInit, callerHeaders?: Record<string, string>): Promise<OpenedUpstream> {
    const request = this.initializeRequest(client);
    if (backend.transport === 'streamable-http') {
      const pools = this.pools.get(backend.origin);
      const { sessionId, response } = await StreamableHttpSession.initialize(backend, pools, request, this.maxMessageBytes, callerHeaders);
      const result = resultOf(backend.name, response);
      const protocolVersion = String(result.protocolVersion ?? client.protocolVersion);
      const session = new StreamableHttpSession({ backend, pools, sessionId, protocolVersion, maxMessageBytes: this.maxMessageBytes, callerHeaders });
      await session.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      return { session, ref: { id: sessionId, protocolVersion, features: featuresOf(result) }, result };
    }
    if (backend.transport === 'stdio' && backend.scope === 'shared') {
      const session = await this.sharedView(backend, sid);
      const result = session.initializeResult;
      return { session, ref: { id: null, protocolVersion: String(result.protocolVersion), features: featuresOf(result) }, result };
    }
    // A session's request recovering and its server stream following may both open it again at once: one process, not two.
    const key = sessionBackendKey(sid, backend.name);
    let opening = this.channelsOpening.get(key);
    if (!opening) {
      opening = this.openChannel(backend, sid, request, client, callerHeaders).finally(() => this.channelsOpening.delete(key));
      this.channelsOpening.set(key, opening);
    }
    return opening;
  }

  private async openChannel(backend: Exclude<BackendIR, { transport: 'streamable-http' }>, sid: string, request: JsonRpcRequest, client: ClientInit, callerHeaders?: Record<string, string>): Promise<OpenedUpstream> {
    const session = new ChannelSession(backend.name, await this.connectChannel(backend, callerHeaders), backend.timeoutMs, this.logger);
    try {
      const result = await session.initialize(request);
      this.channels.add(sid, backend.name, session, backend.transport === 'stdio' ? backend.idleTimeoutMs : SSE_IDLE_MS);
      return { session, ref: { id: null, protocolVersion: String(result.protocolVersion ?? client.protocolVersion), features: featuresOf(result) }, result };
    } catch (err) {
      await session.end();
      throw err;
    }
  }

  /**
   * Starts the shared processes of these backends now ("at start") and stops those no
   * longer configured (after a reload).
   */
  async startShared(backends: Iterable<BackendIR>): Promise<void> {
    const wanted = new Map<string, StdioBackendIR>();
    for (const b of backends) if (b.transport === 'stdio' && b.scope === 'shared') wanted.set(sharedKey(b), b);
    for (const [key, session] of this.shared) {
      if (wanted.has(key)) continue;
      this.shared.delete(key);
      void session.then((s) => s.end(), () => {});
    }
    const started = await Promise.allSettled([...wanted.values()].map((b) => this.sharedSession(b)));
    started.forEach((s, i) => {
      if (s.status === 'rejected') this.logger.error({ backend: [...wanted.values()][i]!.name, err: (s.reason as Error).message }, 'shared stdio backend did not start; retried on first use');
    });
  }

  async stopShared(): Promise<void> {
    const all = [...this.shared.values()];
    this.shared.clear();
    await Promise.allSettled(all.map(async (s) => (await s).end()));
  }

  /** The session's view of the backend's shared process: made anew when the process was replaced. */
  private async sharedView(backend: StdioBackendIR, sid: string): Promise<SharedSessionView> {
    const shared = await this.sharedSession(backend);
    const key = sessionBackendKey(sid, backend.name);
    const known = this.sharedViews.get(key);
    if (known?.isOf(shared)) return known;
    const view = new SharedSessionView(shared);
    this.sharedViews.delete(key);
    if (this.sharedViews.size >= MAX_SHARED_VIEWS) this.sharedViews.delete(this.sharedViews.keys().next().value!);
    this.sharedViews.set(key, view);
    return view;
  }

  /** The backend's shared process, initialized once by the gateway; replaced when it died. */
  private async sharedSession(backend: StdioBackendIR): Promise<ChannelSession> {
    const key = sharedKey(backend);
    const existing = this.shared.get(key);
    if (existing) {
      const session = await existing.catch(() => undefined);
      if (session?.alive) return session;
      if (this.shared.get(key) === existing) this.shared.delete(key);
    }
    let starting = this.shared.get(key);
    if (!starting) {
      starting = (async () => {
        const session = new ChannelSession(backend.name, StdioChannel.spawn(backend, this.maxMessageBytes, this.logger), backend.timeoutMs, this.logger);
        try {
          await session.initialize(this.initializeRequest({ protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: GATEWAY_INFO }));
          return session;
        } catch (err) {
          await session.end();
          throw err;
        }
      })();
      starting.catch(() => this.shared.delete(key));
      this.shared.set(key, starting);
    }
    return starting;
  }

  /**
   * The upstream session a token refers to, reopened in this process when it has none. A
   * streamable-HTTP session is at hand at once: every forwarded call resumes one, and
   * nothing in it waits.
   */
  resume(backend: BackendIR, sid: string, ref: UpstreamSessionRef, client: ClientInit, callerHeaders?: Record<string, string>): MaybePromise<UpstreamSession> {
    if (backend.transport !== 'streamable-http') return this.resumeChannel(backend, sid, client, callerHeaders);
    // Per-caller headers (a passed-through token) may change from one request to the next.
    if (callerHeaders) return this.httpSession(backend, ref, callerHeaders);
    const known = this.httpSessions.get(ref);
    if (known?.servesAs(backend)) return known;
    const session = this.httpSession(backend, ref);
    this.httpSessions.set(ref, session);
    return session;
  }

  private httpSession(backend: RemoteBackendIR, ref: UpstreamSessionRef, callerHeaders?: Record<string, string>): StreamableHttpSession {
    return new StreamableHttpSession({
      backend,
      pools: this.pools.get(backend.origin),
      sessionId: ref.id,
      protocolVersion: ref.protocolVersion,
      maxMessageBytes: this.maxMessageBytes,
      callerHeaders,
    });
  }

  private async resumeChannel(backend: Exclude<BackendIR, { transport: 'streamable-http' }>, sid: string, client: ClientInit, callerHeaders?: Record<string, string>): Promise<UpstreamSession> {
    if (backend.transport === 'stdio' && backend.scope === 'shared') return this.sharedView(backend, sid);
    const live = this.channels.get(sid, backend.name);
    if (live) return live;
    this.logger.warn({ backend: backend.name, session: sid }, 'reopening an upstream session this process does not hold; upstream state starts afresh');
    return (await this.open(backend, sid, client, callerHeaders)).session;
  }

  /** Ends every upstream session of a downstream session. */
  async endAll(sid: string, sessions: readonly UpstreamSession[]): Promise<void> {
    for (const s of sessions) if (s instanceof SharedSessionView) this.sharedViews.delete(sessionBackendKey(sid, s.backend));
    await Promise.allSettled(sessions.map((s) => s.end()));
    await this.channels.endSession(sid);
  }

  private async connectChannel(backend: BackendIR, callerHeaders?: Record<string, string>): Promise<ChannelSessionChannel> {
    if (backend.transport === 'stdio') return StdioChannel.spawn(backend, this.maxMessageBytes, this.logger);
    return LegacySseChannel.connect(backend, this.pools.get(backend.origin), this.maxMessageBytes, callerHeaders);
  }

  private initializeRequest(client: ClientInit): JsonRpcRequest {
    return {
      jsonrpc: '2.0',
      id: `switchboard-init-${++this.nextId}`,
      method: 'initialize',
      params: { protocolVersion: client.protocolVersion, capabilities: client.capabilities, clientInfo: client.clientInfo },
    };
  }
}

/** Legacy SSE connections of one client session are closed after this long unused. */
const SSE_IDLE_MS = 10 * 60_000;

/** Views of shared processes kept at most (one per session and shared backend). */
const MAX_SHARED_VIEWS = 10_000;

function sessionBackendKey(sid: string, backend: string): string {
  return `${sid}\n${backend}`;
}

function sharedKey(backend: StdioBackendIR): string {
  return JSON.stringify(backend);
}

type ChannelSessionChannel = ConstructorParameters<typeof ChannelSession>[1];

function featuresOf(result: Record<string, unknown>): string[] {
  const caps = (result.capabilities ?? {}) as Record<string, unknown>;
  return FEATURES.filter((f) => caps[f] !== undefined && caps[f] !== null);
}

export function resultOf(backend: string, response: Inbound): Record<string, unknown> {
  const m = response.message;
  if ('error' in m) throw new UpstreamError(backend, 'unavailable', `initialize failed: ${m.error.message}`);
  if (!('result' in m)) throw new UpstreamError(backend, 'protocol', 'initialize got no result');
  return m.result;
}
