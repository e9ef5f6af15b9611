/**
 * The undici driver of the load generator, for operations autocannon cannot express: a
 * chain of requests (session churn), a streamed reply read event by event (SSE progress),
 * or a fixed number of operations (idle sessions). A fixed number of workers each run one
 * operation at a time over a keep-alive connection pool, until a deadline or a count.
 */
import { createParser } from 'eventsource-parser';
import { Pool, type Dispatcher } from 'undici';
import { ACCEPT, initializeRequest, PROTOCOL_VERSION } from './mcp-client.ts';
import { Failure, type Check, type Phase } from './load-phase.ts';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** HTTP to one MCP endpoint with a pool of keep-alive connections; every status is recorded in the phase. */
export class McpHttp {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly headers: Record<string, string>;

  constructor(url: string, headers: Record<string, string>, connections: number) {
    const u = new URL(url);
    this.pool = new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
    this.path = `${u.pathname}${u.search}`;
    this.headers = headers;
  }

  private async postRaw(phase: Phase, message: unknown, headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    const res = await this.pool.request({
      path: this.path,
      method: 'POST',
      headers: { ...this.headers, accept: ACCEPT, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(message),
    });
    phase.status(res.statusCode);
    return res;
  }

  async post(phase: Phase, message: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const res = await this.postRaw(phase, message, headers);
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  /** POSTs and hands each SSE event's data to `onEvent` as it arrives; returns the status and, for a JSON reply, the body. */
  async postStream(phase: Phase, message: unknown, headers: Record<string, string>, onEvent: (data: string) => void): Promise<Reply> {
    const res = await this.postRaw(phase, message, headers);
    if (!String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
    }
    const parser = createParser({ onEvent: (event) => onEvent(event.data) });
    res.body.setEncoding('utf8');
    for await (const chunk of res.body) parser.feed(chunk as string);
    return { status: res.statusCode, headers: res.headers, text: '' };
  }

  async delete(phase: Phase, headers: Record<string, string>): Promise<Reply> {
    const res = await this.pool.request({ path: this.path, method: 'DELETE', headers: { ...this.headers, ...headers } });
    phase.status(res.statusCode);
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** When a period of load ends: after `seconds`, after `count` operations, or whichever comes first. */
export type Until = { seconds: number; count?: number } | { seconds?: number; count: number };

/** An open session as the loop operations keep it: the headers its requests carry. */
export type SessionHeaders = Record<string, string>;

function expect(check: Check, reply: Reply, id: number): void {
  const failure = check(reply.status, reply.text, id);
  if (failure) throw new Failure(failure);
}

/** initialize, then notifications/initialized: the new session's headers. */
export async function openSessionOp(http: McpHttp, phase: Phase, id: number): Promise<SessionHeaders> {
  const init = await http.post(phase, initializeRequest(id));
  const versionCheck: Check = (status, body, replyId) => {
    if (status === 200 && body.includes(`"protocolVersion":"${PROTOCOL_VERSION}"`) && body.includes(`"id":${replyId}`)) return undefined;
    return { kind: status === 200 ? 'mismatch' : 'http', status, detail: `initialize: ${body.slice(0, 300)}` };
  };
  expect(versionCheck, init, id);
  const sid = init.headers['mcp-session-id'];
  if (typeof sid !== 'string') throw new Failure({ kind: 'mismatch', status: init.status, detail: 'initialize: no Mcp-Session-Id header' });
  const session = { 'mcp-session-id': sid, 'mcp-protocol-version': PROTOCOL_VERSION };
  const initialized = await http.post(phase, { jsonrpc: '2.0', method: 'notifications/initialized' }, session);
  if (initialized.status !== 202) throw new Failure({ kind: 'http', status: initialized.status, detail: `notifications/initialized: ${initialized.text.slice(0, 300)}` });
  return session;
}

export async function deleteSessionOp(http: McpHttp, phase: Phase, session: SessionHeaders): Promise<void> {
  const reply = await http.delete(phase, session);
  if (reply.status < 200 || reply.status > 299) throw new Failure({ kind: 'http', status: reply.status, detail: `DELETE: ${reply.text.slice(0, 300)}` });
}

/** One request, its reply checked. */
export async function requestOp(http: McpHttp, phase: Phase, session: SessionHeaders, message: unknown, id: number, check: Check): Promise<void> {
  expect(check, await http.post(phase, message, session), id);
}

/**
 * tools/call of a progress tool with a progress token: counts the progress notifications for
 * that token as they arrive, then checks the final result (`done <steps>`) and the count.
 */
export async function streamOp(http: McpHttp, phase: Phase, session: SessionHeaders, tool: string, steps: number, id: number, check: Check): Promise<number> {
  const token = `p${id}`;
  let events = 0;
  let final = '';
  const reply = await http.postStream(phase, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { steps }, _meta: { progressToken: token } } }, session, (data) => {
    if (data.includes('"notifications/progress"')) {
      if ((JSON.parse(data) as { params?: { progressToken?: unknown } }).params?.progressToken === token) events++;
    } else if (data.includes('"result"') || data.includes('"error"')) {
      final = data;
    }
  });
  phase.events += events;
  expect(check, { ...reply, text: reply.text || final }, id);
  if (events !== steps) throw new Failure({ kind: 'mismatch', status: reply.status, detail: `expected ${steps} progress notifications, got ${events}` });
  return events;
}

/**
 * Runs `op` on `concurrency` workers until `seconds` have passed (operations already started
 * finish) or `count` operations have started, whichever comes first. `op` resolves on success and throws a Failure
 * for a wrong answer; anything else it throws counts as a socket error.
 */
export async function driveLoop(
  concurrency: number,
  until: Until,
  phase: Phase,
  op: (seq: number) => Promise<unknown>,
): Promise<{ elapsedS: number; timeouts: number }> {
  const started = process.hrtime.bigint();
  const deadline = until.seconds !== undefined ? started + BigInt(Math.round(until.seconds * 1e9)) : undefined;
  const count = until.count ?? Infinity;
  let seq = 0;
  let timeouts = 0;
  const worker = async (): Promise<void> => {
    while (seq < count && (deadline === undefined || process.hrtime.bigint() < deadline)) {
      const id = ++seq;
      const t0 = process.hrtime.bigint();
      try {
        await op(id);
        phase.responses++;
        phase.succeeded(Number(process.hrtime.bigint() - t0) / 1000);
      } catch (err) {
        if (err instanceof Failure) {
          phase.responses++;
          phase.failed(err.info);
        } else {
          const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
          if (/timeout/i.test(message)) timeouts++;
          phase.failed({ kind: 'socket', detail: message.slice(0, 300) });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { elapsedS: Number(process.hrtime.bigint() - started) / 1e9, timeouts };
}
