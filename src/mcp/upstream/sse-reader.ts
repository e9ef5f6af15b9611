import { createParser } from 'eventsource-parser';
import { parseMessage } from '../../jsonrpc/parse.ts';
import type { Inbound } from './types.ts';

export interface SseEvent {
  readonly event: string | undefined;
  readonly id: string | undefined;
  readonly data: string;
}

/**
 * Reads an SSE body without buffering the stream: each chunk is fed to the parser and the
 * complete events come out, mapped (undefined drops an event). A single event larger than
 * maxEventBytes aborts the stream, so a hostile upstream cannot grow gateway memory.
 */
async function* readSse<T>(body: AsyncIterable<Buffer | Uint8Array>, maxEventBytes: number, map: (e: SseEvent) => T | undefined): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  const ready: T[] = [];
  let pendingBytes = 0;
  const parser = createParser({
    onEvent(e) {
      pendingBytes = 0;
      const mapped = map({ event: e.event, id: e.id, data: e.data });
      if (mapped !== undefined) ready.push(mapped);
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

export function readSseEvents(body: AsyncIterable<Buffer | Uint8Array>, maxEventBytes: number): AsyncGenerator<SseEvent> {
  return readSse(body, maxEventBytes, (e) => e);
}

/** JSON-RPC messages carried in "message" events (or events with no type); others are skipped. */
export function readSseMessages(body: AsyncIterable<Buffer | Uint8Array>, maxEventBytes: number): AsyncGenerator<Inbound & { eventId: string | undefined }> {
  return readSse(body, maxEventBytes, (e) =>
    (e.event !== undefined && e.event !== 'message') || e.data.length === 0 ? undefined : { message: parseMessage(e.data), raw: e.data, eventId: e.id },
  );
}
