import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createServer } from '../http/node-http.ts';

const MCP_PATH = '/mcp';

/** What the host needs of an SDK server (McpServer and the low-level Server both fit). */
export interface Connectable {
  connect(transport: Transport): Promise<void>;
  close(): Promise<void>;
}

export interface HostOptions<S extends { server: Connectable }> {
  host?: string;
  port?: number;
  /** A fresh server per session, with whatever the caller keeps beside it. */
  createSession(): S;
  enableJsonResponse?: boolean;
  maxBodyBytes?: number;
  /** A reason to refuse the request with 403 before anything else (DNS rebinding checks). */
  refuse?(req: IncomingMessage): string | undefined;
  /** Sees every POSTed body first; what it returns runs once a new session has its id. */
  onBody?(body: unknown, req: IncomingMessage, sessionId: string | undefined): ((sessionId: string) => void) | void;
}

export interface McpHttpHost<S> {
  readonly url: string;
  readonly port: number;
  /** Live sessions, by session id. */
  readonly sessions: ReadonlyMap<string, S>;
  close(): Promise<void>;
}

class BodyTooLarge extends Error {}

/**
 * Serves SDK MCP servers over streamable HTTP at /mcp, one server per session: the
 * session bookkeeping the demo server and the test fixtures share.
 */
export async function hostMcpServer<S extends { server: Connectable }>(options: HostOptions<S>): Promise<McpHttpHost<S>> {
  const host = options.host ?? '127.0.0.1';
  const sessions = new Map<string, { session: S; transport: StreamableHTTPServerTransport }>();
  const view = new Map<string, S>();
  let closing = false;

  async function openSession(req: IncomingMessage, res: ServerResponse, body: unknown, onId: ((id: string) => void) | void): Promise<void> {
    const session = options.createSession();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: options.enableJsonResponse ?? false,
      // Registered only once the id exists; a failed initialize leaves nothing behind.
      onsessioninitialized: (id) => {
        sessions.set(id, { session, transport });
        view.set(id, session);
        onId?.(id);
      },
    });
    // Fires on DELETE, on server.close() and on close(): the one place sessions leave the maps.
    transport.onclose = () => {
      if (!transport.sessionId) return;
      sessions.delete(transport.sessionId);
      view.delete(transport.sessionId);
    };
    await session.server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (pathname !== MCP_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
      return;
    }
    const refusal = options.refuse?.(req);
    if (refusal) return sendJsonRpcError(res, 403, -32000, `Forbidden: ${refusal}`);
    if (closing) return sendJsonRpcError(res, 503, -32000, 'Server is shutting down');
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      return sendJsonRpcError(res, 405, -32000, 'Method not allowed', { allow: 'GET, POST, DELETE' });
    }
    const header = req.headers['mcp-session-id'];
    const sessionId = typeof header === 'string' ? header : undefined;
    let body: unknown;
    let onId: ((id: string) => void) | void = undefined;
    if (req.method === 'POST') {
      try {
        body = await readJson(req, options.maxBodyBytes ?? 4 * 1024 * 1024);
      } catch (error) {
        if (error instanceof BodyTooLarge) return sendJsonRpcError(res, 413, -32000, 'Request body too large');
        return sendJsonRpcError(res, 400, -32700, 'Parse error: invalid JSON');
      }
      onId = options.onBody?.(body, req, sessionId);
    }
    if (sessionId !== undefined) {
      const found = sessions.get(sessionId);
      if (!found) return sendJsonRpcError(res, 404, -32001, 'Session not found');
      await found.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method === 'POST' && isInitializeRequest(body)) return openSession(req, res, body, onId);
    sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
  }

  const httpServer = createServer((req, res) => {
    handle(req, res).catch(() => sendJsonRpcError(res, 500, -32603, 'Internal error'));
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}${MCP_PATH}`,
    port,
    sessions: view,
    close() {
      closed ??= (async () => {
        closing = true;
        await Promise.allSettled([...sessions.values()].map((s) => s.session.server.close()));
        sessions.clear();
        view.clear();
        await new Promise<void>((resolve) => {
          httpServer.close(() => resolve());
          // Open SSE streams and keep-alive sockets would otherwise hold close() forever.
          httpServer.closeAllConnections();
        });
      })();
      return closed;
    },
  };
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function sendJsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
