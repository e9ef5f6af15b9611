import { createParser, type EventSourceParser } from 'eventsource-parser';

const CR = 0x0d;

export interface SseEvent {
  readonly event: string | undefined;
  readonly id: string | undefined;
  readonly data: string;
}

/**
 * Decodes an SSE byte stream pushed to it chunk by chunk (multi-byte characters may be cut
 * anywhere) and hands each complete event to `onEvent`. A single event larger than
 * maxEventBytes throws, so a hostile upstream cannot grow gateway memory; comments
 * (keep-alives) hold nothing and count toward no event.
 */
export class SseDecoder {
  private readonly text = new TextDecoder();
  private readonly parser: EventSourceParser;
  private readonly maxEventBytes: number;
  /** Bytes fed since the last event ended, comments left out. */
  private pendingBytes = 0;
  private endsInCR = false;

  constructor(maxEventBytes: number, onEvent: (e: SseEvent) => void) {
    this.maxEventBytes = maxEventBytes;
    this.parser = createParser({
      onEvent: (e) => {
        this.pendingBytes = 0;
        // A whole event can arrive in one chunk, which the count below sees only after this.
        if (e.data.length * 3 > maxEventBytes && Buffer.byteLength(e.data) > maxEventBytes) throw this.tooLarge();
        onEvent({ event: e.event, id: e.id, data: e.data });
      },
      // The comment's own bytes: its ':' and line end are still counted, which errs on the safe side.
      onComment: (comment) => {
        this.pendingBytes = Math.max(0, this.pendingBytes - Buffer.byteLength(comment));
      },
    });
  }

  feed(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.pendingBytes += chunk.byteLength;
    this.endsInCR = chunk[chunk.byteLength - 1] === CR;
    this.parser.feed(this.text.decode(chunk, { stream: true }));
    if (this.pendingBytes > this.maxEventBytes) throw this.tooLarge();
  }

  /** The stream ended: an event left without its closing blank line is dropped, as the SSE standard says. */
  end(): void {
    // The parser holds a line ended by CR until it sees whether LF follows; an LF now ends no
    // further line (CRLF is one line end), so the stream's last line is read as it was sent.
    this.parser.feed(this.text.decode() + (this.endsInCR ? '\n' : ''));
  }

  private tooLarge(): Error {
    return new Error(`SSE event larger than ${this.maxEventBytes} bytes`);
  }
}

/**
 * The events of an SSE body, mapped (undefined drops an event), read as its chunks arrive.
 * An iterator object rather than an async generator: this sits on every forwarded reply,
 * and each generator layer costs a generator, its queue and promises per step.
 */
export class SseReader<T> implements AsyncIterableIterator<T> {
  private readonly body: AsyncIterator<Uint8Array>;
  private readonly decoder: SseDecoder;
  private readonly ready: T[] = [];
  private finished = false;

  constructor(body: AsyncIterable<Uint8Array>, maxEventBytes: number, map: (e: SseEvent) => T | undefined) {
    this.body = body[Symbol.asyncIterator]();
    this.decoder = new SseDecoder(maxEventBytes, (e) => {
      const item = map(e);
      if (item !== undefined) this.ready.push(item);
    });
  }

  async next(): Promise<IteratorResult<T>> {
    while (this.ready.length === 0) {
      if (this.finished) return { value: undefined, done: true };
      const chunk = await this.body.next();
      try {
        if (chunk.done) {
          this.finished = true;
          this.decoder.end();
        } else {
          this.decoder.feed(chunk.value);
        }
      } catch (err) {
        await this.return();
        throw err;
      }
    }
    return { value: this.ready.shift()!, done: false };
  }

  /** Stops reading: the rest of the body is left to its source (discarded, or the connection closed). */
  return(): Promise<IteratorResult<T>> {
    this.ready.length = 0;
    const done: IteratorReturnResult<undefined> = { value: undefined, done: true };
    if (this.finished || !this.body.return) return Promise.resolve(done);
    this.finished = true;
    return this.body.return().then(() => done);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

export function readSseEvents(body: AsyncIterable<Uint8Array>, maxEventBytes: number): SseReader<SseEvent> {
  return new SseReader(body, maxEventBytes, (e) => e);
}
