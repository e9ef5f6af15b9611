import type { Caller } from '../security/caller.ts';
import type { AuthzRequest } from '../security/authz/request.ts';
import type { Logger } from '../telemetry/logger.ts';
import { upstreamHeaders } from './upstream-credentials.ts';
import type { SessionStore } from '../state/session-store.ts';
import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import type { RouteRuntime } from './route-runtime.ts';
import type { SessionState, UpstreamSessionRef } from './session-token.ts';
import type { ClientInit, UpstreamConnector } from './upstream/connector.ts';
import type { BackendIR } from '../ir/types.ts';
import { andThen, type MaybePromise } from '../util/maybe-promise.ts';
import type { JsonRpcRequest } from '../jsonrpc/message.ts';
import { isSafeToRetry } from './recovery.ts';
import { RecoverableReply } from './upstream/replies.ts';
import { UpstreamError, type ReplyControl, type ReplySink, type UpstreamSession } from './upstream/types.ts';

export type AuthzTarget = NonNullable<AuthzRequest['mcp']['target']>;

/**
 * One request's view of its downstream session: the route snapshot it started with, the
 * opened token, and the upstream sessions it touches (resumed at most once per request).
 */
export class SessionContext {
  readonly route: RouteRuntime;
  readonly state: SessionState;
  readonly caller: Caller;
  readonly logger: Logger;
  private readonly connector: UpstreamConnector;
  private readonly store: SessionStore;
  private overrides: Record<string, UpstreamSessionRef> | undefined;
  private readonly resumed = new Map<string, MaybePromise<UpstreamSession>>();
  private readonly ttlMs: number;
  /** A stateless request's context: its upstream sessions are opened for it and ended after it. */
  readonly ephemeral: boolean;

  constructor(
    route: RouteRuntime,
    state: SessionState,
    caller: Caller,
    overrides: Record<string, UpstreamSessionRef> | undefined,
    connector: UpstreamConnector,
    store: SessionStore,
    ttlMs: number,
    logger: Logger,
    ephemeral = false,
  ) {
    this.ephemeral = ephemeral;
    this.route = route;
    this.state = state;
    this.caller = caller;
    this.overrides = overrides;
    this.connector = connector;
    this.store = store;
    this.ttlMs = ttlMs;
    this.logger = logger;
  }

  get sid(): string {
    return this.state.sid;
  }

  /** The facts an authorization decision reads, for a message of this session. */
  authzRequest(method: string, backend?: string, target?: AuthzTarget, args?: unknown): AuthzRequest {
    return {
      identity: this.caller.identity,
      http: this.caller.http,
      mcp: { method, sessionId: this.sid, ...(backend !== undefined ? { backend } : {}), ...(target ? { target } : {}), ...(args !== undefined ? { arguments: args } : {}) },
    };
  }

  /**
   * The facts of a forwarded message, when the route's authorizer decides on them or its
   * audit log records the call: the same object serves both, so a call's records share
   * what they say about it.
   */
  forwardFacts(method: string, backend: string, target: AuthzTarget | undefined, args: unknown): AuthzRequest | undefined {
    const authorizer = this.route.authorizer;
    return authorizer.active || authorizer.auditing ? this.authzRequest(method, backend, target, args) : undefined;
  }

  /** Throws the client's JSON-RPC error when the message is not allowed; resolves to headers an external authorizer adds. */
  authorize(method: string, backend?: string, target?: AuthzTarget, args?: unknown): MaybePromise<Record<string, string> | undefined> {
    // Most routes have no policy: no request object, no promise.
    if (!this.route.authorizer.active) return undefined;
    return this.route.authorizer.check(this.authzRequest(method, backend, target, args));
  }

  ref(backend: string): UpstreamSessionRef | undefined {
    return this.overrides?.[backend] ?? this.state.upstreams[backend];
  }

  /** Backends of the route that declared the feature (all of them when the session never reached one). */
  backendsWith(feature: string): string[] {
    const out: string[] = [];
    for (const name of this.route.backendNames) {
      const ref = this.ref(name);
      if (!ref || ref.features.includes(feature)) out.push(name);
    }
    return out;
  }

  upstream(backend: string): MaybePromise<UpstreamSession> {
    let session = this.resumed.get(backend);
    if (!session) {
      session = this.resolve(backend);
      this.resumed.set(backend, session);
    }
    return session;
  }

  /**
   * The backend's upstream session looked up again, for a long-lived stream whose session
   * expired: the one a request opened in its place meanwhile (on any replica) is in the store.
   * Undefined once the downstream session ended.
   */
  async refresh(backend: string): Promise<UpstreamSession | undefined> {
    const stored = await this.store.lookup(this.sid);
    if (stored?.ended) return undefined;
    const ref = stored?.upstreams?.[backend];
    if (ref) this.overrides = { ...this.overrides, [backend]: ref };
    this.resumed.delete(backend);
    return this.upstream(backend);
  }

  /** Every upstream session this downstream session has (for an ephemeral one: that it opened), for ending them all. */
  async allUpstreams(): Promise<UpstreamSession[]> {
    const names = this.ephemeral ? [...this.resumed.keys()] : [...this.route.backendNames].filter((b) => this.ref(b));
    const settled = await Promise.allSettled(names.map((b) => this.upstream(b)));
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  /**
   * Sends a request to a backend on this session. When the upstream says the session it
   * issued is gone (404/400, a process that was replaced), a new upstream session is opened
   * and remembered; the request is sent again only if that is safe, and otherwise fails
   * with an error saying so: never a success for work that was not done.
   */
  exchange(backend: string, request: JsonRpcRequest, sink: ReplySink, signal?: AbortSignal, headers?: Record<string, string>): ReplyControl {
    // Whether it waited for its upstream session or for a new one, a request the client cancelled meanwhile is not sent.
    const send = (session: UpstreamSession): ReplyControl => reply.unlessAborted(reply, () => session.request(request, reply, signal, headers));
    const reply: RecoverableReply = new RecoverableReply(sink, (err) => this.recover(backend, request, err, signal).then(send));
    return reply.open(() => andThen(this.upstream(backend), send));
  }

  /** The new upstream session a request is sent again on, when its own expired and repeating it is safe. */
  private async recover(backend: string, request: JsonRpcRequest, err: unknown, signal?: AbortSignal): Promise<UpstreamSession> {
    if (!(err instanceof UpstreamError) || err.kind !== 'expired') throw err;
    const fresh = await this.reopen(backend);
    if (!(await isSafeToRetry(request, fresh, signal))) {
      throw new JsonRpcError(
        ErrorCode.UpstreamUnavailable,
        `backend "${backend}" ended its session (upstream session expired); ${request.method} was not retried because repeating it may not be safe. A new upstream session is open: retry if that is what you want`,
        { backend, reason: 'upstream_session_expired' },
      );
    }
    this.logger.info({ backend, session: this.sid, method: request.method }, 'upstream session expired; retried on a new one');
    return fresh;
  }

  /** Opens a new upstream session in place of one that expired, for this and later requests. */
  private async reopen(backend: string): Promise<UpstreamSession> {
    const ir = this.route.backends.get(backend)!;
    const opened = await this.connector.open(ir, this.sid, { protocolVersion: this.state.protocolVersion, ...this.state.client }, upstreamHeaders(ir, this.caller.identity));
    await this.store.setUpstream(this.sid, backend, opened.ref, this.ttlMs);
    this.resumed.set(backend, Promise.resolve(opened.session));
    return opened.session;
  }

  private resolve(backend: string): MaybePromise<UpstreamSession> {
    const ir = this.route.backends.get(backend);
    if (!ir) return Promise.reject(new JsonRpcError(ErrorCode.InvalidParams, `backend "${backend}" is not part of this route`));
    const client = { protocolVersion: this.state.protocolVersion, ...this.state.client };
    const ref = this.ref(backend);
    const headers = upstreamHeaders(ir, this.caller.identity);
    return ref ? this.connector.resume(ir, this.sid, ref, client, headers) : this.openLate(ir, client, headers);
  }

  /** The backend was unreachable when the session began (or was added by a reload): its session is opened now. */
  private async openLate(ir: BackendIR, client: ClientInit, headers: Record<string, string> | undefined): Promise<UpstreamSession> {
    const backend = ir.name;
    const opened = await this.connector.open(ir, this.sid, client, headers);
    if (this.ephemeral) return opened.session;
    await this.store.setUpstream(this.sid, backend, opened.ref, this.ttlMs);
    this.logger.info({ backend, session: this.sid }, 'opened a late upstream session');
    return opened.session;
  }
}
