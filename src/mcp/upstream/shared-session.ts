import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';
import type { ChannelSession } from './channel-session.ts';
import type { ReplyControl, ReplySink, UpstreamSession } from './types.ts';

let sharedIds = 0;

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

  constructor(shared: ChannelSession) {
    this.shared = shared;
    this.backend = shared.backend;
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
        message(inbound) {
          const m = inbound.message;
          if ('method' in m || m.id !== upstreamId) return sink.message(inbound);
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
    if ('method' in message && message.method === 'notifications/cancelled') {
      const upstreamId = this.inFlight.get(message.params?.requestId as JsonRpcId);
      if (upstreamId === undefined) return;
      return this.shared.send({ ...message, params: { ...message.params, requestId: upstreamId } });
    }
    return this.shared.send(message);
  }

  listen(sink: ReplySink, signal: AbortSignal): ReplyControl {
    return this.shared.listen(sink, signal);
  }

  async end(): Promise<void> {
    this.inFlight.clear();
  }
}
