import type { IncomingHttpHeaders } from 'node:http';
import { hasControlChar, isToken } from '../fields.ts';

/** What a parsed HTTP/1.1 response hands on, in order: its head, its body's bytes, its end. */
export interface ResponseEvents {
  head(status: number, headers: IncomingHttpHeaders): void;
  data(chunk: Buffer): void;
  end(): void;
}

export interface ResponseLimits {
  /** The status line and headers together (and a chunked body's trailers). */
  readonly maxHeadBytes: number;
}

/** The response broke HTTP/1.1's framing: the connection it came on cannot be trusted again. */
export class HttpFramingError extends Error {
  constructor(detail: string) {
    super(`malformed HTTP response: ${detail}`);
    this.name = 'HttpFramingError';
  }
}

type State =
  /** No response is expected: any byte is one too many. */
  | 'idle'
  | 'head'
  | 'fixed-body'
  | 'close-delimited-body'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-end'
  | 'trailers';

const CRLF = 0x0a0d;
const LF = 0x0a;
const CR = 0x0d;
const SEMICOLON = 0x3b;
const MAX_CHUNK_SIZE_DIGITS = 13;
const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\0\r\n]*)?$/;
const CONTENT_LENGTH = /^\d{1,15}$/;
const MAX_CHUNK_LINE = 4096;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i;

/**
 * A push parser of HTTP/1.1 responses for a client that sends one request at a time on a
 * connection (no pipelining): bytes go in as the socket delivers them, and the response's
 * head, body bytes (as slices of what came in, de-chunked) and end come out. It is strict
 * where leniency lets a response be read two ways (request smuggling's other face): a bare
 * LF in the head, folded or unnamed fields, conflicting Content-Length values, a
 * transfer-coding other than chunked (or any in HTTP/1.0), bytes after a response, each is a
 * HttpFramingError and the connection is done for.
 */
export class ResponseParser {
  /** The last response may leave its connection open for the next request. */
  keepAlive = false;
  /** The server's Keep-Alive timeout hint in ms, when it gave one. */
  keepAliveHintMs: number | undefined;
  private readonly events: ResponseEvents;
  private readonly limits: ResponseLimits;
  private state: State = 'idle';
  /** The part of a head, chunk-size line or trailer section that arrived so far. */
  private partial: Buffer | undefined;
  /** Bytes still to come of a fixed-length body or of the current chunk. */
  private remaining = 0;
  private trailerBytes = 0;

  constructor(events: ResponseEvents, limits: ResponseLimits) {
    this.events = events;
    this.limits = limits;
  }

  /** A request went out: its response is what comes next. */
  expectResponse(): void {
    this.state = 'head';
    this.partial = undefined;
    this.keepAlive = false;
    this.keepAliveHintMs = undefined;
  }

  get expecting(): boolean {
    return this.state !== 'idle';
  }

  feed(input: Buffer): void {
    let buf = input;
    if (this.partial) {
      buf = Buffer.concat([this.partial, input]);
      this.partial = undefined;
    }
    let at = 0;
    while (at < buf.length) {
      switch (this.state) {
        case 'idle':
          throw new HttpFramingError('bytes arrived with no request waiting for them');
        case 'head':
          at = this.head(buf, at);
          break;
        case 'fixed-body':
        case 'chunk-data': {
          const end = Math.min(buf.length, at + this.remaining);
          this.remaining -= end - at;
          this.events.data(at === 0 && end === buf.length ? buf : buf.subarray(at, end));
          at = end;
          if (this.remaining === 0) {
            if (this.state === 'fixed-body') return this.complete(buf, at);
            this.state = 'chunk-end';
          }
          break;
        }
        case 'close-delimited-body':
          this.events.data(at === 0 ? buf : buf.subarray(at));
          return;
        case 'chunk-size':
          at = this.chunkSize(buf, at);
          break;
        case 'chunk-end':
          if (buf.length - at < 2) {
            this.partial = buf.subarray(at);
            return;
          }
          if (buf.readUInt16LE(at) !== CRLF) throw new HttpFramingError('a chunk is not followed by CRLF');
          at += 2;
          this.state = 'chunk-size';
          break;
        case 'trailers':
          at = this.trailer(buf, at);
          if ((this.state as State) === 'idle') return this.complete(buf, at);
          break;
      }
    }
  }

  /** The connection closed: this ends a body delimited by the close, and is a failure anywhere else in a response. */
  closed(): void {
    if (this.state === 'close-delimited-body') {
      this.state = 'idle';
      this.events.end();
    } else if (this.state !== 'idle') {
      throw new HttpFramingError(this.state === 'head' && this.partial === undefined ? 'the connection closed before a response' : 'the connection closed in the middle of the response');
    }
  }

  private head(buf: Buffer, at: number): number {
    const end = buf.indexOf(HEAD_END, at);
    if (end < 0) {
      if (buf.length - at > this.limits.maxHeadBytes) throw new HttpFramingError(`the head is larger than ${this.limits.maxHeadBytes} bytes`);
      // Lines ended by a bare LF would never end the head the way this reads it: refused now, not waited on.
      if (hasBareLf(buf, at)) throw new HttpFramingError('a line of the head ends in a bare LF');
      this.partial = buf.subarray(at);
      return buf.length;
    }
    if (end - at > this.limits.maxHeadBytes) throw new HttpFramingError(`the head is larger than ${this.limits.maxHeadBytes} bytes`);
    const text = buf.toString('latin1', at, end);
    const statusEnd = text.indexOf('\r\n');
    const statusLine = statusEnd < 0 ? text : text.slice(0, statusEnd);
    const status = STATUS_LINE.exec(statusLine);
    if (!status) throw new HttpFramingError(`bad status line "${statusLine.slice(0, 80)}"`);
    const code = Number(status[2]);
    const headers = statusEnd < 0 ? {} : parseFields(text, statusEnd + 2);
    const next = end + 4;
    if (code < 200) {
      // An interim response (100 Continue, 103 Early Hints): the final one follows.
      if (code === 101) throw new HttpFramingError('the server switched protocols');
      return next;
    }
    this.frame(code, status[1] === '1', headers);
    this.events.head(code, headers);
    if (this.state === 'idle') this.complete(buf, next);
    return next;
  }

  /** Works out how the body is delimited (RFC 9112 §6.3) and whether the connection outlives it. */
  private frame(status: number, http11: boolean, headers: IncomingHttpHeaders): void {
    const connection = headerText(headers.connection);
    this.keepAlive = http11 ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
    const hint = KEEP_ALIVE_TIMEOUT.exec(headerText(headers['keep-alive']));
    this.keepAliveHintMs = hint ? Number(hint[1]) * 1000 : undefined;
    const encoding = headers['transfer-encoding'];
    const length = headers['content-length'];
    if (status === 204 || status === 304) {
      this.state = 'idle';
    } else if (encoding !== undefined) {
      // HTTP/1.0 has no transfer-codings: framing that claims one is faulty (RFC 9112 §6.1).
      if (!http11) throw new HttpFramingError('Transfer-Encoding in an HTTP/1.0 response');
      // The client asks for no transfer-coding, and decodes none but chunked, applied once.
      const codings = headerText(encoding);
      if (!isTokenAt(codings, 0, codings.length, 'chunked')) throw new HttpFramingError(`unsupported Transfer-Encoding "${codings.slice(0, 80)}"`);
      // Both framings at once is how smuggling starts: the chunked one is read, and the connection not reused.
      if (length !== undefined) this.keepAlive = false;
      this.state = 'chunk-size';
    } else if (length !== undefined) {
      this.remaining = contentLength(headerText(length));
      this.state = this.remaining === 0 ? 'idle' : 'fixed-body';
    } else {
      this.state = 'close-delimited-body';
      this.keepAlive = false;
    }
  }

  private chunkSize(buf: Buffer, at: number): number {
    const lf = buf.indexOf(LF, at);
    if (lf < 0) {
      if (buf.length - at > MAX_CHUNK_LINE) throw new HttpFramingError('a chunk-size line is too long');
      this.partial = buf.subarray(at);
      return buf.length;
    }
    if (lf === at || buf[lf - 1] !== 0x0d) throw new HttpFramingError('a chunk-size line does not end in CRLF');
    const size = chunkSizeOf(buf, at, lf - 1);
    if (size < 0) throw new HttpFramingError('bad chunk size');
    if (size === 0) {
      this.state = 'trailers';
      this.trailerBytes = 0;
    } else {
      this.remaining = size;
      this.state = 'chunk-data';
    }
    return lf + 1;
  }

  /** Trailer fields are read line by line, checked, and dropped: nothing here uses them. */
  private trailer(buf: Buffer, at: number): number {
    const lf = buf.indexOf(LF, at);
    if (lf < 0) {
      if (this.trailerBytes + buf.length - at > this.limits.maxHeadBytes) throw new HttpFramingError(`the trailers are larger than ${this.limits.maxHeadBytes} bytes`);
      this.partial = buf.subarray(at);
      return buf.length;
    }
    if (lf === at || buf[lf - 1] !== 0x0d) throw new HttpFramingError('a trailer line does not end in CRLF');
    this.trailerBytes += lf + 1 - at;
    if (this.trailerBytes > this.limits.maxHeadBytes) throw new HttpFramingError(`the trailers are larger than ${this.limits.maxHeadBytes} bytes`);
    if (lf - 1 === at) this.state = 'idle';
    else parseFields(buf.toString('latin1', at, lf - 1), 0);
    return lf + 1;
  }

  private complete(buf: Buffer, at: number): void {
    this.state = 'idle';
    // One request at a time: whatever follows a response answers nothing.
    if (at < buf.length) throw new HttpFramingError('bytes followed the end of the response');
    this.events.end();
  }
}

/**
 * Field names as servers spell them, each checked and lowercased once: a server sends the
 * same few names on every response. Looked up by length and then in place, since hashing a
 * fresh slice of the head for a Map costs more than the check it saves. Bounded, so that a
 * server inventing names cannot grow it; names past the bound are checked every time.
 */
const knownSpellings: string[] = [];
const knownKeys: string[] = [];
const MAX_KNOWN_NAMES = 64;

/** The key of the name text[start, end). */
function fieldKey(text: string, start: number, end: number): string {
  const length = end - start;
  for (let i = 0; i < knownSpellings.length; i++) {
    const spelling = knownSpellings[i]!;
    if (spelling.length === length && text.startsWith(spelling, start)) return knownKeys[i]!;
  }
  const name = text.slice(start, end);
  if (!isToken(name)) throw new HttpFramingError(`bad header name "${name.slice(0, 80)}"`);
  const key = name.toLowerCase();
  if (knownSpellings.length < MAX_KNOWN_NAMES) {
    knownSpellings.push(name);
    knownKeys.push(key);
  }
  return key;
}

/** The field lines of `text` from `from` on, one per CRLF. */
function parseFields(text: string, from: number): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (let start = from; start <= text.length; ) {
    let end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', start);
    if (colon <= start || colon > end) throw new HttpFramingError(`bad header line "${text.slice(start, Math.min(end, start + 80))}"`);
    const key = fieldKey(text, start, colon);
    let valueStart = colon + 1;
    let valueEnd = end;
    while (valueStart < valueEnd && isBlank(text.charCodeAt(valueStart))) valueStart++;
    while (valueEnd > valueStart && isBlank(text.charCodeAt(valueEnd - 1))) valueEnd--;
    if (hasControlChar(text, valueStart, valueEnd)) throw new HttpFramingError(`bad value of header "${text.slice(start, colon)}"`);
    const value = text.slice(valueStart, valueEnd);
    const before = headers[key];
    if (before === undefined) headers[key] = key === 'set-cookie' ? [value] : value;
    else if (Array.isArray(before)) before.push(value);
    else headers[key] = `${before}, ${value}`;
    start = end + 2;
  }
  return headers;
}

/** Optional whitespace around a field value: SP and HTAB only. */
function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Repeated Content-Length fields (or one listing several values) must all agree. */
function contentLength(text: string): number {
  const values = text.split(',');
  const first = values[0]!.trim();
  if (!CONTENT_LENGTH.test(first) || values.some((v) => v.trim() !== first)) throw new HttpFramingError(`bad content-length "${text.slice(0, 80)}"`);
  return Number(first);
}

function headerText(value: string | string[] | undefined): string {
  return value === undefined ? '' : Array.isArray(value) ? value.join(', ') : value;
}

/** Whether a comma-separated list names `token` (lower case), in any case. */
function hasToken(list: string, token: string): boolean {
  for (let start = 0; start <= list.length; ) {
    let end = list.indexOf(',', start);
    if (end < 0) end = list.length;
    if (isTokenAt(list, start, end, token)) return true;
    start = end + 1;
  }
  return false;
}

/** Whether buf[from..] holds an LF that no CR precedes. */
function hasBareLf(buf: Buffer, from: number): boolean {
  for (let lf = buf.indexOf(LF, from); lf >= 0; lf = buf.indexOf(LF, lf + 1)) if (lf === from || buf[lf - 1] !== CR) return true;
  return false;
}

/** Whether list[start, end), without its optional whitespace, is `token` in any case; nothing is allocated. */
function isTokenAt(list: string, start: number, end: number, token: string): boolean {
  while (start < end && isBlank(list.charCodeAt(start))) start++;
  while (end > start && isBlank(list.charCodeAt(end - 1))) end--;
  if (end - start !== token.length) return false;
  for (let i = 0; i < token.length; i++) {
    const c = list.charCodeAt(start + i);
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== token.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The size a chunk-size line buf[start, end) (without its CRLF) gives: hex, at most 13 digits
 * (2^52), then optional whitespace and extensions, which are ignored; -1 when it is not one.
 */
function chunkSizeOf(buf: Buffer, start: number, end: number): number {
  let size = 0;
  let at = start;
  for (; at < end && at - start <= MAX_CHUNK_SIZE_DIGITS; at++) {
    const digit = hexValue(buf[at]!);
    if (digit < 0) break;
    size = size * 16 + digit;
  }
  if (at === start || at - start > MAX_CHUNK_SIZE_DIGITS) return -1;
  while (at < end && (buf[at] === 0x20 || buf[at] === 0x09)) at++;
  if (at === end) return size;
  if (buf[at] !== SEMICOLON) return -1;
  for (; at < end; at++) if (buf[at] === CR) return -1;
  return size;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}
