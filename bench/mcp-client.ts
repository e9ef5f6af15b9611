/**
 * Just enough of an MCP client, over plain fetch, to open a session for the load generator,
 * check one call end to end, and close the session afterwards. `headers` (e.g. an
 * authorization header) go with every request of the session.
 */

export const PROTOCOL_VERSION = '2025-11-25';
export const ACCEPT = 'application/json, text/event-stream';

export interface McpSession {
  url: string;
  sessionId: string;
  protocolVersion: string;
  headers: Record<string, string>;
}

export interface RpcMessage {
  jsonrpc?: string;
  id?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string; data?: unknown };
}

/**
 * The JSON-RPC response in a reply body that is either plain JSON or an SSE stream: for SSE,
 * the last `data:` event that carries an id (progress and log notifications carry none).
 */
export function parseRpcBody(body: string): RpcMessage | undefined {
  const text = body.trimStart();
  if (text.startsWith('{')) return JSON.parse(text) as RpcMessage;
  let found: RpcMessage | undefined;
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    if (!data) continue;
    const message = JSON.parse(data) as RpcMessage;
    if ('id' in message && ('result' in message || 'error' in message)) found = message;
  }
  return found;
}

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { accept: ACCEPT, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function expectRpc(res: Response, what: string): Promise<RpcMessage> {
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  const message = parseRpcBody(text);
  if (!message) throw new Error(`${what}: no JSON-RPC response in ${JSON.stringify(text.slice(0, 500))}`);
  if (message.error) throw new Error(`${what}: JSON-RPC error ${JSON.stringify(message.error)}`);
  return message;
}

/** initialize, read Mcp-Session-Id, then notifications/initialized. */
export async function openSession(url: string, headers: Record<string, string> = {}): Promise<McpSession> {
  const res = await post(url, headers, initializeRequest(0));
  const sessionId = res.headers.get('mcp-session-id');
  const message = await expectRpc(res, 'initialize');
  if (!sessionId) throw new Error('initialize: no Mcp-Session-Id header in the reply');
  const protocolVersion = (message.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
  if (protocolVersion !== PROTOCOL_VERSION) throw new Error(`initialize: server negotiated ${String(protocolVersion)}, the bench speaks ${PROTOCOL_VERSION}`);
  const session: McpSession = { url, sessionId, protocolVersion, headers };
  const initialized = await post(url, sessionHeaders(session), { jsonrpc: '2.0', method: 'notifications/initialized' });
  await initialized.body?.cancel();
  if (initialized.status !== 202) throw new Error(`notifications/initialized: HTTP ${initialized.status}`);
  return session;
}

export function initializeRequest(id: number | string): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'switchboard-bench', version: '0.1.0' } },
  };
}

export function sessionHeaders(session: McpSession): Record<string, string> {
  return { ...session.headers, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion };
}

export async function closeSession(session: McpSession): Promise<void> {
  const res = await fetch(session.url, { method: 'DELETE', headers: sessionHeaders(session) });
  await res.body?.cancel();
}
