import { createParser } from 'eventsource-parser';
import { parseMessage } from '../../jsonrpc/parse.ts';
import type { Inbound } from './types.ts';

export interface SseEvent {
  readonly event: string | undefined;
  readonly id: string | undefined;
  readonly data: string;
}

/**
 * Reads an SSE body into events without buffering the stream: each chunk is fed to the
 * parser and complete events come out. A single event larger than maxEventBytes aborts
 * the stream, so a hostile upstream cannot grow gateway memory without bound.
 */
export async function* readSseEvents(body: AsyncIterable<Buffer | Uint8Array>, maxEventBytes: number): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const ready: SseEvent[] = [];
  let pendingBytes = 0;
  const parser = createParser({
    onEvent(e) {
      pendingBytes = 0;
      ready.push({ event: e.event, id: e.id, data: e.data });
    },
  });
  for await (const chunk of body) {
    pendingBytes += chunk.byteLength;
    parser.feed(decoder.decode(chunk, { stream: true }));
    if (ready.length > 0) {
      yield* ready.splice(0);
    } else if (pendingBytes > maxEventBytes) {
      throw new Error(`SSE event larger than ${maxEventBytes} bytes`);
    }
  }
  parser.feed(decoder.decode());
  yield* ready.splice(0);
}

/** JSON-RPC messages carried in "message" events (or events with no type); others are skipped. */
export async function* readSseMessages(body: AsyncIterable<Buffer | Uint8Array>, maxEventBytes: number): AsyncGenerator<Inbound & { eventId: string | undefined }> {
  for await (const e of readSseEvents(body, maxEventBytes)) {
    if ((e.event !== undefined && e.event !== 'message') || e.data.length === 0) continue;
    yield { message: parseMessage(e.data), raw: e.data, eventId: e.id };
  }
}
