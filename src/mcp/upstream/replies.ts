/**
 * Iterator objects for the messages of an upstream reply. Every forwarded request walks
 * through these, so they are plain objects with a next() rather than async generators:
 * a generator per layer costs its own object, queue and promises at every step.
 */

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** Stops reading a reply, without waiting and without a failure to report. */
export function closeQuietly(messages: AsyncIterator<unknown>): void {
  messages.return?.().catch(() => {});
}

/**
 * A reply opened on the first next(), as a generator would be; errors on any step pass
 * through `mapError` once (which may also act on them, e.g. cancel upstream work).
 */
export class LazyReply<T> implements AsyncIterableIterator<T> {
  private readonly open: () => Promise<AsyncIterator<T>>;
  private readonly mapError: (err: unknown) => unknown;
  private opening: Promise<AsyncIterator<T>> | undefined;
  private source: AsyncIterator<T> | undefined;
  private failure: unknown;
  private failed = false;

  constructor(open: () => Promise<AsyncIterator<T>>, mapError: (err: unknown) => unknown = (err) => err) {
    this.open = open;
    this.mapError = mapError;
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.failed) throw this.failure;
    try {
      if (!this.source) this.source = await (this.opening ??= this.open());
      return await this.source.next();
    } catch (err) {
      this.failed = true;
      this.failure = this.mapError(err);
      throw this.failure;
    }
  }

  return(): Promise<IteratorResult<T>> {
    if (this.failed || !this.source?.return) return Promise.resolve(DONE);
    // Whatever fails while closing was reported to the reader already, or concerns nobody.
    return this.source.return().then(
      () => DONE,
      () => DONE,
    );
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/**
 * A reply opened on the first next(), that may be replaced once, before any message of it
 * was read, when reading it fails: `recover` decides (it rethrows what it cannot recover
 * from) and opens the new one.
 */
export class RecoverableReply<T> implements AsyncIterableIterator<T> {
  private readonly open: () => Promise<AsyncIterator<T>>;
  private readonly recover: (err: unknown) => Promise<AsyncIterator<T>>;
  private current: AsyncIterator<T> | undefined;
  private answered = false;
  private recovered = false;

  constructor(open: () => Promise<AsyncIterator<T>>, recover: (err: unknown) => Promise<AsyncIterator<T>>) {
    this.open = open;
    this.recover = recover;
  }

  async next(): Promise<IteratorResult<T>> {
    try {
      this.current ??= await this.open();
      const step = await this.current.next();
      this.answered = true;
      return step;
    } catch (err) {
      if (this.answered || this.recovered) throw err;
      this.recovered = true;
      this.current = await this.recover(err);
      return this.next();
    }
  }

  return(): Promise<IteratorResult<T>> {
    return this.current?.return ? this.current.return().then(() => DONE) : Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/** A reply of messages already at hand (a JSON body, or none for a 202). */
export class ReadyReply<T> implements AsyncIterableIterator<T> {
  private readonly items: readonly T[];
  private index = 0;

  constructor(items: readonly T[]) {
    this.items = items;
  }

  async next(): Promise<IteratorResult<T>> {
    return this.index < this.items.length ? { value: this.items[this.index++]!, done: false } : DONE;
  }

  return(): Promise<IteratorResult<T>> {
    this.index = this.items.length;
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
