/**
 * A client for an external guardrail webhook that reviews tools/call results: the
 * gateway POSTs {backend, tool, argumentsDigest, result} and the service answers
 * 200 with {"action": "allow" | "block" | "redact", "result"?: ..., "reason"?: ...}.
 * Anything else (no answer in time, refused connection, other status, unparsable or
 * oversized body, unknown action, "redact" without a result object) is the service
 * being unavailable, which the caller's fail mode turns into pass or block.
 */
import { Pool } from '../../util/undici.ts';

export interface GuardrailOptions {
  url: URL;
  /** Whole exchange, connect to last body byte. */
  timeoutMs: number;
  /** Sent to the service: its own credentials, never the caller's. */
  headers?: Record<string, string>;
  /** Cap on the response body; a replacement result larger than this is an unavailable service. */
  maxResponseBytes: number;
}

export interface GuardrailRequest {
  backend: string;
  tool: string;
  argumentsDigest?: string;
  result: Record<string, unknown>;
}

export type GuardrailDecision =
  | { action: 'allow' }
  | { action: 'block'; reason: string }
  | { action: 'redact'; result: Record<string, unknown> }
  | { action: 'unavailable'; detail: string };

const MAX_REASON_CHARS = 200;

export class GuardrailClient {
  private readonly url: URL;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly maxResponseBytes: number;
  private readonly pool: Pool;

  constructor(options: GuardrailOptions) {
    if (options.url.protocol !== 'http:' && options.url.protocol !== 'https:') {
      throw new TypeError(`guardrail url must be http(s), got ${options.url.protocol}`);
    }
    if (!(options.timeoutMs > 0)) throw new RangeError(`guardrail timeoutMs must be positive, got ${options.timeoutMs}`);
    this.url = options.url;
    this.timeoutMs = options.timeoutMs;
    this.headers = { ...options.headers, 'content-type': 'application/json', accept: 'application/json' };
    this.maxResponseBytes = options.maxResponseBytes;
    // Keep-alive: the review sits on every call's path; a handshake per call would show.
    this.pool = new Pool(options.url.origin, { connections: 32, keepAliveTimeout: 30_000 });
  }

  /** Never throws: every failure is { action: 'unavailable' }. */
  async review(request: GuardrailRequest): Promise<GuardrailDecision> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await this.pool.request({
        origin: this.url.origin,
        path: this.url.pathname + this.url.search,
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(request),
        signal,
      });
      if (response.statusCode !== 200) {
        await response.body.dump({ limit: 4096 }).catch(() => undefined);
        return unavailable(`status ${response.statusCode}`);
      }
      const text = await readCapped(response.body, this.maxResponseBytes);
      if (text === undefined) return unavailable(`response larger than ${this.maxResponseBytes} bytes`);
      return decision(text);
    } catch (error) {
      return unavailable(signal.aborted ? `no answer within ${this.timeoutMs}ms` : errorCode(error));
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function unavailable(detail: string): GuardrailDecision {
  return { action: 'unavailable', detail };
}

function decision(text: string): GuardrailDecision {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return unavailable('response is not JSON');
  }
  if (body === null || typeof body !== 'object') return unavailable('response is not a JSON object');
  const { action, result, reason } = body as Record<string, unknown>;
  switch (action) {
    case 'allow':
      return { action: 'allow' };
    case 'block':
      return { action: 'block', reason: blockReason(reason) };
    case 'redact':
      if (result === null || typeof result !== 'object' || Array.isArray(result)) return unavailable('redact without a result object');
      return { action: 'redact', result: result as Record<string, unknown> };
    default:
      return unavailable('response has no known action');
  }
}

/** Single-line and short: it reaches clients and logs. */
function blockReason(reason: unknown): string {
  if (typeof reason !== 'string') return 'blocked by guardrail';
  const line = reason.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
  if (line === '') return 'blocked by guardrail';
  return line.length > MAX_REASON_CHARS ? line.slice(0, MAX_REASON_CHARS) : line;
}

/** The body as text, or undefined past `limit` bytes (leaving the loop discards the connection). */
async function readCapped(body: AsyncIterable<Buffer>, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** The error's code (ECONNREFUSED, UND_ERR_SOCKET, ...), not its message, which names the service's address. */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'unknown error';
}
