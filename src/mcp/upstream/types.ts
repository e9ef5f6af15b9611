import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';

/** A message from an upstream, parsed once; `raw` is forwarded as is when nothing in it changes. */
export interface Inbound {
  readonly message: JsonRpcMessage;
  readonly raw: string;
}

/** One upstream MCP session, whatever carries it (streamable HTTP, legacy SSE, stdio). */
export interface UpstreamSession {
  readonly backend: string;
  /**
   * Sends a request; yields what the upstream relates to it (notifications, its own
   * requests), ending with the response. `headers`: extra HTTP headers for this request
   * only (those an external authorizer injects); transports without per-request headers ignore them.
   */
  request(request: JsonRpcRequest, signal?: AbortSignal, headers?: Record<string, string>): AsyncIterableIterator<Inbound>;
  /** Sends a notification, or a response to a request the upstream made. */
  send(message: JsonRpcNotification | JsonRpcResponse): Promise<void>;
  /** The upstream's own stream of unrelated messages (the GET stream); ends when the upstream closes it. */
  listen(signal: AbortSignal): AsyncIterableIterator<Inbound>;
  /** Ends the upstream session (DELETE, or the process is stopped). */
  end(): Promise<void>;
}

export type UpstreamFailure = 'unavailable' | 'expired' | 'timeout' | 'protocol';

/** Something went wrong talking to one upstream; always names the backend. */
export class UpstreamError extends Error {
  readonly backend: string;
  readonly kind: UpstreamFailure;

  constructor(backend: string, kind: UpstreamFailure, detail: string, options?: { cause?: unknown }) {
    super(`backend "${backend}" ${describe(kind)}: ${detail}`, options);
    this.name = 'UpstreamError';
    this.backend = backend;
    this.kind = kind;
  }
}

function describe(kind: UpstreamFailure): string {
  switch (kind) {
    case 'unavailable':
      return 'is unavailable';
    case 'expired':
      return 'ended the session';
    case 'timeout':
      return 'timed out';
    case 'protocol':
      return 'broke the protocol';
  }
}
