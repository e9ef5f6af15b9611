/**
 * The parent side of the bench's child processes: spawn a bench script with an IPC channel,
 * read the JSON lines it prints, probe its CPU and memory, and make sure it dies with the bench.
 *
 * Every child is registered until it exits; `killAllChildren()` is called by the runner on
 * completion, on failure, on SIGINT/SIGTERM and (synchronously) on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpuSample, ProbeReply, ProbeRequest } from './proc-stats.ts';

const live = new Set<ChildProcess>();
/**
 * Processes our children started (a stdio server under the gateway or mcp-proxy), by pid,
 * with a string their command line contains: they are killed with the children, but only
 * while the pid still runs that command (a pid can be reused once its process is gone).
 */
const descendants = new Map<number, string>();

export function registerDescendant(pid: number, commandMarker: string): void {
  descendants.set(pid, commandMarker);
}

export interface ChildOptions {
  /** Extra Node flags, e.g. --cpu-prof. */
  execArgv?: string[];
  /** Environment variables on top of the runner's own. */
  env?: Record<string, string>;
  /** Label for error messages and the child's stderr. */
  label: string;
  /** A command Node runs under, with its arguments (e.g. valgrind): it must exec Node in its own process. */
  wrapper?: readonly string[];
}

export class Child {
  readonly label: string;
  private readonly proc: ChildProcess;
  private readonly lines: unknown[] = [];
  private readonly lineWaiters: Array<(line: unknown) => void> = [];
  private readonly replies = new Map<number, (sample: CpuSample) => void>();
  private readonly messageHandlers = new Set<(message: unknown) => void>();
  private nextProbeId = 1;
  private stderrTail = '';
  readonly exited: Promise<number | null>;

  constructor(script: string, args: string[], options: ChildOptions) {
    this.label = options.label;
    // An absolute path as it is: read as a URL, a '#' or '?' in it would cut it short.
    const path = isAbsolute(script) ? script : fileURLToPath(new URL(script, import.meta.url));
    const command = [...(options.wrapper ?? []), process.execPath, ...(options.execArgv ?? []), path, ...args];
    this.proc = spawn(command[0]!, command.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    live.add(this.proc);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        live.delete(this.proc);
        for (const waiter of this.lineWaiters.splice(0)) waiter(new ChildExited(this.label, code, signal, this.stderrTail));
        resolve(code);
      });
    });

    let buffered = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const parsed: unknown = JSON.parse(line);
        const waiter = this.lineWaiters.shift();
        if (waiter) waiter(parsed);
        else this.lines.push(parsed);
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
      process.stderr.write(chunk.replace(/^(?=.)/gm, `[${this.label}] `));
    });
    this.proc.on('message', (message: unknown) => {
      const reply = message as ProbeReply;
      if (reply?.type === 'cpu') {
        this.replies.get(reply.id)?.(reply.sample);
        this.replies.delete(reply.id);
        return;
      }
      for (const handler of this.messageHandlers) handler(message);
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** The next JSON line the child prints on stdout; rejects if it exits first or takes too long. */
  async nextLine(timeoutMs: number): Promise<Record<string, unknown>> {
    const queued = this.lines.shift();
    const line =
      queued !== undefined
        ? queued
        : await new Promise<unknown>((resolve, reject) => {
            if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
              reject(new ChildExited(this.label, this.proc.exitCode, this.proc.signalCode, this.stderrTail));
              return;
            }
            const timer = setTimeout(() => reject(new Error(`${this.label}: no output within ${timeoutMs} ms`)), timeoutMs);
            this.lineWaiters.push((value) => {
              clearTimeout(timer);
              resolve(value);
            });
          });
    if (line instanceof Error) throw line;
    return line as Record<string, unknown>;
  }

  /** Waits for the `{"ready":true,"url":…}` line and returns all of it. */
  async readyLine(timeoutMs = 15_000): Promise<Record<string, unknown> & { url: string }> {
    const line = await this.nextLine(timeoutMs);
    if (line.ready !== true || typeof line.url !== 'string') throw new Error(`${this.label}: unexpected first line ${JSON.stringify(line)}`);
    return line as Record<string, unknown> & { url: string };
  }

  /** Waits for the `{"ready":true,"url":…}` line. */
  async ready(timeoutMs = 15_000): Promise<string> {
    return (await this.readyLine(timeoutMs)).url;
  }

  /**
   * CPU time and memory of the child; `resetPeak` starts a new peak-RSS window after this
   * sample; `gc` forces a garbage collection first (the child needs --expose-gc).
   */
  cpu(resetPeak = false, gc = false): Promise<CpuSample> {
    return new Promise((resolve, reject) => {
      const id = this.nextProbeId++;
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(new Error(`${this.label}: no answer to a cpu probe`));
      }, gc ? 30_000 : 5_000);
      this.replies.set(id, (sample) => {
        clearTimeout(timer);
        resolve(sample);
      });
      const request: ProbeRequest = { type: 'cpu', id, resetPeak, gc };
      this.proc.send(request);
    });
  }

  /** RSS in bytes right after a forced garbage collection. */
  async memory(): Promise<number> {
    return (await this.cpu(false, true)).rss;
  }

  send(message: unknown): void {
    this.proc.send(message as object);
  }

  /** The next IPC message of the given type; rejects if the child exits first or takes too long. */
  waitMessage(type: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        reject(new ChildExited(this.label, this.proc.exitCode, this.proc.signalCode, this.stderrTail));
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.messageHandlers.delete(handler);
        this.proc.off('exit', onExit);
      };
      const handler = (message: unknown): void => {
        if ((message as { type?: unknown } | null)?.type !== type) return;
        done();
        resolve(message as Record<string, unknown>);
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        done();
        reject(new ChildExited(this.label, code, signal, this.stderrTail));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: no '${type}' message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.messageHandlers.add(handler);
      this.proc.once('exit', onExit);
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs` if the child is still there. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export class ChildExited extends Error {
  constructor(label: string, code: number | null, signal: NodeJS.Signals | null, stderr: string) {
    super(`${label} exited (${signal ?? `code ${code}`})${stderr ? `; stderr:\n${stderr}` : ''}`);
  }
}

/** SIGTERM to every child still alive, SIGKILL to those still there after `graceMs`. */
export async function stopAllChildren(graceMs: number): Promise<void> {
  const procs = [...live];
  for (const proc of procs) proc.kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (procs.some((p) => p.exitCode === null && p.signalCode === null) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  killAllChildren();
}

/** Kills every child still alive (and every registered descendant), without waiting: safe from an 'exit' handler. */
export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const proc of live) {
    try {
      proc.kill(signal);
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const [pid, marker] of descendants) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
  descendants.clear();
}
