import type { MaybePromise } from '../../util/maybe-promise.ts';
import type { Inbound, ReplyControl, ReplySink } from './types.ts';

/**
 * The control of a reply that is not open yet (it waits for its upstream session, or for a
 * replacement): what the consumer asks of it meanwhile is applied when it opens.
 */
export class LateControl implements ReplyControl {
  private current: ReplyControl | undefined;
  protected stopped = false;
  private paused = false;
  protected aborted: Error | undefined;

  attach(control: ReplyControl): void {
    this.current = control;
    if (this.aborted) control.abort(this.aborted);
    else if (this.stopped) control.stop();
    else if (this.paused) control.pause();
  }

  protected detach(): void {
    this.current = undefined;
  }

  stop(): void {
    this.stopped = true;
    this.current?.stop();
  }

  pause(): void {
    this.paused = true;
    this.current?.pause();
  }

  resume(): void {
    this.paused = false;
    this.current?.resume();
  }

  abort(reason: Error): void {
    this.aborted ??= reason;
    this.current?.abort(reason);
  }

  /**
   * Starts the exchange with `send`, unless the consumer aborted the reply while it waited to
   * open: then `sink` fails with the reason, and the request never leaves.
   */
  unlessAborted(sink: ReplySink, send: () => ReplyControl): ReplyControl {
    if (!this.aborted) return send();
    sink.fail(this.aborted);
    return SETTLED;
  }
}

/**
 * A reply that may be replaced once, before any message of it was delivered, when it fails
 * (opening it included): `recover` decides (it throws what it cannot recover from) and
 * opens the new one onto this same object. Once a message was delivered, failures go
 * straight to the sink.
 */
export class RecoverableReply extends LateControl implements ReplySink {
  private readonly sink: ReplySink;
  private readonly recover: (err: unknown, sink: ReplySink) => Promise<ReplyControl>;
  private delivered = false;
  private recovered = false;

  constructor(sink: ReplySink, recover: (err: unknown, sink: ReplySink) => Promise<ReplyControl>) {
    super();
    this.sink = sink;
    this.recover = recover;
  }

  /** Opens the first reply, delivering to this object. */
  open(opening: (sink: ReplySink) => MaybePromise<ReplyControl>): this {
    let control: MaybePromise<ReplyControl>;
    try {
      control = opening(this);
    } catch (err) {
      this.fail(err as Error);
      return this;
    }
    if (control instanceof Promise) control.then((c) => this.attach(c), (err: Error) => this.fail(err));
    else this.attach(control);
    return this;
  }

  message(inbound: Inbound): void {
    if (this.stopped) return;
    this.delivered = true;
    this.sink.message(inbound);
  }

  end(): void {
    if (!this.stopped) this.sink.end();
  }

  fail(error: Error): void {
    if (this.stopped) return;
    // A reply its consumer gave up on is not worth a new session.
    if (this.delivered || this.recovered || this.aborted) return this.sink.fail(error);
    this.recovered = true;
    this.detach();
    this.recover(error, this).then(
      (c) => this.attach(c),
      (err: Error) => {
        if (!this.stopped) this.sink.fail(err);
      },
    );
  }
}

/** The control of a reply that is over before it began (it failed at once): nothing to stop. */
export const SETTLED: ReplyControl = { stop() {}, pause() {}, resume() {}, abort() {} };

/** A consumer's backlog, in writes, at which the reply it reads is paused. */
const HIGH_WATER = 16;
/** Past this the consumer gives up: a transport that cannot pause (stdio) must not grow memory without bound. */
export const MAX_BACKLOG = 1024;

/**
 * A consumer's writes, run in order, each once the one before has settled: at once while
 * nothing waits (a reply that is its response alone never waits), chained when a write
 * waits (an event kept in Redis before it is sent). A growing backlog pauses the reply
 * being read; a backlog past MAX_BACKLOG, or a write that fails, stops the writes and is
 * reported to `onError` once.
 */
export class OrderedWrites {
  /** The reply whose messages are written, paused while the backlog is high. */
  control: ReplyControl | undefined;
  private readonly onError: (err: unknown) => void;
  private tail: Promise<void> | undefined;
  private backlog = 0;
  private paused = false;
  private failed = false;

  constructor(onError: (err: unknown) => void) {
    this.onError = onError;
  }

  run(write: () => MaybePromise<void>): void {
    if (this.failed) return;
    if (this.tail === undefined) {
      let result: MaybePromise<void>;
      try {
        result = write();
      } catch (err) {
        return this.failWith(err);
      }
      if (result instanceof Promise) this.track(result);
      return;
    }
    if (++this.backlog > MAX_BACKLOG) return this.failWith(new Error(`more than ${MAX_BACKLOG} messages waiting for a slow client`));
    if (this.backlog === HIGH_WATER && !this.paused) {
      this.paused = true;
      this.control?.pause();
    }
    this.track(
      this.tail.then(() => {
        if (this.failed) return;
        if (--this.backlog === 0 && this.paused) {
          this.paused = false;
          this.control?.resume();
        }
        return write();
      }),
    );
  }

  private track(pending: Promise<void>): void {
    const tail: Promise<void> = pending.then(
      () => {
        if (this.tail === tail) this.tail = undefined;
      },
      (err: unknown) => {
        if (this.tail === tail) this.tail = undefined;
        this.failWith(err);
      },
    );
    this.tail = tail;
  }

  private failWith(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.control?.stop();
    // Reported after the write in flight, if any (an overflow comes while one waits): what the
    // consumer writes about the failure follows it, and the writes queued behind it are skipped.
    if (this.tail) void this.tail.then(() => this.onError(err));
    else this.onError(err);
  }
}
