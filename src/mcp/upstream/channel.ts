/** What a channel tells its owner. */
export interface ChannelReceiver {
  message(raw: string): void;
  /** The channel is gone for good. */
  closed(reason: Error): void;
  /** The peer process died and a replacement is coming: requests in flight are lost. */
  lost?(reason: Error): void;
  /** A fresh peer process is running, not yet initialized. */
  restarted?(): void;
}

/**
 * A bidirectional pipe of raw JSON-RPC texts to one upstream process or connection:
 * the part that differs between stdio and the legacy HTTP+SSE transport.
 */
export interface MessageChannel {
  /** Resolves once the text is handed to the transport; rejects when the channel is down. */
  send(raw: string): Promise<void>;
  /** Sets the receiver; called once, before the first send. */
  attach(receiver: ChannelReceiver): void;
  close(): Promise<void>;
}
