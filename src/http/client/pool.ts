import type { IncomingHttpHeaders } from 'node:http';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import { FRAMING_HEADERS, hasLineBreak, isToken } from '../fields.ts';
import { ResponseParser, type ResponseEvents } from './response-parser.ts';

export interface ClientRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** The path and query, as sent on the request line. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>> | PreparedHeaders;
  readonly body?: string | undefined;
  /**
   * Whether it may be sent once more, on a new connection, when a kept-alive one it went out
   * on closes before a byte of the response: the server closing an idle connection just as
   * the request was written. RFC 9112 §9.3.1 allows that for idempotent requests and for those
   * whose repetition the sender can tell apart from a first run.
   */
  readonly replayable?: boolean;
}

/** Where a response goes, as it arrives. After onResponseEnd or onResponseError nothing more comes. */
export interface ResponseHandler {
  onResponseStart(status: number, headers: IncomingHttpHeaders): void;
  onResponseData(chunk: Buffer): void;
  onResponseEnd(): void;
  onResponseError(error: Error): void;
}

/** The sender's hold on an exchange, whether it waits for a connection or has one. */
export interface ClientExchange {
  /** Stops reading the response off the socket (a consumer fell behind); resume() goes on. */
  pause(): void;
  resume(): void;
  /** Ends the exchange; its handler hears `reason` as the error, unless it already ended. */
  abort(reason: Error): void;
}

/** Opens a connection to the origin; it may be written to before it is established. */
export type Connector = (origin: URL) => Socket;

export interface HttpClientPoolOptions {
  /** Connections open at once; requests beyond wait for one in order. */
  readonly connections?: number;
  /** Requests that may wait for a connection (default 1024); one more fails at once. */
  readonly maxWaiting?: number;
  /** How long an idle connection is kept (shorter when the server's Keep-Alive hint says so). */
  readonly keepAliveMs?: number;
  readonly maxHeadBytes?: number;
  readonly connect?: Connector;
}

/** A connection the server hints it keeps idle this long is given up a second sooner, so a request never races its close. */
const KEEP_ALIVE_MARGIN_MS = 1000;
const SWEEP_INTERVAL_MS = 1000;
/** The lengths of those names and of "host", so that other names are never lowercased. */
const FRAMING_NAME_LENGTHS: ReadonlySet<number> = new Set([...FRAMING_HEADERS, 'host'].map((name) => name.length));

/** An origin-form request target: "/" and visible ASCII after it. */
function isRequestPath(path: string): boolean {
  if (path.charCodeAt(0) !== 0x2f) return false;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

interface FieldLines {
  /** "name: value" lines, each ending in CRLF. */
  readonly lines: string;
  readonly hostGiven: boolean;
}

/** Request header fields as written on the wire; a name or value that could break the framing throws. */
function fieldLines(headers: Readonly<Record<string, string>>): FieldLines {
  let lines = '';
  let hostGiven = false;
  for (const name in headers) {
    const value = headers[name]!;
    if (!isToken(name) || hasLineBreak(value)) throw new TypeError(`bad request header "${name.slice(0, 80)}"`);
    if (FRAMING_NAME_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (lower === 'host') hostGiven = true;
      else if (FRAMING_HEADERS.has(lower)) throw new TypeError(`request header "${name}" is the HTTP client's to write`);
    }
    lines += `${name}: ${value}\r\n`;
  }
  return { lines, hostGiven };
}

/**
 * Request header fields checked and written out once, for a sender that sends the same ones
 * on many requests (an upstream session). Fields that fail the check fail every request
 * that carries them, as they would unprepared.
 */
export class PreparedHeaders {
  private readonly fields: FieldLines | undefined;
  private readonly problem: string | undefined;

  constructor(headers: Readonly<Record<string, string>>) {
    try {
      this.fields = fieldLines(headers);
    } catch (err) {
      this.problem = (err as Error).message;
    }
  }

  checked(): FieldLines {
    if (!this.fields) throw new TypeError(this.problem);
    return this.fields;
  }
}

export const plainOrTlsConnector: Connector = (origin) => {
  const host = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
  if (origin.protocol === 'https:') {
    const socket = tlsConnect({ host, port: Number(origin.port) || 443, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] });
    socket.setNoDelay(true);
    return socket;
  }
  return tcpConnect({ host, port: Number(origin.port) || 80, noDelay: true });
};

/**
 * A pool of keep-alive HTTP/1.1 connections to one origin, one request at a time on each.
 * It exists because the gateway's upstream hop is on every forwarded call: a request is one
 * socket write of a head built as one string, and its response is parsed in JavaScript from
 * the socket's buffers straight into the handler's callbacks, with no stream, promise or
 * timer per request (bench/LOG.md has what it saved over undici). It does what an MCP
 * upstream needs and no more: GET, POST and DELETE with string bodies, no pipelining, no
 * redirects, no upgrades; timeouts are the caller's (abort()).
 */
export class HttpClientPool {
  private readonly origin: URL;
  private readonly hostHeader: string;
  private readonly maxConnections: number;
  private readonly keepAliveMs: number;
  private readonly maxHeadBytes: number;
  private readonly connector: Connector;
  private readonly live = new Set<Connection>();
  /** Most recently used last: that is the one taken next, so the rest can age out. */
  private readonly idle: Connection[] = [];
  /** In order; an exchange aborted while it waits stays until its turn comes (or the queue is compacted), and is skipped then. */
  private waiting: Exchange[] = [];
  /** Of those, the ones not aborted. */
  private waitingCount = 0;
  private readonly maxWaiting: number;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(origin: string | URL, options: HttpClientPoolOptions = {}) {
    this.origin = new URL(origin);
    if (this.origin.protocol !== 'http:' && this.origin.protocol !== 'https:') throw new TypeError(`not an HTTP origin: ${this.origin.href}`);
    this.hostHeader = this.origin.host;
    this.maxConnections = options.connections ?? 128;
    this.maxWaiting = options.maxWaiting ?? 1024;
    this.keepAliveMs = options.keepAliveMs ?? 30_000;
    this.maxHeadBytes = options.maxHeadBytes ?? 16 * 1024;
    this.connector = options.connect ?? plainOrTlsConnector;
  }

  dispatch(request: ClientRequest, handler: ResponseHandler): ClientExchange {
    let head: string;
    try {
      head = this.head(request);
    } catch (err) {
      const refused = new Exchange(this, '', handler, false);
      queueMicrotask(() => refused.finishWithError(err as Error));
      return refused;
    }
    const exchange = new Exchange(this, request.body === undefined ? head : head + request.body, handler, request.replayable === true);
    if (this.closed) {
      queueMicrotask(() => exchange.finishWithError(new Error('the HTTP client is closed')));
      return exchange;
    }
    const connection = this.takeIdle();
    if (connection) connection.start(exchange);
    else this.startOnNewConnection(exchange);
    return exchange;
  }

  /** Sends an exchange on a connection of its own, or queues it while all are busy (a replayed one first in line). */
  startOnNewConnection(exchange: Exchange, replayed = false): void {
    if (this.closed) return exchange.finishWithError(new Error('the HTTP client is closed'));
    if (this.live.size < this.maxConnections) return this.open().start(exchange);
    // A replayed exchange had its place already: it is not refused.
    if (!replayed && this.waitingCount >= this.maxWaiting) {
      const full = new Error(`all ${this.maxConnections} connections to ${this.origin.origin} are busy and ${this.waitingCount} requests wait for one`);
      queueMicrotask(() => exchange.finishWithError(full));
      return;
    }
    exchange.waiting = true;
    this.waitingCount++;
    if (replayed) this.waiting.unshift(exchange);
    else this.waiting.push(exchange);
  }

  /** Fails what waits and what is under way, and closes every connection. */
  close(): void {
    this.closed = true;
    this.stopSweeping();
    const closing = new Error('the HTTP client is closed');
    this.waitingCount = 0;
    for (const exchange of this.waiting.splice(0)) exchange.finishWithError(closing);
    for (const connection of [...this.live]) connection.fail(closing);
  }

  /** A connection finished its exchange: it serves the next one waiting, or idles. */
  release(connection: Connection, keepAlive: boolean, hintMs: number | undefined): void {
    const limitMs = hintMs === undefined ? this.keepAliveMs : Math.min(this.keepAliveMs, hintMs - KEEP_ALIVE_MARGIN_MS);
    if (!keepAlive || this.closed || limitMs <= 0) return connection.fail(undefined);
    connection.idleLimitMs = limitMs;
    const next = this.nextWaiting();
    if (next) return connection.start(next);
    // An idle connection must read on, to see the server close it.
    if (connection.socket.isPaused()) connection.socket.resume();
    connection.idleSince = performance.now();
    this.idle.push(connection);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  /** A connection is gone: anyone waiting gets a new one in its place. */
  forget(connection: Connection): void {
    this.live.delete(connection);
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
    if (this.idle.length === 0) this.stopSweeping();
    const next = this.nextWaiting();
    if (next) this.open().start(next);
  }

  /** An exchange that waited was aborted: it no longer counts, and is skipped when its turn comes. */
  unqueue(exchange: Exchange): void {
    if (!exchange.waiting) return;
    exchange.waiting = false;
    this.waitingCount--;
    // Aborted ones are dropped once they outnumber the rest: the queue holds at most twice its bound.
    if (this.waiting.length > 2 * this.waitingCount + 64) this.waiting = this.waiting.filter((e) => e.waiting);
  }

  private nextWaiting(): Exchange | undefined {
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) {
      if (!next.waiting) continue;
      next.waiting = false;
      this.waitingCount--;
      return next;
    }
    return undefined;
  }

  private head(request: ClientRequest): string {
    if (!isRequestPath(request.path)) throw new TypeError(`bad request path "${request.path.slice(0, 80)}"`);
    const fields = request.headers instanceof PreparedHeaders ? request.headers.checked() : fieldLines(request.headers);
    const head = `${request.method} ${request.path} HTTP/1.1\r\n${fields.lines}${fields.hostGiven ? '' : `host: ${this.hostHeader}\r\n`}`;
    return request.body === undefined ? `${head}\r\n` : `${head}content-length: ${Buffer.byteLength(request.body)}\r\n\r\n`;
  }

  private takeIdle(): Connection | undefined {
    const now = performance.now();
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) {
      if (now - connection.idleSince < connection.idleLimitMs) return connection;
      connection.fail(undefined);
    }
    return undefined;
  }

  private open(): Connection {
    const connection = new Connection(this, this.connector(this.origin), this.maxHeadBytes);
    this.live.add(connection);
    return connection;
  }

  private sweep(): void {
    const now = performance.now();
    for (const connection of [...this.idle]) if (now - connection.idleSince >= connection.idleLimitMs) connection.fail(undefined);
  }

  private stopSweeping(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

class Exchange implements ClientExchange {
  /** The request as it goes on the wire: head and body in one string, one write. */
  readonly wire: string;
  readonly handler: ResponseHandler;
  /** Replayable and not yet replayed. */
  mayReplay: boolean;
  private readonly pool: HttpClientPool;
  connection: Connection | undefined;
  /** In the pool's queue for a connection. */
  waiting = false;
  paused = false;
  over = false;

  constructor(pool: HttpClientPool, wire: string, handler: ResponseHandler, replayable: boolean) {
    this.pool = pool;
    this.wire = wire;
    this.handler = handler;
    this.mayReplay = replayable;
  }

  pause(): void {
    if (this.over || this.paused) return;
    this.paused = true;
    this.connection?.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.over) this.connection?.socket.resume();
  }

  abort(reason: Error): void {
    if (this.over) return;
    if (this.connection) return this.connection.fail(reason);
    this.pool.unqueue(this);
    this.finishWithError(reason);
  }

  finishWithError(error: Error): void {
    if (this.over) return;
    this.over = true;
    this.connection = undefined;
    this.handler.onResponseError(error);
  }
}

/** One socket to the origin and the parser of what comes back on it. */
class Connection implements ResponseEvents {
  readonly socket: Socket;
  idleSince = 0;
  idleLimitMs = 0;
  private readonly pool: HttpClientPool;
  private readonly parser: ResponseParser;
  private exchange: Exchange | undefined;
  /** Exchanges this connection finished: from the second on, it was kept alive for them. */
  private served = 0;
  /** Whether any byte of the current exchange's response came. */
  private answered = false;
  private dead = false;

  constructor(pool: HttpClientPool, socket: Socket, maxHeadBytes: number) {
    this.pool = pool;
    this.socket = socket;
    this.parser = new ResponseParser(this, { maxHeadBytes });
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('end', () => this.ended());
    socket.on('error', (err) => this.lost(err));
    socket.on('close', () => this.lost(new Error('the connection closed')));
  }

  start(exchange: Exchange): void {
    this.exchange = exchange;
    this.answered = false;
    exchange.connection = this;
    this.parser.expectResponse();
    if (exchange.paused) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
    this.socket.write(exchange.wire);
  }

  head(status: number, headers: IncomingHttpHeaders): void {
    this.exchange?.handler.onResponseStart(status, headers);
  }

  data(chunk: Buffer): void {
    this.exchange?.handler.onResponseData(chunk);
  }

  end(): void {
    const exchange = this.exchange;
    if (!exchange) return;
    this.exchange = undefined;
    this.served++;
    exchange.over = true;
    exchange.connection = undefined;
    // Released first: a handler that sends its next request at once gets this connection. Not
    // when the request is still being written (a response that came before the whole body was
    // read): the next request would follow the unsent rest, for the server to read as it likes.
    this.pool.release(this, this.parser.keepAlive && this.socket.writableLength === 0, this.parser.keepAliveHintMs);
    exchange.handler.onResponseEnd();
  }

  /** Closes the connection; the exchange on it, if any, fails with `error`. */
  fail(error: Error | undefined): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    this.pool.forget(this);
    const exchange = this.exchange;
    this.exchange = undefined;
    if (exchange) exchange.finishWithError(error ?? new Error('the connection closed'));
  }

  /** The server closed or reset the connection; an exchange it never answered on a kept-alive connection may go again. */
  private lost(error: Error | undefined): void {
    const exchange = this.exchange;
    if (!exchange || this.answered || this.served === 0 || !exchange.mayReplay) return this.fail(error);
    exchange.mayReplay = false;
    this.exchange = undefined;
    exchange.connection = undefined;
    this.fail(undefined);
    this.pool.startOnNewConnection(exchange, true);
  }

  private received(chunk: Buffer): void {
    this.answered = true;
    try {
      this.parser.feed(chunk);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /** The server closed its side: the end of a body that runs to the close, or of the connection. */
  private ended(): void {
    if (this.exchange && !this.answered) return this.lost(new Error('the connection closed before a response'));
    try {
      this.parser.closed();
    } catch (err) {
      return this.fail(err as Error);
    }
    this.fail(undefined);
  }
}
