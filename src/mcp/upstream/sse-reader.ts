export interface SseEvent {
  readonly event: string | undefined;
  readonly id: string | undefined;
  readonly data: string;
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const BOM = 0xfeff;

/**
 * Decodes an SSE byte stream pushed to it chunk by chunk and hands each complete event to
 * `onEvent`, as the HTML standard's event-stream interpretation says (lines end in LF, CRLF
 * or CR; comments, `retry` and unknown fields are ignored; an event ends at a blank line).
 * `id` is the event's own id field, not the stream's last event id.
 *
 * Lines are cut on bytes: CR and LF never occur inside a UTF-8 sequence, so every line is
 * whole characters and is decoded once, without a streaming text decoder. Every forwarded
 * reply goes through one of these, which is why it is not a general-purpose parser.
 *
 * An event larger than maxEventBytes throws, so a hostile upstream cannot grow gateway memory.
 */
export class SseDecoder {
  private readonly maxEventBytes: number;
  private readonly onEvent: (e: SseEvent) => void;
  /** The start of a line whose end has not arrived yet. */
  private partial: Buffer[] | undefined;
  /** The last chunk ended in CR: an LF opening the next one ends no second line. */
  private afterCR = false;
  private firstLine = true;
  /** Bytes of the event being read, lines and line ends alike (comments between events not counted). */
  private eventBytes = 0;
  private data: string | undefined;
  private type: string | undefined;
  private id: string | undefined;

  constructor(maxEventBytes: number, onEvent: (e: SseEvent) => void) {
    this.maxEventBytes = maxEventBytes;
    this.onEvent = onEvent;
  }

  feed(chunk: Uint8Array): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    if (this.afterCR) {
      this.afterCR = false;
      if (bytes[0] === LF) start = 1;
    }
    let cr = bytes.indexOf(CR, start);
    let lf = bytes.indexOf(LF, start);
    while (cr !== -1 || lf !== -1) {
      const end = cr === -1 || (lf !== -1 && lf < cr) ? lf : cr;
      let next = end + 1;
      if (end === cr) {
        if (next === bytes.length) this.afterCR = true;
        else if (bytes[next] === LF) next++;
      }
      this.count(next - start);
      this.line(this.lineText(bytes, start, end));
      // Comments and keep-alives between events hold nothing.
      if (this.data === undefined && this.type === undefined && this.id === undefined) this.eventBytes = 0;
      start = next;
      if (cr !== -1 && cr < start) cr = bytes.indexOf(CR, start);
      if (lf !== -1 && lf < start) lf = bytes.indexOf(LF, start);
    }
    if (start < bytes.length) {
      this.count(bytes.length - start);
      (this.partial ??= []).push(bytes.subarray(start));
    }
  }

  /** The stream ended: an event left without its closing blank line is dropped, as the SSE standard says. */
  end(): void {
    this.partial = undefined;
    this.data = this.type = this.id = undefined;
  }

  private count(bytes: number): void {
    this.eventBytes += bytes;
    if (this.eventBytes > this.maxEventBytes) throw new Error(`SSE event larger than ${this.maxEventBytes} bytes`);
  }

  private lineText(bytes: Buffer, start: number, end: number): string {
    const partial = this.partial;
    if (!partial) return bytes.toString('utf8', start, end);
    this.partial = undefined;
    partial.push(bytes.subarray(start, end));
    return Buffer.concat(partial).toString('utf8');
  }

  private line(text: string): void {
    if (this.firstLine) {
      this.firstLine = false;
      if (text.charCodeAt(0) === BOM) text = text.slice(1);
    }
    if (text.length === 0) return this.dispatch();
    const colon = text.indexOf(':');
    if (colon === 0) return;
    const field = colon === -1 ? text : text.slice(0, colon);
    const value = colon === -1 ? '' : text.slice(text.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1);
    switch (field) {
      case 'data':
        this.data = this.data === undefined ? value : `${this.data}\n${value}`;
        return;
      case 'event':
        this.type = value;
        return;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        return;
    }
  }

  private dispatch(): void {
    const { data, type, id } = this;
    this.data = this.type = this.id = undefined;
    // No data field: the standard dispatches nothing.
    if (data !== undefined) this.onEvent({ event: type || undefined, id, data });
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
