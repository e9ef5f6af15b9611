/**
 * One child process speaking newline-delimited messages over stdin/stdout, and its lifecycle.
 *
 * This module knows nothing about JSON-RPC: it frames stdout into lines, writes lines to stdin,
 * forwards stderr to the log, restarts the child with exponential backoff when it dies
 * unexpectedly, and kills the child's whole process group on stop() or when the gateway exits.
 *
 * POSIX only: process-group signalling (`process.kill(-pgid, sig)`) has no Windows equivalent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Logger } from '../../telemetry/logger.ts';

export interface StdioProcessOptions {
  /** Backend name, used in logs and error messages. */
  name: string;
  command: string;
  args: string[];
  /** Extra environment for the child, on top of the small inherited safe set (see buildChildEnv). */
  env?: Record<string, string>;
  cwd?: string;
  /** Longest stdout line (bytes, excluding the line terminator) accepted; longer lines are dropped. */
  maxLineBytes: number;
  restart: {
    /** Delay before the first restart; doubles on each consecutive failure. */
    initialDelayMs: number;
    /** Ceiling for the backoff delay. */
    maxDelayMs: number;
    /** Consecutive unexpected exits tolerated before giving up with `failed`. 0 = never restart. */
    maxRestarts: number;
  };
  logger: Logger;
}

export interface StdioExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether a restart has been scheduled for this exit. */
  willRestart: boolean;
}

export interface StdioProcessEvents {
  /** One complete stdout line, without its terminator. Empty lines are skipped. */
  line: [line: string];
  /** A child process was started (initially and on every restart). */
  spawn: [pid: number];
  /** The child exited (for any reason, including stop()). */
  exit: [info: StdioExitInfo];
  /** The child was respawned after an unexpected exit; the owner must re-initialize its session. */
  restart: [attempt: number];
  /** Terminal: gave up after maxRestarts consecutive failures, or the command could not be spawned. */
  failed: [error: Error];
}

/** A child that stayed up at least this long is considered healthy: its exit resets the failure count. */
export const STABLE_UPTIME_MS = 10_000;
/** Longest stderr line forwarded to the log; the rest of the line is cut off. */
export const STDERR_MAX_LINE_BYTES = 8 * 1024;
/** Backoff delays are randomly shortened by up to this fraction so restarts of many backends spread out. */
const BACKOFF_JITTER = 0.2;
/** After the child exits, how long to wait for its stdout/stderr to close before abandoning them. */
const STDIO_CLOSE_WAIT_MS = 500;
/** Poll interval while waiting for the rest of a process group to go away during stop(). */
const GROUP_POLL_MS = 50;
/** After SIGKILL, how long stop() waits for the group to disappear (a process in uninterruptible I/O may linger). */
const SIGKILL_WAIT_MS = 1000;

/**
 * Environment variables inherited from the gateway. Everything else is withheld on purpose: the
 * gateway's environment holds its own secrets (IdP client secrets, signing keys, upstream tokens,
 * cloud credentials) and a tool server — often third-party code — must only see what its config
 * grants it explicitly. NODE_OPTIONS is withheld too: it would inject the gateway's flags (e.g.
 * `--require` hooks, inspector) into every Node-based tool server.
 */
const INHERITED_ENV_KEYS: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TERM',
  'TMPDIR',
  'TZ',
];

function buildChildEnv(configured: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of INHERITED_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  // Configured values win, including over the inherited ones (an explicit PATH, say).
  return { ...env, ...configured };
}

// ---------------------------------------------------------------------------------------------
// Registry of live process groups, killed synchronously when the gateway exits.

/** Process-group ids (= leader pids) that may still have live members. Only live groups are kept. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/**
 * SIGKILL every process group this module has started and not yet seen die. Synchronous, so it
 * is safe in `process.on('exit')`, where it is installed automatically on the first start().
 * Note 'exit' does not run when the gateway dies from an unhandled signal: signal handlers for
 * SIGINT/SIGTERM should stop backends (or call this) before exiting. Children run in their own
 * sessions (detached), so a terminal's Ctrl-C does not reach them on its own.
 */
export function killAllStdioProcessesSync(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // ESRCH: already gone.
    }
  }
  liveGroups.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllStdioProcessesSync);
}

/** Signal a group we still consider live. Unregistered groups are never signalled (pid reuse). */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  if (!liveGroups.has(pgid)) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone. EPERM cannot happen for our own children.
  }
}

/**
 * Whether a process group still has a member that is not a zombie. Orphaned grandchildren are
 * reparented to init; when init does not reap (a container without an init process) they linger
 * as zombies, which still answer kill(0) but hold no resources; on Linux those are not counted.
 */
function groupHasLiveMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Line framing.

interface LineSplitterOptions {
  maxBytes: number;
  /** true: cut over-long lines to maxBytes and deliver them; false: drop them entirely. */
  truncate: boolean;
  onLine: (line: Buffer, truncated: boolean) => void;
  /** Called once per over-long line; `bytesSeen` is a lower bound of the line's length. */
  onOversize: (bytesSeen: number) => void;
}

/**
 * Splits a byte stream on '\n' (a preceding '\r' is stripped) with bounded memory. Splitting
 * happens on bytes, and a line is decoded only once complete, so multibyte UTF-8 sequences split
 * across chunks are reassembled correctly ('\n' never occurs inside a UTF-8 sequence).
 *
 * Memory is bounded by maxBytes + 1 buffered bytes (+ the chunk being scanned): once a line grows
 * beyond that, its bytes are discarded until the next newline.
 */
class LineSplitter {
  readonly #opts: LineSplitterOptions;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Inside an over-long line that was already reported: discard until the next newline. */
  #skipping = false;

  constructor(opts: LineSplitterOptions) {
    this.#opts = opts;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      if (!this.#skipping) this.#append(chunk.subarray(start, nl === -1 ? chunk.length : nl));
      if (nl === -1) return;
      start = nl + 1;
      if (this.#skipping) {
        this.#skipping = false;
        continue;
      }
      this.#complete(this.#take());
    }
  }

  /** End of stream. Returns the number of bytes of an unterminated last line, delivered if flush. */
  end(flush: boolean): number {
    const partial = this.#take();
    this.#skipping = false;
    if (flush) this.#complete(partial);
    return partial.length;
  }

  #append(segment: Buffer): void {
    if (segment.length === 0) return;
    const total = this.#pendingBytes + segment.length;
    // One spare byte for the '\r' of a CRLF terminator, which is not part of the line.
    if (total <= this.#opts.maxBytes + 1) {
      this.#pending.push(segment);
      this.#pendingBytes = total;
      return;
    }
    this.#skipping = true;
    this.#opts.onOversize(total);
    if (this.#opts.truncate) {
      this.#pending.push(segment.subarray(0, Math.max(0, this.#opts.maxBytes - this.#pendingBytes)));
      this.#opts.onLine(this.#take().subarray(0, this.#opts.maxBytes), true);
    } else {
      this.#take();
    }
  }

  #complete(line: Buffer): void {
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    if (line.length === 0) return;
    if (line.length > this.#opts.maxBytes) {
      this.#opts.onOversize(line.length);
      if (this.#opts.truncate) this.#opts.onLine(line.subarray(0, this.#opts.maxBytes), true);
      return;
    }
    this.#opts.onLine(line, false);
  }

  #take(): Buffer {
    const pending = this.#pending;
    const line = pending.length === 1 ? pending[0]! : Buffer.concat(pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    return line;
  }
}

// ---------------------------------------------------------------------------------------------
// The process.

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One spawned child: the process is respawned as a new Generation. */
interface Generation {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdin: Writable;
  readonly startedAt: number;
  /** The child has exited (it may still be flushing stdout). */
  exited: boolean;
  /** Stdio abandoned and the exit handled: nothing more is emitted for this generation. */
  finished: boolean;
  readonly exit: Promise<ExitStatus>;
  /** Resolves when the child's stdio has closed. */
  readonly closed: Promise<void>;
  /** Resolves when the exit has been fully handled (event emitted, restart scheduled or not). */
  readonly done: Promise<void>;
  markDone: () => void;
}

type State = 'idle' | 'running' | 'backoff' | 'stopped' | 'failed';

/**
 * Owns one child process. Lifecycle: start() once; the child is respawned after unexpected exits
 * (`restart`) until stop() or until it fails too often (`failed`, terminal). A stopped or failed
 * instance cannot be started again: create a new one.
 *
 * Listener exceptions are caught and logged so a faulty listener cannot break the lifecycle.
 */
export class StdioProcess extends EventEmitter<StdioProcessEvents> {
  readonly name: string;
  readonly #opts: StdioProcessOptions;
  readonly #log: Logger;
  #state: State = 'idle';
  #gen: Generation | undefined;
  #consecutiveFailures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  #stopPromise: Promise<void> | undefined;

  constructor(options: StdioProcessOptions) {
    super();
    const { maxLineBytes, restart } = options;
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
    if (!(restart.initialDelayMs >= 0) || !(restart.maxDelayMs >= 0)) {
      throw new RangeError('restart delays must be non-negative');
    }
    if (!Number.isSafeInteger(restart.maxRestarts) || restart.maxRestarts < 0) {
      throw new RangeError(`restart.maxRestarts must be a non-negative integer, got ${restart.maxRestarts}`);
    }
    this.name = options.name;
    this.#opts = options;
    this.#log = options.logger.child({ backend: options.name });
  }

  /** Pid of the current child (= its process-group id), while one is alive. */
  get pid(): number | undefined {
    const gen = this.#gen;
    return gen && !gen.exited ? gen.pid : undefined;
  }

  /** Whether a child is alive and accepting input (false once stop() has begun). */
  get running(): boolean {
    const gen = this.#gen;
    return gen !== undefined && !gen.exited && !this.#stopping && gen.stdin.writable;
  }

  /** Spawn the child. Never throws for spawn failures: those are reported as `failed`. */
  start(): void {
    if (this.#state !== 'idle') throw new Error(`stdio backend ${this.name}: start() may only be called once`);
    installExitHook();
    this.#spawn(0);
  }

  /**
   * Write `line + '\n'` to the child's stdin. `line` must not contain '\n' (JSON.stringify output
   * never does). The return value follows `Writable.write()`, with one addition:
   *  - true: written or buffered below the high-water mark; keep sending.
   *  - false and `running` is now false: the process is not running (or its stdin is closed);
   *    the line was NOT delivered. Callers should turn this into an error.
   *  - false and `running` is still true: the line was queued, but stdin's buffer is full;
   *    `await drained()` before sending more to respect backpressure.
   * Check `running` synchronously right after the call so the two cases cannot be confused.
   */
  send(line: string): boolean {
    if (line.includes('\n')) throw new TypeError('a line sent to a stdio backend must not contain "\\n"');
    const gen = this.#gen;
    if (!gen || !this.running) return false;
    return gen.stdin.write(line + '\n');
  }

  /**
   * Resolves when stdin can take more data: immediately if there is no backpressure, otherwise on
   * 'drain' — or when stdin closes (the child exited or is being stopped), so it never hangs;
   * check `running` afterwards.
   */
  drained(): Promise<void> {
    const stdin = this.#gen?.stdin;
    if (!stdin || !stdin.writableNeedDrain || stdin.destroyed || !stdin.writable) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        stdin.off('drain', done);
        stdin.off('close', done);
        resolve();
      };
      stdin.on('drain', done);
      stdin.on('close', done);
    });
  }

  /**
   * Stop for good: cancel any pending restart, close stdin, SIGTERM the child's process group,
   * and SIGKILL the group if the child — or anything else in its group — is still alive after
   * graceMs. Resolves once the child has exited and its `exit` event was emitted. Idempotent:
   * later calls return the same promise.
   */
  stop(graceMs = 2000): Promise<void> {
    if (this.#stopPromise) return this.#stopPromise;
    this.#stopping = true;
    if (this.#restartTimer) {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
    }
    const gen = this.#gen;
    // Clamp: setTimeout treats NaN, Infinity and values above 2^31-1 as 1 ms.
    const grace = Number.isFinite(graceMs) ? Math.min(Math.max(0, graceMs), 2 ** 31 - 1) : 2 ** 31 - 1;
    this.#stopPromise = gen ? this.#terminate(gen, grace) : Promise.resolve();
    if (this.#state !== 'failed') this.#state = 'stopped';
    return this.#stopPromise;
  }

  async #terminate(gen: Generation, graceMs: number): Promise<void> {
    try {
      gen.stdin.end();
    } catch {
      // already destroyed
    }
    if (!gen.exited) signalGroup(gen.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    await withTimeout(gen.exit, graceMs);
    // The leader is gone: give the rest of its group (grandchildren) the remaining grace period.
    while (gen.exited && liveGroups.has(gen.pid) && Date.now() < deadline && groupHasLiveMembers(gen.pid)) {
      await sleep(Math.min(GROUP_POLL_MS, Math.max(1, deadline - Date.now())));
    }
    if (!gen.exited || (liveGroups.has(gen.pid) && groupHasLiveMembers(gen.pid))) {
      this.#log.warn({ pid: gen.pid, graceMs }, 'stdio backend did not exit after SIGTERM; sending SIGKILL');
      signalGroup(gen.pid, 'SIGKILL');
      // SIGKILL is delivered asynchronously: wait (bounded) until the group is really gone.
      const killDeadline = Date.now() + SIGKILL_WAIT_MS;
      while (liveGroups.has(gen.pid) && Date.now() < killDeadline && groupHasLiveMembers(gen.pid)) {
        await sleep(10);
      }
    }
    await gen.done;
    liveGroups.delete(gen.pid);
  }

  #spawn(attempt: number): void {
    const { command, args, cwd } = this.#opts;
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd,
        env: buildChildEnv(this.#opts.env),
        // Own session and process group (pgid = pid), so the whole tree can be signalled at once.
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
    } catch (err) {
      // Synchronous spawn errors (invalid arguments, ...): report asynchronously, like the others.
      process.nextTick(() => this.#fail(spawnError(this.name, command, err)));
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      // ENOENT, EACCES, bad cwd, ...: Node reports these through 'error' on the next tick.
      child.once('error', (err) => {
        destroyStdio(child);
        this.#fail(spawnError(this.name, command, err));
      });
      return;
    }

    liveGroups.add(pid);
    const gen = createGeneration(child, pid);
    this.#gen = gen;
    this.#state = 'running';

    const stdout = new LineSplitter({
      maxBytes: this.#opts.maxLineBytes,
      truncate: false,
      onLine: (line) => {
        if (!gen.finished) this.#emit('line', line.toString('utf8'));
      },
      onOversize: (bytesSeen) => {
        this.#log.warn(
          { stream: 'stdout', pid, maxLineBytes: this.#opts.maxLineBytes, bytesSeen },
          'discarding over-long stdout line from stdio backend',
        );
      },
    });
    const stderr = new LineSplitter({
      maxBytes: STDERR_MAX_LINE_BYTES,
      truncate: true,
      onLine: (line, truncated) => {
        const text = line.toString('utf8');
        if (truncated) this.#log.info({ stream: 'stderr', truncated: true }, text);
        else this.#log.info({ stream: 'stderr' }, text);
      },
      onOversize: () => {},
    });

    child.stdin!.on('error', (err) => {
      // EPIPE when the child has closed its stdin / exited; the exit path handles the rest.
      this.#log.debug({ err, pid }, 'stdio backend stdin error');
    });
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stdout!.on('end', () => {
      const dropped = stdout.end(false);
      if (dropped > 0) this.#log.warn({ stream: 'stdout', pid, bytes: dropped }, 'discarding unterminated last stdout line');
    });
    child.stdout!.on('error', (err) => this.#log.debug({ err, pid }, 'stdio backend stdout error'));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stderr!.on('end', () => stderr.end(true));
    child.stderr!.on('error', (err) => this.#log.debug({ err, pid }, 'stdio backend stderr error'));
    // After a successful spawn, 'error' only reports failed signals/writes; not a lifecycle event.
    child.on('error', (err) => this.#log.warn({ err, pid }, 'stdio backend process error'));
    child.once('spawn', () => {
      this.#log.info({ pid, command, attempt }, 'stdio backend started');
      this.#emit('spawn', pid);
      if (attempt > 0) this.#emit('restart', attempt);
    });

    void this.#supervise(gen);
  }

  async #supervise(gen: Generation): Promise<void> {
    const status = await gen.exit;
    if (!this.#stopping) {
      // Unexpected exit: whatever is left of the group (orphaned helpers) belongs to a dead server.
      signalGroup(gen.pid, 'SIGKILL');
      liveGroups.delete(gen.pid);
    }
    // Deliver stdout written just before the exit. A descendant outside the group could keep the
    // pipes open forever, so the wait is bounded.
    await withTimeout(gen.closed, STDIO_CLOSE_WAIT_MS);
    gen.finished = true;
    destroyStdio(gen.child);
    if (this.#gen === gen) this.#gen = undefined;

    const uptimeMs = Date.now() - gen.startedAt;
    if (this.#stopping) {
      this.#log.info({ pid: gen.pid, ...status }, 'stdio backend stopped');
      this.#emit('exit', { ...status, willRestart: false });
      gen.markDone();
      return;
    }

    if (uptimeMs >= STABLE_UPTIME_MS) this.#consecutiveFailures = 0;
    const { initialDelayMs, maxDelayMs, maxRestarts } = this.#opts.restart;
    const willRestart = this.#consecutiveFailures < maxRestarts;
    this.#log.warn({ pid: gen.pid, ...status, uptimeMs, willRestart }, 'stdio backend exited unexpectedly');
    this.#emit('exit', { ...status, willRestart });

    if (willRestart && !this.#stopping) {
      const attempt = ++this.#consecutiveFailures;
      const delayMs = backoffDelay(attempt, initialDelayMs, maxDelayMs);
      this.#state = 'backoff';
      this.#log.info({ attempt, delayMs }, 'restarting stdio backend');
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined;
        if (!this.#stopping) this.#spawn(attempt);
      }, delayMs);
    } else if (!willRestart) {
      this.#fail(
        new Error(
          `stdio backend ${this.name} exited ${this.#consecutiveFailures + 1} time(s) in a row ` +
            `(last: code ${status.code}, signal ${status.signal}); giving up`,
        ),
      );
    }
    gen.markDone();
  }

  #fail(error: Error): void {
    if (this.#stopping) {
      this.#log.debug({ err: error }, 'stdio backend failure after stop() ignored');
      return;
    }
    this.#state = 'failed';
    this.#log.error({ err: error }, 'stdio backend failed');
    this.#emit('failed', error);
  }

  #emit<K extends keyof StdioProcessEvents>(event: K, ...args: StdioProcessEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: StdioProcessEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#log.error({ err, event }, 'stdio backend event listener threw');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

function createGeneration(child: ChildProcess, pid: number): Generation {
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => (markDone = resolve));
  const gen: Generation = {
    child,
    pid,
    stdin: child.stdin!,
    startedAt: Date.now(),
    exited: false,
    finished: false,
    exit: new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        gen.exited = true;
        resolve({ code, signal });
      });
    }),
    closed: new Promise<void>((resolve) => child.once('close', () => resolve())),
    done,
    markDone,
  };
  return gen;
}

function destroyStdio(child: ChildProcess): void {
  child.stdin?.destroy();
  child.stdout?.destroy();
  child.stderr?.destroy();
}

function spawnError(name: string, command: string, cause: unknown): Error {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new Error(`cannot spawn stdio backend ${name} (${command}): ${message}`, { cause });
}

/** initialDelayMs · 2^(attempt-1), capped at maxDelayMs, shortened by up to BACKOFF_JITTER. */
function backoffDelay(attempt: number, initialDelayMs: number, maxDelayMs: number): number {
  const base = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
  return Math.round(base * (1 - BACKOFF_JITTER * Math.random()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait for `promise` at most `ms`; the timer is cleared either way. Resolves true on timeout. */
async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)));
  try {
    return await Promise.race([promise.then(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
