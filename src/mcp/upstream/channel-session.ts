import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';
import { parseMessage } from '../../jsonrpc/parse.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { AsyncQueue } from '../../util/async-queue.ts';
import type { MessageChannel } from './channel.ts';
import { UpstreamError, type Inbound, type UpstreamSession } from './types.ts';

/** Messages one exchange may hold for a reader that has not caught up yet. */
const QUEUE_CAPACITY = 1024;

interface Pending {
  readonly queue: AsyncQueue<Inbound>;
  readonly progressToken: unknown;
}

/**
 * An upstream session over a message channel, where replies come back on one shared
 * stream: responses are matched to requests by id, progress by token, and everything
 * else goes to the listening stream (or, if none, to the newest open request, so that a
 * server asking for sampling in the middle of a tool call still reaches the client).
 */
export class ChannelSession implements UpstreamSession {
  readonly backend: string;
  private readonly channel: MessageChannel;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly pending = new Map<JsonRpcId, Pending>();
  private readonly listeners = new Set<AsyncQueue<Inbound>>();
  private closedReason: UpstreamError | undefined;
  /** Replayed when the channel's process restarts, so the new process serves this session. */
  private initializeRequest: JsonRpcRequest | undefined;
  /** What the upstream answered to initialize. */
  initializeResult: Record<string, unknown> = {};
  /** Requests wait here while a restarted process is being initialized. */
  private ready: Promise<void> = Promise.resolve();

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
    for await (const inbound of this.exchange(request)) {
      const m = inbound.message;
      if ('error' in m) throw new UpstreamError(this.backend, 'unavailable', `initialize failed: ${m.error.message}`);
      if ('result' in m) {
        await this.channel.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
        return m.result;
      }
    }
    throw new UpstreamError(this.backend, 'protocol', 'no response to initialize');
  }

  private restarted(): void {
    const request = this.initializeRequest;
    if (!request) return;
    this.ready = this.handshake(request).then(
      () => this.logger.info({ backend: this.backend }, 'upstream process restarted and re-initialized'),
      (err: Error) => this.closed(err),
    );
  }

  get alive(): boolean {
    return this.closedReason === undefined;
  }

  async *request(request: JsonRpcRequest, signal?: AbortSignal): AsyncIterableIterator<Inbound> {
    await this.ready;
    yield* this.exchange(request, signal);
  }

  private exchange(request: JsonRpcRequest, signal?: AbortSignal): AsyncIterableIterator<Inbound> {
    if (this.closedReason) throw this.closedReason;
    if (this.pending.has(request.id)) {
      throw new UpstreamError(this.backend, 'protocol', `request id ${JSON.stringify(request.id)} is already in flight`);
    }
    const cancel = (why: string): void => {
      if (!this.pending.has(request.id)) return;
      this.settle(request.id)?.queue.fail(new UpstreamError(this.backend, why === 'timeout' ? 'timeout' : 'unavailable', why === 'timeout' ? `no response within ${this.timeoutMs} ms` : 'request aborted'));
      this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: request.id, reason: why } }).catch(() => {});
    };
    const timer = setTimeout(() => cancel('timeout'), this.timeoutMs);
    const onAbort = (): void => cancel('client disconnected');
    signal?.addEventListener('abort', onAbort, { once: true });
    const queue = new AsyncQueue<Inbound>(QUEUE_CAPACITY);
    const meta = request.params?._meta as Record<string, unknown> | undefined;
    this.pending.set(request.id, { queue, progressToken: meta?.progressToken });
    this.channel.send(JSON.stringify(request)).catch((err: Error) => {
      this.settle(request.id)?.queue.fail(new UpstreamError(this.backend, 'unavailable', err.message, { cause: err }));
    });
    return withCleanup(queue, () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.pending.delete(request.id);
    });
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (this.closedReason) throw this.closedReason;
    await this.channel.send(JSON.stringify(message));
  }

  listen(signal: AbortSignal): AsyncIterableIterator<Inbound> {
    if (this.closedReason) throw this.closedReason;
    const queue: AsyncQueue<Inbound> = new AsyncQueue<Inbound>(QUEUE_CAPACITY, () => this.listeners.delete(queue));
    this.listeners.add(queue);
    signal.addEventListener('abort', () => void queue.return(), { once: true });
    return queue;
  }

  async end(): Promise<void> {
    this.closed(new Error('session ended'));
    await this.channel.close();
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
      p.queue.push(inbound);
      p.queue.end();
      return;
    }
    const token = m.method === 'notifications/progress' ? m.params?.progressToken : undefined;
    if (token !== undefined) {
      for (const p of this.pending.values()) {
        if (p.progressToken === token) {
          p.queue.push(inbound);
          return;
        }
      }
    }
    if (this.listeners.size > 0) {
      // A notification concerns every listener; a request must be answered exactly once.
      if ('id' in m) this.listeners.values().next().value!.push(inbound);
      else for (const l of this.listeners) l.push(inbound);
      return;
    }
    const newest = [...this.pending.values()].at(-1);
    if (newest) newest.queue.push(inbound);
    else this.logger.debug({ backend: this.backend, method: m.method }, 'no stream open for an upstream message');
  }

  private failPending(why: string): void {
    for (const p of this.pending.values()) p.queue.fail(new UpstreamError(this.backend, 'unavailable', why));
    this.pending.clear();
  }

  private settle(id: JsonRpcId): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  private closed(reason: Error): void {
    if (this.closedReason) return;
    this.closedReason = new UpstreamError(this.backend, 'expired', reason.message);
    this.failPending(`connection lost: ${reason.message}`);
    for (const l of this.listeners) l.end();
    this.listeners.clear();
  }
}

/** Runs `cleanup` once the consumer is done with the queue, however it ends. */
async function* withCleanup(queue: AsyncQueue<Inbound>, cleanup: () => void): AsyncGenerator<Inbound> {
  try {
    yield* queue;
  } finally {
    cleanup();
    await queue.return();
  }
}
