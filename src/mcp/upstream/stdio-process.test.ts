import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  STDERR_MAX_LINE_BYTES,
  StdioProcess,
  type StdioExitInfo,
  type StdioProcessOptions,
} from './stdio-process.ts';

// Real child processes throughout: each test spawns `node -e <script>` (CommonJS scripts).

interface LogRecord {
  level: number;
  msg: string;
  backend?: string;
  stream?: string;
  truncated?: boolean;
  [key: string]: unknown;
}

function memoryLogger(): { logger: pino.Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { logger, records };
}

const live: StdioProcess[] = [];

function makeProcess(script: string, overrides: Partial<StdioProcessOptions> = {}): StdioProcess {
  const p = new StdioProcess({
    name: 'test-backend',
    command: process.execPath,
    args: ['-e', script],
    maxLineBytes: 64 * 1024,
    restart: { initialDelayMs: 20, maxDelayMs: 100, maxRestarts: 0 },
    logger: memoryLogger().logger,
    ...overrides,
  });
  live.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(live.splice(0).map((p) => p.stop(200)));
});

function collectLines(p: StdioProcess): string[] {
  const lines: string[] = [];
  p.on('line', (line) => lines.push(line));
  return lines;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolves with the first event's arguments, or rejects after ms. */
async function nextEvent(p: StdioProcess, event: 'line' | 'spawn' | 'exit' | 'restart' | 'failed', ms = 3000): Promise<unknown[]> {
  return once(p, event, { signal: AbortSignal.timeout(ms) });
}

/**
 * A process is gone when kill(pid, 0) fails with ESRCH. An orphaned grandchild is reparented to
 * init; where init does not reap (some containers) it stays a zombie — dead, but still answering
 * kill(0) — so on Linux a zombie also counts as gone.
 */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  if (process.platform !== 'linux') return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

const KEEP_ALIVE = 'setInterval(() => {}, 1000);';

describe('StdioProcess', () => {
  describe('1. line round trip', () => {
    it('echoes lines sent to stdin back as line events', async () => {
      const p = makeProcess('process.stdin.pipe(process.stdout);');
      const lines = collectLines(p);
      expect(p.send('too early')).toBe(false);
      expect(p.running).toBe(false);

      p.start();
      const [pid] = await nextEvent(p, 'spawn');
      expect(pid).toBe(p.pid);
      expect(p.running).toBe(true);
      expect(p.send('{"jsonrpc":"2.0","id":1}')).toBe(true);
      expect(p.send('second line ✓')).toBe(true);
      await waitUntil(() => lines.length === 2, 'two echoed lines');
      expect(lines).toEqual(['{"jsonrpc":"2.0","id":1}', 'second line ✓']);

      expect(() => p.send('two\nlines')).toThrow(TypeError);
      await p.stop();
      expect(p.running).toBe(false);
      expect(p.pid).toBeUndefined();
      expect(p.send('too late')).toBe(false);
    });

    it('reassembles lines and multibyte UTF-8 split across chunks, tolerates CRLF, skips empty lines', async () => {
      const script = String.raw`
        const text = Buffer.from('héllo €uro 😀 done\n', 'utf8');
        const euro = text.indexOf(Buffer.from('€')) + 1;   // inside the 3-byte sequence
        const emoji = text.indexOf(Buffer.from('😀')) + 2; // inside the 4-byte sequence
        const parts = [
          Buffer.from('{"a":'),
          Buffer.from('1}\n{"b"'),
          Buffer.from(':2}\r\n\n\r\n'),
          text.subarray(0, euro),
          text.subarray(euro, emoji),
          text.subarray(emoji),
        ];
        (async () => {
          for (const part of parts) {
            await new Promise((resolve) => process.stdout.write(part, resolve));
            await new Promise((resolve) => setTimeout(resolve, 25));
          }
        })();
        ${KEEP_ALIVE}
      `;
      const p = makeProcess(script);
      const lines = collectLines(p);
      p.start();
      await waitUntil(() => lines.length === 3, 'three lines');
      expect(lines).toEqual(['{"a":1}', '{"b":2}', 'héllo €uro 😀 done']);
    });
  });

  it('2. drops an over-long line (bounded) and still delivers the next line', async () => {
    const { logger, records } = memoryLogger();
    const script = String.raw`
      process.stdout.write('x'.repeat(300000) + '\n'); // spans several pipe chunks
      process.stdout.write('y'.repeat(100) + '\r\n');  // exactly maxLineBytes: kept
      process.stdout.write('z'.repeat(101) + '\n');    // one byte over: dropped
      process.stdout.write('next\n');
      ${KEEP_ALIVE}
    `;
    const p = makeProcess(script, { maxLineBytes: 100, logger });
    const lines = collectLines(p);
    p.start();
    await waitUntil(() => lines.includes('next'), 'the line after the over-long ones');
    expect(lines).toEqual(['y'.repeat(100), 'next']);
    const warnings = records.filter((r) => r.level === 40 && r.stream === 'stdout');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ backend: 'test-backend', maxLineBytes: 100 });
  });

  it('3. forwards stderr to the logger line by line, truncating long lines', async () => {
    const { logger, records } = memoryLogger();
    const script = String.raw`
      process.stderr.write('hello from stderr\r\n' + 'e'.repeat(20000) + '\nafter the long one\n');
      ${KEEP_ALIVE}
    `;
    const p = makeProcess(script, { name: 'stderr-backend', logger });
    p.start();
    const stderrRecords = (): LogRecord[] => records.filter((r) => r.stream === 'stderr');
    await waitUntil(() => stderrRecords().length === 3, 'three stderr records');
    const [first, long, last] = stderrRecords();
    expect(first).toMatchObject({ level: 30, backend: 'stderr-backend', stream: 'stderr', msg: 'hello from stderr' });
    expect(long).toMatchObject({ level: 30, backend: 'stderr-backend', truncated: true });
    expect(long!.msg).toBe('e'.repeat(STDERR_MAX_LINE_BYTES));
    expect(last).toMatchObject({ level: 30, msg: 'after the long one' });
  });

  describe('4. restart', () => {
    it('respawns a crashed child after a backoff and emits restart', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'stdio-process-'));
      try {
        // Crashes on the first run only (a marker file remembers), then echoes.
        const script = String.raw`
          const fs = require('node:fs');
          const marker = process.argv[1];
          if (!fs.existsSync(marker)) { fs.writeFileSync(marker, ''); process.exit(3); }
          process.stdin.pipe(process.stdout);
        `;
        const p = makeProcess(script, {
          args: ['-e', script, join(dir, 'crashed-once')],
          restart: { initialDelayMs: 30, maxDelayMs: 100, maxRestarts: 2 },
        });
        const exits: StdioExitInfo[] = [];
        p.on('exit', (info) => exits.push(info));
        const restarted = nextEvent(p, 'restart');
        p.start();
        const [attempt] = await restarted;
        expect(attempt).toBe(1);
        expect(exits).toEqual([{ code: 3, signal: null, willRestart: true }]);
        expect(p.running).toBe(true);

        const lines = collectLines(p);
        expect(p.send('after restart')).toBe(true);
        await waitUntil(() => lines.length === 1, 'echo from the respawned child');
        expect(lines).toEqual(['after restart']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('backs off exponentially and emits failed after maxRestarts consecutive crashes', async () => {
      const p = makeProcess('process.exit(1);', {
        restart: { initialDelayMs: 40, maxDelayMs: 120, maxRestarts: 3 },
      });
      const events: { event: string; at: number; value: unknown }[] = [];
      for (const event of ['spawn', 'exit', 'restart', 'failed'] as const) {
        p.on(event, (value: unknown) => events.push({ event, at: Date.now(), value }));
      }
      const failed = nextEvent(p, 'failed', 4000);
      p.start();
      const [error] = await failed;
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/4 time\(s\) in a row/);

      const of = (name: string): unknown[] => events.filter((e) => e.event === name).map((e) => e.value);
      expect(of('spawn')).toHaveLength(4);
      expect(of('restart')).toEqual([1, 2, 3]);
      expect(of('exit').map((info) => (info as StdioExitInfo).willRestart)).toEqual([true, true, true, false]);
      expect(of('failed')).toHaveLength(1);

      // Delay between an exit and the next spawn: 40, 80, then 160 capped to 120 ms, minus ≤ 20 % jitter.
      const exitTimes = events.filter((e) => e.event === 'exit').map((e) => e.at);
      const spawnTimes = events.filter((e) => e.event === 'spawn').map((e) => e.at);
      const gaps = [0, 1, 2].map((i) => spawnTimes[i + 1]! - exitTimes[i]!);
      [40, 80, 120].forEach((nominal, i) => expect(gaps[i]).toBeGreaterThanOrEqual(nominal * 0.8 - 2));

      // Failed is terminal.
      await sleep(150);
      expect(of('spawn')).toHaveLength(4);
      expect(p.running).toBe(false);
    });
  });

  describe('5-6. stop', () => {
    it('5. kills the whole process tree', async () => {
      const script = String.raw`
        const { spawn } = require('node:child_process');
        const grandchild = spawn('sleep', ['30'], { stdio: 'ignore' });
        console.log(String(grandchild.pid));
        ${KEEP_ALIVE}
      `;
      const p = makeProcess(script, { restart: { initialDelayMs: 10, maxDelayMs: 10, maxRestarts: 5 } });
      const exits: StdioExitInfo[] = [];
      p.on('exit', (info) => exits.push(info));
      p.on('restart', () => exits.push({ code: null, signal: null, willRestart: true }));
      p.start();
      const [line] = await nextEvent(p, 'line');
      const grandchildPid = Number(line);
      const childPid = p.pid!;
      expect(grandchildPid).toBeGreaterThan(0);
      expect(isGone(childPid)).toBe(false);
      expect(isGone(grandchildPid)).toBe(false);

      const started = Date.now();
      await p.stop(2000);
      expect(Date.now() - started).toBeLessThan(1500); // both obey SIGTERM: no need to wait for the grace period
      expect(isGone(childPid)).toBe(true);
      expect(isGone(grandchildPid)).toBe(true);
      expect(exits).toEqual([{ code: null, signal: 'SIGTERM', willRestart: false }]);

      await sleep(50);
      expect(exits).toHaveLength(1); // no restart after stop()
    });

    it('6. escalates to SIGKILL for a child that ignores SIGTERM; stop() is idempotent', async () => {
      const p = makeProcess(`process.on('SIGTERM', () => {}); console.log('ready'); ${KEEP_ALIVE}`);
      const exits: StdioExitInfo[] = [];
      p.on('exit', (info) => exits.push(info));
      p.start();
      await nextEvent(p, 'line'); // the SIGTERM handler is installed
      const childPid = p.pid!;

      const started = Date.now();
      const stopping = p.stop(300);
      expect(p.stop(5000)).toBe(stopping);
      await stopping;
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(2000);
      expect(exits).toEqual([{ code: null, signal: 'SIGKILL', willRestart: false }]);
      expect(isGone(childPid)).toBe(true);
      await p.stop(); // still fine afterwards
    });

    it('6b. SIGKILLs grandchildren that ignore SIGTERM after the child itself exited', async () => {
      const grandchildScript = `process.on('SIGTERM', () => {}); console.log('armed'); ${KEEP_ALIVE}`;
      const script = String.raw`
        const { spawn } = require('node:child_process');
        const grandchild = spawn(process.execPath, ['-e', ${JSON.stringify(grandchildScript)}], { stdio: ['ignore', 'pipe', 'ignore'] });
        // Report the pid once the grandchild's SIGTERM handler is installed.
        grandchild.stdout.once('data', () => console.log(String(grandchild.pid)));
        ${KEEP_ALIVE}
      `;
      const p = makeProcess(script);
      p.start();
      const [line] = await nextEvent(p, 'line');
      const grandchildPid = Number(line);
      expect(isGone(grandchildPid)).toBe(false);

      const started = Date.now();
      await p.stop(300);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(isGone(grandchildPid)).toBe(true);
    });

    it('drained() resolves once stdin is closed even if the child never reads', async () => {
      const p = makeProcess(`console.log('ready'); ${KEEP_ALIVE}`); // never reads stdin
      p.start();
      await nextEvent(p, 'line');
      await p.drained(); // no backpressure yet
      const accepted = p.send('x'.repeat(4 * 1024 * 1024));
      expect(accepted).toBe(false); // queued beyond the high-water mark ...
      expect(p.running).toBe(true); // ... but still running: backpressure, not an error
      let drained = false;
      const waiting = p.drained().then(() => (drained = true));
      await sleep(50);
      expect(drained).toBe(false);
      await p.stop(200);
      await waiting;
      expect(drained).toBe(true);
    });
  });

  it('7. does not leak the parent environment, but passes configured env', async () => {
    const saved = { secret: process.env.SWITCHBOARD_TEST_SECRET, nodeOptions: process.env.NODE_OPTIONS };
    process.env.SWITCHBOARD_TEST_SECRET = 'hunter2';
    process.env.NODE_OPTIONS = '--max-old-space-size=256';
    try {
      const script = String.raw`
        console.log(JSON.stringify({
          secret: process.env.SWITCHBOARD_TEST_SECRET ?? null,
          nodeOptions: process.env.NODE_OPTIONS ?? null,
          configured: process.env.SWITCHBOARD_CONFIGURED ?? null,
          hasPath: typeof process.env.PATH === 'string',
        }));
        ${KEEP_ALIVE}
      `;
      const p = makeProcess(script, { env: { SWITCHBOARD_CONFIGURED: 'yes' } });
      p.start();
      const [line] = await nextEvent(p, 'line');
      expect(JSON.parse(line as string)).toEqual({ secret: null, nodeOptions: null, configured: 'yes', hasPath: true });
    } finally {
      for (const [key, value] of [
        ['SWITCHBOARD_TEST_SECRET', saved.secret],
        ['NODE_OPTIONS', saved.nodeOptions],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('8. reports a missing command as failed without throwing', async () => {
    const p = makeProcess('', { command: '/nonexistent/switchboard-no-such-binary', args: [] });
    let spawned = false;
    p.on('spawn', () => (spawned = true));
    const failed = nextEvent(p, 'failed');
    expect(() => p.start()).not.toThrow();
    const [error] = await failed;
    expect(error).toBeInstanceOf(Error);
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(spawned).toBe(false);
    expect(p.running).toBe(false);
    expect(p.send('x')).toBe(false);
    await p.stop(); // harmless after failure
  });

  it('kills live children synchronously when the gateway process exits', async () => {
    // A miniature gateway on the pinned Node (it must load .ts) starts a child that ignores
    // SIGTERM, prints the child's pid, and exits without calling stop().
    const pinnedNode = fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url));
    const moduleUrl = new URL('./stdio-process.ts', import.meta.url).href;
    const loggerUrl = new URL('../../telemetry/logger.ts', import.meta.url).href;
    const childScript = `process.on('SIGTERM', () => {}); console.log(process.pid); ${KEEP_ALIVE}`;
    const gatewayScript = `
      const { StdioProcess } = await import(${JSON.stringify(moduleUrl)});
      const { silentLogger } = await import(${JSON.stringify(loggerUrl)});
      const p = new StdioProcess({
        name: 'exit-hook', command: process.execPath, args: ['-e', ${JSON.stringify(childScript)}],
        maxLineBytes: 1024, restart: { initialDelayMs: 10, maxDelayMs: 10, maxRestarts: 5 }, logger: silentLogger,
      });
      p.on('line', (line) => { process.stdout.write(line + '\\n'); process.exit(0); });
      p.start();
    `;
    const gateway = spawn(pinnedNode, ['--input-type=module', '-e', gatewayScript], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    gateway.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    gateway.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const [code] = await once(gateway, 'close', { signal: AbortSignal.timeout(4000) });
    expect({ code, err }).toEqual({ code: 0, err: '' });
    const childPid = Number(out.trim());
    expect(childPid).toBeGreaterThan(0);
    await waitUntil(() => isGone(childPid), 'the orphaned child to be killed', 1000);
  });
});
