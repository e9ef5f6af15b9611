/**
 * A client for an external authorization service, after Envoy's ext_authz HTTP
 * filter: the gateway POSTs a description of the call, 200 means allow, anything
 * else means deny. The service is a security boundary, so by default every way it
 * can fail (down, slow, 5xx, nonsense) is a denial.
 */
import type { Dispatcher } from 'undici';
import { Pool } from '../util/undici.ts';
import { canonicalDigest } from '../util/canonical-json.ts';

export interface ExtAuthzOptions {
  /** The POST target. */
  url: URL;
  /** Whole-exchange budget, connect to last body byte. Default 1000. */
  timeoutMs: number;
  /** Default false: an unreachable, slow, 5xx or nonsensical authorizer denies. */
  failOpen: boolean;
  /** Cache the service's decisions for this long, keyed by the check body. Off unless set. */
  cacheTtlMs?: number;
  /** LRU bound for the decision cache. Default 10_000. */
  maxCacheEntries?: number;
  /** Sent to the authz service: its own credentials, not the caller's. */
  headers?: Record<string, string>;
  /** Lower-case names of headers the service may inject into the upstream request on allow. */
  allowedResponseHeaders?: string[];
}

export interface CheckRequest {
  method: string;
  path: string;
  /** The caller should already have removed credentials; they are dropped again here regardless. */
  headers: Record<string, string>;
  identity?: Record<string, unknown>;
  mcp?: { method: string; tool?: string; arguments?: unknown; resource?: string; prompt?: string };
}

export type CheckResult = { allowed: true; headers: Record<string, string> } | { allowed: false; status: number; reason: string };

export const DEFAULT_TIMEOUT_MS = 1000;
export const DEFAULT_MAX_CACHE_ENTRIES = 10_000;
const MAX_REASON_CHARS = 200;
/** Enough for any sensible reason; a chatty or hostile service can't make us buffer more. */
const MAX_BODY_BYTES = 4096;

/** The caller's credentials: never the authorizer's business, however it is configured. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization', 'mcp-session-id']);
/** Identity fields that may hold a credential (Identity.bearer keeps the raw token). */
const CREDENTIAL_IDENTITY_FIELD = /bearer|token|password|secret/i;

interface CacheEntry {
  result: CheckResult;
  expires: number;
}

export class ExtAuthzClient {
  private readonly url: URL;
  private readonly timeoutMs: number;
  private readonly failOpen: boolean;
  private readonly cacheTtlMs: number | undefined;
  private readonly maxCacheEntries: number;
  private readonly serviceHeaders: Record<string, string>;
  private readonly allowedResponseHeaders: ReadonlySet<string>;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  /** Map iteration order is insertion order, so re-inserting on hit makes it an LRU. */
  private readonly cache = new Map<string, CacheEntry>();

  constructor(options: ExtAuthzOptions, dispatcher?: Dispatcher) {
    if (options.url.protocol !== 'http:' && options.url.protocol !== 'https:') {
      throw new TypeError(`ext_authz url must be http(s), got ${options.url.protocol}`);
    }
    this.url = options.url;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new RangeError(`ext_authz timeoutMs must be positive, got ${this.timeoutMs}`);
    this.failOpen = options.failOpen ?? false;
    this.cacheTtlMs = options.cacheTtlMs !== undefined && options.cacheTtlMs > 0 ? options.cacheTtlMs : undefined;
    this.maxCacheEntries = options.maxCacheEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
    this.serviceHeaders = { ...options.headers };
    this.allowedResponseHeaders = new Set((options.allowedResponseHeaders ?? []).map((name) => name.toLowerCase()));
    this.ownsDispatcher = dispatcher === undefined;
    // A dedicated keep-alive pool: a check sits on every call's critical path, so
    // it should not pay for a TCP (or TLS) handshake each time.
    this.dispatcher = dispatcher ?? new Pool(options.url.origin, { connections: 32, keepAliveTimeout: 30_000 });
  }

  async check(request: CheckRequest): Promise<CheckResult> {
    const payload = checkBody(request);
    if (this.cacheTtlMs === undefined) return (await this.decide(payload)).result;

    const key = canonicalDigest(payload);
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit.result;
    }
    if (hit) this.cache.delete(key);

    const { result, decidedByService } = await this.decide(payload);
    // Only the service's own answers are cached: an outage must not outlive itself.
    if (decidedByService) this.remember(key, result);
    return result;
  }

  /** Closes our own connection pool; an injected dispatcher belongs to the caller. */
  async close(): Promise<void> {
    this.cache.clear();
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private async decide(payload: CheckRequest): Promise<{ result: CheckResult; decidedByService: boolean }> {
    try {
      return { result: await this.exchange(JSON.stringify(payload)), decidedByService: true };
    } catch (error) {
      return { result: this.unavailable(error), decidedByService: false };
    }
  }

  private async exchange(body: string): Promise<CheckResult> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await this.dispatcher.request({
        origin: this.url.origin,
        path: this.url.pathname + this.url.search,
        method: 'POST',
        headers: { ...this.serviceHeaders, 'content-type': 'application/json', accept: 'application/json, text/plain' },
        body,
        signal,
      });
      return await this.interpret(response, signal);
    } catch (error) {
      throw signal.aborted ? new Unavailable(`no answer within ${this.timeoutMs}ms`) : error;
    }
  }

  private async interpret(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<CheckResult> {
    const { statusCode } = response;
    if (statusCode === 200) {
      // A 200 cut short (deadline, reset) is a broken answer, not a permission: the rejection propagates.
      await response.body.dump({ limit: MAX_BODY_BYTES, signal });
      return { allowed: true, headers: this.injectedHeaders(response.headers) };
    }
    if (statusCode >= 400 && statusCode < 500) {
      // The status already says deny; a body lost in transit only costs us the reason.
      const text = await readCapped(response.body).catch(() => '');
      return { allowed: false, status: statusCode, reason: denialReason(text) };
    }
    await response.body.dump({ limit: MAX_BODY_BYTES, signal }).catch(() => undefined);
    // 5xx is an outage; anything else (3xx, 204, ...) is not a decision this protocol defines.
    throw new Unavailable(statusCode >= 500 ? `status ${statusCode}` : `unexpected status ${statusCode}`);
  }

  private unavailable(error: unknown): CheckResult {
    if (this.failOpen) return { allowed: true, headers: {} };
    const detail = error instanceof Unavailable ? error.message : describeError(error);
    return { allowed: false, status: 403, reason: `external authorizer unavailable: ${detail}` };
  }

  private injectedHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
    const injected: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (!this.allowedResponseHeaders.has(lower) || value === undefined) continue;
      injected[lower] = Array.isArray(value) ? value.join(', ') : value;
    }
    return injected;
  }

  private remember(key: string, result: CheckResult): void {
    if (this.maxCacheEntries <= 0) return;
    while (this.cache.size >= this.maxCacheEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cache.delete(oldest.value);
    }
    this.cache.set(key, { result, expires: Date.now() + this.cacheTtlMs! });
  }
}

class Unavailable extends Error {}

/** What the service sees: the call minus every credential we can recognise. */
function checkBody(request: CheckRequest): CheckRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (!CREDENTIAL_HEADERS.has(lower)) headers[lower] = value;
  }
  const body: CheckRequest = { method: request.method, path: request.path, headers };
  if (request.identity) {
    body.identity = Object.fromEntries(Object.entries(request.identity).filter(([key]) => !CREDENTIAL_IDENTITY_FIELD.test(key)));
  }
  if (request.mcp) body.mcp = request.mcp;
  return body;
}

async function readCapped(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    // Leaving the loop destroys the body; the connection is discarded, which is fine for a rare oversized denial.
    if (size >= MAX_BODY_BYTES) break;
  }
  return Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8');
}

/** The body's JSON `reason` if it has one, else the text; single-line and short, since it reaches clients and logs. */
function denialReason(text: string): string {
  let reason = text;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { reason?: unknown }).reason === 'string') {
      reason = (parsed as { reason: string }).reason;
    }
  } catch {
    // Not JSON: the text is the reason.
  }
  reason = reason.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (reason === '') return 'denied by external authorizer';
  return reason.length > MAX_REASON_CHARS ? reason.slice(0, MAX_REASON_CHARS) : reason;
}

/**
 * The error's code (ECONNREFUSED, UND_ERR_SOCKET, ...) rather than its message: the
 * reason reaches clients, and messages carry the authorizer's internal address.
 */
function describeError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'unknown error';
}
