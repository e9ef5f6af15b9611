import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';
import type { ChannelSession } from './channel-session.ts';
import type { Inbound, ReplyControl, ReplySink, UpstreamSession } from './types.ts';

let sharedIds = 0;
/** Server requests a view remembers relaying to its client, for the answer: past this the oldest is forgotten. */
const MAX_ASKED = 1024;

/**
 * One downstream session's view of an upstream process shared by all sessions. Request ids
 * are renumbered on the way in, because two clients may use the same id at the same moment,
 * and restored on the way out. Ending the view leaves the shared process running.
 */
export class SharedSessionView implements UpstreamSession {
  readonly backend: string;
  private readonly shared: ChannelSession;
  /** The client's id → the id used upstream, while the request is in flight (for cancellation). */
  private readonly inFlight = new Map<JsonRpcId, string>();
  /**
   * The process's requests (sampling, elicitation, roots) relayed to this view's client: only
   * those may it answer. Every client of the process sees the same small ids, and one that
   * guessed another's would otherwise answer in its place.
   */
  private readonly asked = new Set<JsonRpcId>();

  constructor(shared: ChannelSession) {
    this.shared = shared;
    this.backend = shared.backend;
  }

  /** What the process answered to the gateway's initialize. */
  get initializeResult(): Record<string, unknown> {
    return this.shared.initializeResult;
  }

  /** Whether it is a view of that process. */
  isOf(shared: ChannelSession): boolean {
    return this.shared === shared;
  }

  request(request: JsonRpcRequest, sink: ReplySink, signal?: AbortSignal): ReplyControl {
    const upstreamId = `shared-${++sharedIds}`;
    this.inFlight.set(request.id, upstreamId);
    const done = (): void => {
      if (this.inFlight.get(request.id) === upstreamId) this.inFlight.delete(request.id);
    };
    const control = this.shared.request(
      { ...request, id: upstreamId },
      {
        message: (inbound) => {
          const m = inbound.message;
          if ('method' in m) {
            this.remember(inbound);
            return sink.message(inbound);
          }
          if (m.id !== upstreamId) return sink.message(inbound);
          const restored = { ...m, id: request.id };
          sink.message({ message: restored, raw: JSON.stringify(restored) });
        },
        end() {
          done();
          sink.end();
        },
        fail(error) {
          done();
          sink.fail(error);
        },
      },
      signal,
    );
    return {
      stop() {
        done();
        control.stop();
      },
      pause: () => control.pause(),
      resume: () => control.resume(),
      abort: (reason) => control.abort(reason),
    };
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (!('method' in message) && (message.id === null || !this.asked.delete(message.id))) {
      throw new Error(`no request ${JSON.stringify(message.id)} of the shared process was relayed to this session`);
    }
    if ('method' in message && message.method === 'notifications/cancelled') {
      const upstreamId = this.inFlight.get(message.params?.requestId as JsonRpcId);
      if (upstreamId === undefined) return;
      return this.shared.send({ ...message, params: { ...message.params, requestId: upstreamId } });
    }
    return this.shared.send(message);
  }

  listen(sink: ReplySink, signal: AbortSignal): ReplyControl {
    return this.shared.listen(
      {
        message: (inbound) => {
          this.remember(inbound);
          sink.message(inbound);
        },
        end: () => sink.end(),
        fail: (error) => sink.fail(error),
      },
      signal,
    );
  }

  /** A request of the process, on its way to this view's client. */
  private remember(inbound: Inbound): void {
    const m = inbound.message;
    if (!('method' in m) || !('id' in m)) return;
    if (this.asked.size >= MAX_ASKED) this.asked.delete(this.asked.values().next().value!);
    this.asked.add(m.id);
  }

  async end(): Promise<void> {
    this.inFlight.clear();
    this.asked.clear();
  }
}
