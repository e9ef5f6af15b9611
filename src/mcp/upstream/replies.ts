import type { MaybePromise } from '../../util/maybe-promise.ts';

/**
 * The messages of an upstream reply as the request's handler reads them. Every forwarded
 * request walks through these, so they are plain objects with a next() rather than async
 * generators: a generator per layer costs its own object, queue and promises at every step.
 */

export const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };
/** The answer of a reply with nothing more to read: one settled promise for all of them, not one per call. */
export const ENDED: Promise<IteratorReturnResult<undefined>> = Promise.resolve(DONE);

/** Stops reading a reply, without waiting and without a failure to report. */
export function closeQuietly(messages: AsyncIterator<unknown>): void {
  const closed = messages.return?.();
  // Most replies are over by then and answer with ENDED, which cannot fail: no handler, no promise made for it.
  if (closed && closed !== ENDED) closed.catch(() => {});
}

/**
 * A reply opened on the first next(), that may be replaced once, before any message of it
 * was read, when reading it fails: `recover` decides (it rethrows what it cannot recover
 * from) and opens the new one. Once a message was read, next() goes straight through.
 */
export class RecoverableReply<T> implements AsyncIterableIterator<T> {
  private readonly open: () => MaybePromise<AsyncIterator<T>>;
  private readonly recover: (err: unknown) => Promise<AsyncIterator<T>>;
  private current: AsyncIterator<T> | undefined;
  private answered = false;
  private recovered = false;

  constructor(open: () => MaybePromise<AsyncIterator<T>>, recover: (err: unknown) => Promise<AsyncIterator<T>>) {
    this.open = open;
    this.recover = recover;
  }

  next(): Promise<IteratorResult<T>> {
    return this.answered ? this.current!.next() : this.first();
  }

  private async first(): Promise<IteratorResult<T>> {
    try {
      if (!this.current) {
        const opening = this.open();
        this.current = opening instanceof Promise ? await opening : opening;
      }
      const step = await this.current.next();
      this.answered = true;
      return step;
    } catch (err) {
      if (this.recovered) throw err;
      this.recovered = true;
      this.current = await this.recover(err);
      return this.first();
    }
  }

  return(): Promise<IteratorResult<T>> {
    return this.current?.return ? this.current.return() : ENDED;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
