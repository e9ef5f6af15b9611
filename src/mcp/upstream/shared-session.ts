import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';
import type { ChannelSession } from './channel-session.ts';
import type { Inbound, UpstreamSession } from './types.ts';

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

  async *request(request: JsonRpcRequest, signal?: AbortSignal): AsyncIterableIterator<Inbound> {
    const upstreamId = `shared-${++sharedIds}`;
    this.inFlight.set(request.id, upstreamId);
    try {
      for await (const inbound of this.shared.request({ ...request, id: upstreamId }, signal)) {
        const m = inbound.message;
        if (!('method' in m) && m.id === upstreamId) {
          const restored = { ...m, id: request.id };
          yield { message: restored, raw: JSON.stringify(restored) };
        } else {
          yield inbound;
        }
      }
    } finally {
      this.inFlight.delete(request.id);
    }
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if ('method' in message && message.method === 'notifications/cancelled') {
      const upstreamId = this.inFlight.get(message.params?.requestId as JsonRpcId);
      if (upstreamId === undefined) return;
      return this.shared.send({ ...message, params: { ...message.params, requestId: upstreamId } });
    }
    return this.shared.send(message);
  }

  listen(signal: AbortSignal): AsyncIterableIterator<Inbound> {
    return this.shared.listen(signal);
  }

  async end(): Promise<void> {
    this.inFlight.clear();
  }
}
