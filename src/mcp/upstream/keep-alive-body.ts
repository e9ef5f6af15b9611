import type { Readable } from 'node:stream';

/** What may still follow a reply we stopped reading, before the connection is given up instead. */
const MAX_DISCARD_BYTES = 64 * 1024;

/**
 * The chunks of a response body, for a reader that may stop early (the response it waited
 * for arrived). Stopping does not destroy the body, which would cost the pooled keep-alive
 * connection: the rest is read and discarded, up to a bound, and then the connection
 * returns to the pool. An async iterator over the stream itself would destroy it.
 */
export async function* keepAliveChunks(body: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const onData = (chunk: Buffer): void => {
    queue.push(chunk);
    // Backpressure: the reader has not caught up; resume when it drains the queue.
    if (queue.length > 16) body.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (err: Error): void => {
    failure = err;
    notify();
  };
  body.on('data', onData);
  body.once('end', onEnd);
  body.once('error', onError);
  let finished = false;
  try {
    for (;;) {
      if (queue.length > 0) {
        const chunk = queue.shift()!;
        if (queue.length === 0 && body.isPaused()) body.resume();
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (ended) {
        finished = true;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('error', onError);
    if (!finished && !failure) discardRest(body);
  }
}

function discardRest(body: Readable): void {
  let discarded = 0;
  body.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DISCARD_BYTES) body.destroy();
  });
  body.on('error', () => {});
  body.resume();
}
