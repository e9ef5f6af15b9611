import { TextDecoder } from 'node:util';
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';

const CR = 0x0d;
const STREAM = { stream: true };

export type SseEvent = Readonly<EventSourceMessage>;

/**
 * Decodes an SSE byte stream pushed to it chunk by chunk (multi-byte characters may be cut
 * anywhere) and hands each complete event to `onEvent`. An event larger than maxEventBytes
 * throws, so a hostile upstream cannot grow gateway memory: the parser holds at most that
 * many characters between chunks (a line not ended yet, the data of an event so far), and
 * every event it completes is measured in bytes. Comments and events without data (keep-alives,
 * heartbeats) hold nothing and count toward nothing.
 */
export class SseDecoder {
  /** Made once a chunk ends inside a character: until then each chunk decodes on its own. */
  private text: TextDecoder | undefined;
  private readonly parser: EventSourceParser;
  private started = false;
  private endsInCR = false;

  constructor(maxEventBytes: number, onEvent: (e: SseEvent) => void) {
    const tooLarge = (): Error => new Error(`SSE event larger than ${maxEventBytes} bytes`);
    this.parser = createParser({
      maxBufferSize: maxEventBytes,
      onEvent: (e) => {
        // An event can arrive whole within one chunk, which the parser's own bound does not see.
        if (e.data.length * 3 > maxEventBytes && Buffer.byteLength(e.data) > maxEventBytes) throw tooLarge();
        onEvent(e);
      },
      // Its other errors (an unknown field, a bad retry) are the standard's "ignore the line".
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') throw tooLarge();
      },
    });
  }

  feed(chunk: Buffer): void {
    if (chunk.byteLength === 0) return;
    const last = chunk[chunk.byteLength - 1]!;
    this.endsInCR = last === CR;
    // A chunk that ends on an ASCII byte ends no character halfway: most need no streaming
    // decoder, and a reply that never needs one does not pay for making it.
    let text = this.text === undefined && last < 0x80 ? chunk.toString('utf8') : (this.text ??= new TextDecoder('utf-8', { ignoreBOM: true })).decode(chunk, STREAM);
    if (!this.started && text.length > 0) {
      this.started = true;
      // A byte order mark may open the stream, and is no part of its first line.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.parser.feed(text);
  }

  /** The stream ended: an event left without its closing blank line is dropped, as the SSE standard says. */
  end(): void {
    // The parser holds a line ended by CR until it sees whether LF follows; an LF now ends no
    // further line (CRLF is one line end), so the stream's last line is read as it was sent.
    this.parser.feed((this.text?.decode() ?? '') + (this.endsInCR ? '\n' : ''));
  }
}
