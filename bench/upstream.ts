/**
 * The bench's upstream: an MCP server over streamable HTTP (stateful sessions, SDK defaults,
 * so replies to POST are SSE streams) with the tools of tools.ts: `echo {text}` returns the
 * text, `progress {steps}` sends that many progress notifications and then returns.
 *
 * With `--members N` the process instead runs N servers on N ports, the members of a
 * federation, each with its own TOOLS_PER_MEMBER tools (`m<i>_<verb>`): one process for all
 * of them, so ten upstreams do not need ten processes on a small machine. With
 * `--list-latency-ms` member i answers tools/list only after (i + 1) × that many
 * milliseconds, like servers that assemble their lists from a remote catalog: the members
 * then differ in speed, as the servers of a real federation do.
 *
 * Run: node bench/upstream.ts [--port 0] [--json-response] [--members N [--list-latency-ms MS]]
 * Prints `{"ready":true,"url":"http://127.0.0.1:PORT/mcp","urls":[…]}` on stdout once it
 * listens (`urls`: every member's endpoint). Under the bench runner it also answers
 * CPU/memory probes over IPC (see proc-stats.ts).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { announce, serveProcessStats } from './proc-stats.ts';
import { createEchoServer, createMemberServer } from './tools.ts';

const PATH = '/mcp';

function fail(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export async function startUpstream(
  options: { port?: number; jsonResponse?: boolean; createMcpServer?: () => McpServer; listLatencyMs?: number } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const createMcpServer = options.createMcpServer ?? createEchoServer;
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.url ?? '/').split('?')[0] !== PATH) return fail(res, 404, 'Not found');
    let body: unknown;
    if (req.method === 'POST') {
      try {
        body = await readJson(req);
      } catch {
        return fail(res, 400, 'Parse error');
      }
    }
    if (options.listLatencyMs && (body as { method?: unknown } | undefined)?.method === 'tools/list') await delay(options.listLatencyMs);
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const transport = sessions.get(sid);
      if (!transport) return fail(res, 404, 'Session not found');
      return transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) return fail(res, 400, 'Mcp-Session-Id header is required');
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: options.jsonResponse ?? false,
      onsessioninitialized: (id) => void sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await createMcpServer().connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      process.stderr.write(`[upstream] ${err instanceof Error ? err.message : String(err)}\n`);
      fail(res, 500, 'Internal error');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${PATH}`,
    async close() {
      await Promise.allSettled([...sessions.values()].map((t) => t.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'json-response': { type: 'boolean', default: false },
      members: { type: 'string' },
      'list-latency-ms': { type: 'string', default: '0' },
    },
  });
  const jsonResponse = values['json-response'];
  const listLatencyMs = Number(values['list-latency-ms']);
  const upstreams =
    values.members === undefined
      ? [await startUpstream({ port: Number(values.port), jsonResponse })]
      : await Promise.all(Array.from({ length: Number(values.members) }, (_, i) => startUpstream({ jsonResponse, createMcpServer: () => createMemberServer(i), listLatencyMs: (i + 1) * listLatencyMs })));
  const stop = async (): Promise<void> => {
    await Promise.allSettled(upstreams.map((u) => u.close()));
    process.exit(0);
  };
  serveProcessStats(() => void stop());
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  announce({ url: upstreams[0]!.url, urls: upstreams.map((u) => u.url) });
}
