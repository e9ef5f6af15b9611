import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc/message.ts';

/** A message from an upstream, parsed once; `raw` is forwarded as is when nothing in it changes. */
export interface Inbound {
  readonly message: JsonRpcMessage;
  readonly raw: string;
}

/**
 * Where the messages of an upstream reply go, in order, as they are decoded: straight from
 * the transport's callbacks, with no queue, iterator or promise between the socket and the
 * consumer. After end() or fail() nothing more is delivered. A sink must not throw.
 */
export interface ReplySink {
  message(inbound: Inbound): void;
  /** The reply is over. */
  end(): void;
  /** The reply failed; the messages delivered before it stand. */
  fail(error: Error): void;
}

/** The consumer's hold on a reply being delivered to its sink. */
export interface ReplyControl {
  /** Nothing more is wanted: what still arrives is dropped (and the exchange wound down). */
  stop(): void;
  /** Holds delivery for a consumer that fell behind, where the transport can (HTTP); resume() lets it go on. */
  pause(): void;
  resume(): void;
  /**
   * The consumer gave up (its client cancelled the request): the exchange ends now, however
   * far it got, and the sink hears fail() unless it stopped listening already (a stdio
   * server's stream, which only ends when its consumer leaves, hears end()).
   */
  abort(reason: Error): void;
}

/** One upstream MCP session, whatever carries it (streamable HTTP, legacy SSE, stdio). */
export interface UpstreamSession {
  readonly backend: string;
  /**
   * Sends a request; delivers to `sink` what the upstream relates to it (notifications, its
   * own requests), ending with the response. `headers`: extra HTTP headers for this request
   * only (those an external authorizer injects); transports without per-request headers ignore them.
   */
  request(request: JsonRpcRequest, sink: ReplySink, signal?: AbortSignal, headers?: Record<string, string>): ReplyControl;
  /** Sends a notification, or a response to a request the upstream made. */
  send(message: JsonRpcNotification | JsonRpcResponse): Promise<void>;
  /** The upstream's own stream of unrelated messages (the GET stream); ends when the upstream closes it or the signal aborts. */
  listen(sink: ReplySink, signal: AbortSignal): ReplyControl;
  /** Ends the upstream session (DELETE, or the process is stopped). */
  end(): Promise<void>;
}

/** `unsupported`: the upstream does not offer what was asked (a server stream, refused with 405). */
export type UpstreamFailure = 'unavailable' | 'expired' | 'timeout' | 'protocol' | 'unsupported';

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
    case 'unsupported':
      return 'does not offer it';
  }
}
