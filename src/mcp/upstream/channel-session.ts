import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';
import { parseMessage } from '../../jsonrpc/parse.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { MessageChannel } from './channel.ts';
import { LateControl, SETTLED } from './replies.ts';
import { responseTo } from './responses.ts';
import { UpstreamError, type Inbound, type ReplyControl, type ReplySink, type UpstreamSession } from './types.ts';

/**
 * An upstream session over a message channel, where replies come back on one shared
 * stream: responses are matched to requests by id, progress by token, and everything
 * else goes to the listening stream (or, if none, to the newest open request, so that a
 * server asking for sampling in the middle of a tool call still reaches the client).
 */
export class ChannelSession implements UpstreamSession {
  readonly backend: string;
  private readonly channel: MessageChannel;
  readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly pending = new Map<JsonRpcId, ChannelExchange>();
  /** Sinks of the session's server stream, each with what lets go of its signal. */
  private readonly listeners = new Map<ReplySink, () => void>();
  private closedReason: UpstreamError | undefined;
  /** Replayed when the channel's process restarts, so the new process serves this session. */
  private initializeRequest: JsonRpcRequest | undefined;
  /** What the upstream answered to initialize. */
  initializeResult: Record<string, unknown> = {};
  /** While a restarted process is being initialized, requests wait for it. */
  private restarting: Promise<void> | undefined;

  constructor(backend: string, channel: MessageChannel, timeoutMs: number, logger: Logger) {
    this.backend = backend;
    this.channel = channel;
    this.timeoutMs = timeoutMs;
    this.logger = logger;
    channel.attach({
      message: (raw) => this.receive(raw),
      closed: (reason) => this.closed(reason),
      lost: (reason) => this.failPending(`process exited: ${reason.message}`),
      restarted: () => this.restarted(),
    });
  }

  /** Runs the initialize handshake and remembers it for restarts; returns the initialize result. */
  async initialize(request: JsonRpcRequest): Promise<Record<string, unknown>> {
    this.initializeRequest = request;
    this.initializeResult = await this.handshake(request);
    return this.initializeResult;
  }

  private async handshake(request: JsonRpcRequest): Promise<Record<string, unknown>> {
    const m = (await responseTo(this.backend, request, (sink) => this.exchange(request, sink))).message;
    if ('error' in m) throw new UpstreamError(this.backend, 'unavailable', `initialize failed: ${m.error.message}`);
    await this.channel.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    return (m as { result: Record<string, unknown> }).result;
  }

  private restarted(): void {
    const request = this.initializeRequest;
    if (!request) return;
    const restarting: Promise<void> = this.handshake(request).then(
      () => this.logger.info({ backend: this.backend }, 'upstream process restarted and re-initialized'),
      (err: Error) => this.closed(err),
    );
    this.restarting = restarting;
    void restarting.then(() => {
      if (this.restarting === restarting) this.restarting = undefined;
    });
  }

  get alive(): boolean {
    return this.closedReason === undefined;
  }

  request(request: JsonRpcRequest, sink: ReplySink, signal?: AbortSignal): ReplyControl {
    if (!this.restarting) return this.exchange(request, sink, signal);
    const late = new LateControl();
    void this.restarting.then(() => late.attach(late.unlessAborted(sink, () => this.exchange(request, sink, signal))));
    return late;
  }

  private exchange(request: JsonRpcRequest, sink: ReplySink, signal?: AbortSignal): ReplyControl {
    if (this.closedReason) {
      sink.fail(this.closedReason);
      return SETTLED;
    }
    if (this.pending.has(request.id)) {
      sink.fail(new UpstreamError(this.backend, 'protocol', `request id ${JSON.stringify(request.id)} is already in flight`));
      return SETTLED;
    }
    // The caller's signal aborted while the request waited (for a restart, a recovery): it is never sent.
    if (signal?.aborted) {
      sink.fail(new UpstreamError(this.backend, 'unavailable', 'request aborted'));
      return SETTLED;
    }
    const exchange = new ChannelExchange(this, request, sink, signal);
    this.pending.set(request.id, exchange);
    this.channel.send(JSON.stringify(request)).catch((err: Error) => {
      this.settle(request.id)?.fail(new UpstreamError(this.backend, 'unavailable', err.message, { cause: err }));
    });
    return exchange;
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (this.closedReason) throw this.closedReason;
    await this.channel.send(JSON.stringify(message));
  }

  listen(sink: ReplySink, signal: AbortSignal): ReplyControl {
    if (this.closedReason) {
      sink.fail(this.closedReason);
      return SETTLED;
    }
    if (signal.aborted) {
      sink.end();
      return SETTLED;
    }
    const end = (): void => {
      if (this.release(sink)) sink.end();
    };
    const stop = (): void => {
      this.release(sink);
    };
    signal.addEventListener('abort', end, { once: true });
    this.listeners.set(sink, () => signal.removeEventListener('abort', end));
    return { stop, pause() {}, resume() {}, abort: end };
  }

  /** A client listens on the session's server stream: the session is in use, however long since its last request. */
  get listening(): boolean {
    return this.listeners.size > 0;
  }

  /** Forgets a listening sink and its hold on its signal; false when it was gone already. */
  private release(sink: ReplySink): boolean {
    const letGo = this.listeners.get(sink);
    if (!letGo) return false;
    this.listeners.delete(sink);
    letGo();
    return true;
  }

  async end(): Promise<void> {
    this.closed(new Error('session ended'));
    await this.channel.close();
  }

  /** The exchange of this id, no longer pending: it is being settled. */
  settle(id: JsonRpcId): ChannelExchange | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  private receive(raw: string): void {
    let inbound: Inbound;
    try {
      inbound = { message: parseMessage(raw), raw };
    } catch (err) {
      this.logger.warn({ backend: this.backend, err: (err as Error).message }, 'dropped an invalid message from upstream');
      return;
    }
    const m = inbound.message;
    if (!('method' in m)) {
      const p = m.id === null ? undefined : this.settle(m.id);
      if (!p) {
        this.logger.debug({ backend: this.backend, id: m.id }, 'response to no pending request');
        return;
      }
      p.respond(inbound);
      return;
    }
    const token = m.method === 'notifications/progress' ? m.params?.progressToken : undefined;
    if (token !== undefined) {
      for (const p of this.pending.values()) {
        if (p.progressToken === token) {
          p.relate(inbound);
          return;
        }
      }
    }
    if (this.listeners.size > 0) {
      // A notification concerns every listener; a request must be answered exactly once.
      if ('id' in m) this.listeners.keys().next().value!.message(inbound);
      else for (const l of this.listeners.keys()) l.message(inbound);
      return;
    }
    const newest = [...this.pending.values()].at(-1);
    if (newest) newest.relate(inbound);
    else this.logger.debug({ backend: this.backend, method: m.method }, 'no stream open for an upstream message');
  }

  private failPending(why: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.fail(new UpstreamError(this.backend, 'unavailable', why));
  }

  private closed(reason: Error): void {
    if (this.closedReason) return;
    this.closedReason = new UpstreamError(this.backend, 'expired', reason.message);
    this.failPending(`connection lost: ${reason.message}`);
    for (const sink of [...this.listeners.keys()]) if (this.release(sink)) sink.end();
  }
}

/**
 * One request in flight on a channel, until its response, a failure, the timeout or the
 * consumer's stop. A channel cannot hold one exchange's messages back, so pause() does
 * nothing: the consumer bounds its own backlog.
 */
class ChannelExchange implements ReplyControl {
  readonly progressToken: unknown;
  private readonly session: ChannelSession;
  private readonly id: JsonRpcId;
  private readonly sink: ReplySink;
  private readonly timer: NodeJS.Timeout;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: (() => void) | undefined;
  private over = false;

  constructor(session: ChannelSession, request: JsonRpcRequest, sink: ReplySink, signal: AbortSignal | undefined) {
    this.session = session;
    this.id = request.id;
    this.sink = sink;
    this.progressToken = (request.params?._meta as Record<string, unknown> | undefined)?.progressToken;
    this.timer = setTimeout(() => this.cancel('timeout', new UpstreamError(session.backend, 'timeout', `no response within ${session.timeoutMs} ms`)), session.timeoutMs);
    this.signal = signal;
    if (signal) {
      this.onAbort = () => this.cancel('client disconnected', new UpstreamError(session.backend, 'unavailable', 'request aborted'));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** A message the upstream related to this request. */
  relate(inbound: Inbound): void {
    if (!this.over) this.sink.message(inbound);
  }

  respond(inbound: Inbound): void {
    if (this.release()) return;
    this.sink.message(inbound);
    this.sink.end();
  }

  fail(error: Error): void {
    if (!this.release()) this.sink.fail(error);
  }

  stop(): void {
    if (!this.release()) this.session.settle(this.id);
  }

  pause(): void {}

  resume(): void {}

  /**
   * The client cancelled. The upstream is told under the id it knows the request by: the
   * client's own notification, which the dispatcher forwards too, names another id when the
   * process is shared, and a second one for the same id is ignored.
   */
  abort(reason: Error): void {
    this.cancel(reason.message, reason);
  }

  /** The timeout struck or the caller gave up: the consumer learns it, and the upstream is told to stop. */
  private cancel(why: string, failure: Error): void {
    if (this.over) return;
    this.session.settle(this.id);
    this.fail(failure);
    this.session.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: this.id, reason: why } }).catch(() => {});
  }

  /** Ends the exchange's timer and its listener; true when it had ended already. */
  private release(): boolean {
    if (this.over) return true;
    this.over = true;
    clearTimeout(this.timer);
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
    return false;
  }
}
