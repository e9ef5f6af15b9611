import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface RunningRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  stop(): Promise<void>;
}

const LOCK = join(tmpdir(), 'switchboard-redis-install.lock');
const INSTALL_LOG = join(tmpdir(), 'switchboard-redis-install.log');
const INSTALL_WAIT_MS = 10 * 60_000;

/**
 * A real redis-server on 127.0.0.1 and a free port, nothing persisted, answering PING.
 * Installs redis-server with apt-get when it is not on PATH (once, whichever test worker
 * gets the lock; the others wait), and throws with apt's output when that fails: a test
 * that needs Redis never passes without one. Give the hook that calls this a long timeout.
 */
export async function startRedisServer(): Promise<RunningRedis> {
  const binary = await ensureRedisServer();
  let lastError: unknown;
  // The port is free when picked but could be taken before redis binds it: pick again.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(binary, await freePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function launch(binary: string, port: number): Promise<RunningRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-redis-'));
  const child = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', ''],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8_000)));
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  const stop = async (): Promise<void> => {
    await kill(child, exited, () => running);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (!running) throw new Error(`redis-server exited before answering PING on port ${port}:\n${output}`);
      if (await ping(port)) break;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${port} within 15s:\n${output}`);
      await sleep(50);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}

async function kill(child: ChildProcess, exited: Promise<void>, running: () => boolean): Promise<void> {
  if (!running()) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port from a server bound to port 0'))));
    });
  });
}

/** True when a server on the port answers PING with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The redis-server binary, installed with apt-get by one worker when missing. */
async function ensureRedisServer(): Promise<string> {
  const deadline = Date.now() + INSTALL_WAIT_MS;
  for (;;) {
    const found = findOnPath('redis-server');
    if (found) return found;
    const lock = takeLock();
    if (lock !== undefined) {
      try {
        // Another worker may have finished installing between our look and the lock.
        const again = findOnPath('redis-server');
        if (again) return again;
        await install();
        const installed = findOnPath('redis-server');
        if (installed) return installed;
        throw new Error(`apt-get installed redis-server but it is not on PATH (${process.env.PATH}):\n${readLog()}`);
      } finally {
        closeSync(lock);
        rmSync(LOCK, { force: true });
      }
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for another process to install redis-server (lock ${LOCK}):\n${readLog()}`);
    await sleep(500);
    // The lock is gone and redis-server is still missing: the installer failed.
    if (!lockHeld() && !findOnPath('redis-server')) {
      const log = readLog();
      if (log.includes('FAILED')) throw new Error(`another test worker failed to install redis-server:\n${log}`);
    }
  }
}

/** The lock's file descriptor, or undefined when a live process holds it. A dead holder's lock is broken. */
function takeLock(): number | undefined {
  try {
    const fd = openSync(LOCK, 'wx');
    writeFileSync(fd, String(process.pid));
    return fd;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const holder = Number(readText(LOCK));
  if (Number.isInteger(holder) && holder > 0 && !alive(holder)) rmSync(LOCK, { force: true });
  return undefined;
}

function lockHeld(): boolean {
  try {
    statSync(LOCK);
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function install(): Promise<void> {
  writeFileSync(INSTALL_LOG, '');
  for (const args of [['update'], ['install', '-y', 'redis-server']]) {
    const { code, output } = await run('apt-get', args);
    writeFileSync(INSTALL_LOG, `${readLog()}$ apt-get ${args.join(' ')}\n${output}\n`);
    if (code !== 0) {
      writeFileSync(INSTALL_LOG, `${readLog()}FAILED: apt-get ${args.join(' ')} exited with ${code}\n`);
      throw new Error(`redis-server is not installed and apt-get ${args.join(' ')} failed (exit ${code}):\n${output}`);
    }
  }
}

function run(command: string, args: string[]): Promise<{ code: number | string; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', (error) => resolve({ code: (error as NodeJS.ErrnoException).code ?? 'error', output: `${output}${error.message}` }));
    child.once('close', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', output }));
  });
}

function readLog(): string {
  return readText(INSTALL_LOG);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
