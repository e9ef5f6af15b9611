import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { loadConfigObject } from '../src/config/load.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { Gateway } from '../src/gateway.ts';
import { silentLogger, type Logger } from '../src/telemetry/logger.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A Node that runs TypeScript: this one under `npm test`, else the pinned one. */
export const NODE = process.features.typescript ? process.execPath : `${ROOT}node_modules/.bin/node`;

export const STDIO_FIXTURE = `${ROOT}test/fixtures/stdio-fixture.ts`;

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  stop(): Promise<void>;
}

/** A gateway in this process on 127.0.0.1:0 with one route at /mcp, admin off. */
export async function startGateway(
  backends: ConfigInput['backends'],
  route: Partial<NonNullable<ConfigInput['listeners']>[number]['routes'][number]> = {},
  extra: Partial<ConfigInput> = {},
  logger: Logger = silentLogger,
): Promise<RunningGateway> {
  const ir = loadConfigObject(
    {
      listeners: [{ name: 'test', host: '127.0.0.1', port: 0, routes: [{ name: 'mcp', path: '/mcp', backends: (backends ?? []).map((b) => b.name), ...route }] }],
      backends,
      admin: { enabled: false },
      limits: { shutdownGrace: 500 },
      ...extra,
    },
    'test',
  );
  const gateway = new Gateway(ir, logger);
  await gateway.start();
  const port = gateway.addresses().get('test')!.port;
  return { gateway, url: `http://127.0.0.1:${port}/mcp`, stop: () => gateway.stop() };
}

export async function connectClient(url: string, capabilities: Record<string, unknown> = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'test-client', version: '1.0.0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

/** A raw JSON-RPC POST, for what the SDK client would never send. */
export async function post(url: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

/** Opens a session with raw HTTP; returns the session header value. */
export async function rawSession(url: string): Promise<string> {
  const res = await post(url, INITIALIZE);
  const sid = res.headers.get('mcp-session-id');
  if (res.status !== 200 || !sid) throw new Error(`initialize failed: ${res.status} ${res.text}`);
  await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
  return sid;
}

/** Runs the CLI as a child process and resolves once it printed its first MCP endpoint. */
export async function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(NODE, [`${ROOT}src/cli/main.ts`, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, ...(await untilEndpoint(child)) };
}

/** Resolves once a gateway process printed its first MCP endpoint; its output so far and from then on. */
export async function untilEndpoint(child: ChildProcess): Promise<{ url: string; output: () => string }> {
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CLI did not start:\n${output}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /MCP endpoint\s+(\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`CLI exited with ${code}:\n${output}`));
    });
  });
  return { url, output: () => output };
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Settles with the promise, or rejects when it has not settled in `ms` (a hang, not a slow run). */
export function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms}ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
