/**
 * The audit trail: one JSON line per authorization decision, a tool call's written when it
 * ends, with its outcome.
 * Writing must never slow down or fail a request, so records are buffered in a
 * bounded queue behind the stream's own backpressure, and dropped (and counted)
 * rather than held without limit when the destination cannot keep up. Records go out
 * in batches, one write every BATCH_WINDOW_MS at most (bench/LOG.md): a write per record
 * cost a busy gateway more than building the records, and even one per event-loop turn
 * cost the policy stack 6–9% of its CPU. A regular file gets each batch in one synchronous
 * write on this thread, as pino writes its files: handing the write to libuv's pool wakes one
 * of its threads and comes back to this one when done, which cost a busy gateway 8 µs per
 * call more than the write itself (bench/LOG.md). And a record may be handed over as the
 * function that makes it, called when its batch is written: the records of a batch, made
 * together in one loop, cost a busy gateway a fraction of what the same work costs spread
 * over the calls (bench/LOG.md).
 */
import { closeSync, createWriteStream, openSync, statSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { canonicalDigest } from '../util/canonical-json.ts';

export interface AuditRecord {
  /** ISO 8601. */
  time: string;
  traceId?: string;
  /** The gateway's session id (sid), never the session token. */
  session?: string;
  /** `apiKey` is the key's configured name, never its value. */
  identity?: { subject?: string; method: string; issuer?: string; spiffe?: string; apiKey?: string };
  route: string;
  backend?: string;
  /** The MCP method. */
  method: string;
  /** The downstream tool, prompt or resource name. */
  tool?: string;
  decision: 'allow' | 'deny';
  /** The rule or policy that decided. */
  rule?: string;
  reason?: string;
  latencyMs?: number;
  outcome?: 'ok' | 'error' | 'denied' | 'cancelled';
  /** Hex sha256 of the arguments' canonical JSON; the arguments themselves are never logged. */
  argumentsDigest?: string;
}

/**
 * A record, or the function that makes it when its batch is written (what it reads must not
 * change meanwhile). It waits at most BATCH_WINDOW_MS, and never in the queue of a slow
 * destination: there records wait as text, so that what they were made from (a call's
 * arguments) is not held.
 */
export type AuditEntry = AuditRecord | (() => AuditRecord);

export interface AuditSinkOptions {
  destination: 'stdout' | { file: string };
  /** Records held while the stream drains; beyond this they are dropped. Default 10_000. */
  maxBufferedRecords?: number;
  /** A regular file whose synchronous write of a batch took longer than this is written through a stream from then on. Default SLOW_WRITE_MS. */
  slowWriteMs?: number;
}

export const DEFAULT_MAX_BUFFERED_RECORDS = 10_000;
/** How long a record may wait for the write of its batch: what a crash may lose. */
const BATCH_WINDOW_MS = 10;
/** A batch of this many records is written at once rather than at the end of its window. */
export const MAX_BATCH_RECORDS = 256;
/**
 * A synchronous write of a batch that took longer than this says the file system is slow
 * (a network mount, a saturated disk): the file is written through a stream from then on,
 * so that requests never wait for it.
 */
const SLOW_WRITE_MS = 20;

/**
 * Field names that smell of credentials, or of payloads that may carry them. Records
 * are built by the gateway from known fields, but an extra field slipped in later
 * (a spread of a request object, say) must not turn the audit log into a secret store.
 */
const SECRET_FIELD = /token|authorization|password|passwd|secret|cookie|api[-_]?key|credential|bearer|private[-_]?key|^arguments$|^args$/i;

export class AuditLog {
  /** A regular file, while it is written synchronously. */
  private fd: number | undefined;
  /** Anything else: stdout, a FIFO, a device, or a file found slow. */
  private stream: Writable | undefined;
  private readonly ownsStream: boolean;
  private readonly maxBuffered: number;
  private readonly slowWriteMs: number;
  private readonly onDrop: ((dropped: number) => void) | undefined;
  /** Lines waiting for the stream's 'drain'; bounded by maxBuffered. */
  private readonly queue: string[] = [];
  private waitingForDrain = false;
  /** Entries of this window, made into lines and written together when it ends (or at MAX_BATCH_RECORDS). */
  private batch: AuditEntry[] = [];
  private batchScheduled = false;
  /** Writes handed to the stream whose callback has not run yet. */
  private inFlight = 0;
  private droppedCount = 0;
  private broken = false;
  private closing: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(options: AuditSinkOptions, onDrop?: (dropped: number) => void) {
    const max = options.maxBufferedRecords ?? DEFAULT_MAX_BUFFERED_RECORDS;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxBufferedRecords must be a non-negative integer, got ${max}`);
    this.maxBuffered = max;
    this.slowWriteMs = options.slowWriteMs ?? SLOW_WRITE_MS;
    this.onDrop = onDrop;
    this.ownsStream = options.destination !== 'stdout';
    if (options.destination === 'stdout') this.attach(process.stdout);
    else if (isRegularFileOrAbsent(options.destination.file)) this.openFile(options.destination.file);
    // Opened by the stream, in libuv's pool: a FIFO's open waits for its reader.
    else this.attach(createWriteStream(options.destination.file, { flags: 'a', mode: 0o600 }));
  }

  /** Total records dropped so far (buffer full, stream failed, or written after close). */
  get dropped(): number {
    return this.droppedCount;
  }

  write(entry: AuditEntry): void {
    if (this.broken || this.closing) return this.drop(1);
    if (this.waitingForDrain) {
      if (this.queue.length >= this.maxBuffered) return this.drop(1);
      const line = this.line(entry);
      if (line !== undefined) this.queue.push(line);
      return;
    }
    this.batch.push(entry);
    if (this.batch.length >= MAX_BATCH_RECORDS) return this.sendBatch();
    if (!this.batchScheduled) {
      this.batchScheduled = true;
      setTimeout(this.sendBatch, BATCH_WINDOW_MS);
    }
  }

  /** Resolves once every accepted record has been handed to the OS (or lost to a stream error). */
  flush(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flushes, then closes the file. stdout is flushed but left open: it is not ours. */
  close(): Promise<void> {
    this.closing ??= this.flush().then(() => this.endStream());
    return this.closing;
  }

  private readonly sendBatch = (): void => {
    this.batchScheduled = false;
    const entries = this.batch;
    if (entries.length === 0) return;
    this.batch = [];
    let text = '';
    let lines = 0;
    for (const entry of entries) {
      const line = this.line(entry);
      if (line === undefined) continue;
      text += line;
      lines++;
    }
    if (lines > 0) this.send(text, lines);
  };

  /** The entry's JSON line; undefined (and counted as dropped) when it has none. */
  private line(entry: AuditEntry): string | undefined {
    try {
      return serialize(typeof entry === 'function' ? entry() : entry) + '\n';
    } catch {
      // Cyclic or BigInt extras, a maker that failed: losing the record beats failing the others.
      this.drop(1);
      return undefined;
    }
  }

  private attach(stream: Writable): void {
    this.stream = stream;
    stream.on('drain', this.onDrain);
    // A write error (disk full, closed pipe) must not crash the gateway: the sink
    // goes quiet and everything from then on is counted as dropped.
    stream.on('error', this.onError);
  }

  private openFile(file: string): void {
    try {
      this.fd = openSync(file, 'a', 0o600);
    } catch {
      // A missing directory, no permission: as a stream's failed open, every record is dropped and counted.
      this.broken = true;
    }
  }

  /** Writes `lines` records at once; they are counted as dropped if the write fails. */
  private send(text: string, lines: number): void {
    if (this.fd !== undefined) return this.writeFile(this.fd, text, lines);
    const stream = this.stream!;
    this.inFlight++;
    let accepted: boolean;
    try {
      accepted = stream.write(text, (error?: Error | null) => this.onWritten(error, lines));
    } catch {
      // write() after destroy can throw synchronously on some streams; the callback won't come.
      this.inFlight--;
      this.drop(lines);
      return;
    }
    if (!accepted) this.waitingForDrain = true;
  }

  private writeFile(fd: number, text: string, lines: number): void {
    const started = performance.now();
    try {
      writeFully(fd, text);
    } catch {
      this.drop(lines);
      return this.onError();
    }
    if (performance.now() - started > this.slowWriteMs) {
      this.fd = undefined;
      this.attach(createWriteStream('', { fd }));
    }
    this.notifyIfIdle();
  }

  private onWritten(error: Error | null | undefined, lines: number): void {
    this.inFlight--;
    if (error) this.drop(lines);
    this.notifyIfIdle();
  }

  private readonly onDrain = (): void => {
    this.waitingForDrain = false;
    if (this.queue.length > 0 && !this.broken) {
      const lines = this.queue.splice(0);
      this.send(lines.join(''), lines.length);
    }
    this.notifyIfIdle();
  };

  private readonly onError = (): void => {
    this.broken = true;
    this.waitingForDrain = false;
    this.drop(this.queue.length + this.batch.length);
    this.queue.length = 0;
    this.batch = [];
    this.notifyIfIdle();
  };

  private drop(count: number): void {
    if (count <= 0) return;
    this.droppedCount += count;
    try {
      this.onDrop?.(count);
    } catch {
      // A failing metrics hook must not surface in the request path.
    }
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.batch.length === 0 && (this.inFlight === 0 || this.broken);
  }

  private notifyIfIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private endStream(): Promise<void> {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    const stream = this.stream;
    if (!stream) return Promise.resolve();
    if (!this.ownsStream) {
      // process.stdout outlives us; leave it as we found it.
      stream.off('drain', this.onDrain);
      stream.off('error', this.onError);
      return Promise.resolve();
    }
    if (stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      stream.once('close', () => resolve());
      stream.end();
    });
  }
}

/** The fields of a record, and of its identity: a record with these alone, holding plain values, has nothing to strip. */
const RECORD_FIELDS: ReadonlySet<string> = new Set<keyof AuditRecord>([
  'time',
  'traceId',
  'session',
  'identity',
  'route',
  'backend',
  'method',
  'tool',
  'decision',
  'rule',
  'reason',
  'latencyMs',
  'outcome',
  'argumentsDigest',
]);
const IDENTITY_FIELDS: ReadonlySet<string> = new Set<keyof NonNullable<AuditRecord['identity']>>(['subject', 'method', 'issuer', 'spiffe', 'apiKey']);

/**
 * The record as one JSON line, minus anything that looks like a secret. Records the gateway
 * builds are checked field by field and written as they are: a replacer function makes
 * JSON.stringify call back into JavaScript for every key, which doubled the cost of a record.
 */
function serialize(record: AuditRecord): string {
  return onlyKnownFields(record) ? JSON.stringify(record) : stripSecrets(record);
}

function onlyKnownFields(record: AuditRecord): boolean {
  for (const key in record) {
    const value = record[key as keyof AuditRecord];
    if (!RECORD_FIELDS.has(key) || (key !== 'identity' && typeof value === 'object' && value !== null)) return false;
  }
  const identity = record.identity;
  if (identity === undefined) return true;
  for (const key in identity) {
    if (!IDENTITY_FIELDS.has(key) || typeof identity[key as keyof typeof identity] === 'object') return false;
  }
  return true;
}

function stripSecrets(record: AuditRecord): string {
  const identity = record.identity;
  return JSON.stringify(record, function (this: unknown, key: string, value: unknown) {
    if (key === '' || !SECRET_FIELD.test(key)) return value;
    // The one sanctioned exception: identity.apiKey is the key's name, not its value.
    if (this === identity && key === 'apiKey' && typeof value === 'string') return value;
    return undefined;
  });
}

/** Whether the path names a regular file, or nothing yet (the open creates one). */
function isRegularFileOrAbsent(file: string): boolean {
  try {
    return statSync(file, { throwIfNoEntry: false })?.isFile() ?? true;
  } catch {
    // Not even stat-able (a directory without search permission): the open fails and says so.
    return true;
  }
}

/** Writes all of the text; a short write (a full disk) goes on from where it stopped, or fails. */
function writeFully(fd: number, text: string): void {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
}

/** Hex sha256 of the canonical JSON of a tool call's arguments (absent arguments hash as `null`). */
export function argumentsDigest(args: unknown): string {
  return canonicalDigest(args ?? null);
}
