/**
 * What one period of load (warm-up or measured) saw: operations that succeeded, their
 * latency (HDR histogram, µs), and every kind of failure with a sample of each. Both load
 * drivers (autocannon and the undici loop) record into a Phase, and the checks that decide
 * whether a reply is right are the same for both.
 */
import { createHistogram } from 'node:perf_hooks';
import { parseRpcBody } from './mcp-client.ts';

export interface FailureSample {
  kind: 'http' | 'rpc-error' | 'mismatch' | 'socket';
  status?: number;
  detail: string;
  count: number;
}

export type FailureInfo = Omit<FailureSample, 'count'>;

/** A wrong reply, thrown by an operation of the undici loop. */
export class Failure extends Error {
  readonly info: FailureInfo;
  constructor(info: FailureInfo) {
    super(`${info.kind}${info.status ? ` HTTP ${info.status}` : ''}: ${info.detail}`);
    this.info = info;
  }
}

const MAX_FAILURE_KINDS = 10;

export class Phase {
  ok = 0;
  /** Operations that got an answer, right or wrong. */
  responses = 0;
  /** Progress notifications received (stream mode). */
  events = 0;
  rpcErrors = 0;
  mismatches = 0;
  socketErrors = 0;
  readonly statusCodes = new Map<number, number>();
  readonly failures = new Map<string, FailureSample>();
  readonly histogram = createHistogram();

  status(code: number): void {
    this.statusCodes.set(code, (this.statusCodes.get(code) ?? 0) + 1);
  }

  /** An operation that got a wrong answer. */
  failed(info: FailureInfo): void {
    if (info.kind === 'rpc-error') this.rpcErrors++;
    else if (info.kind === 'mismatch') this.mismatches++;
    else if (info.kind === 'socket') this.socketErrors++;
    const key = `${info.kind} ${info.status ?? ''} ${info.detail}`;
    const seen = this.failures.get(key);
    if (seen) seen.count++;
    else if (this.failures.size < MAX_FAILURE_KINDS) this.failures.set(key, { ...info, count: 1 });
  }

  succeeded(latencyUs: number): void {
    this.ok++;
    this.histogram.record(Math.max(1, Math.round(latencyUs)));
  }

  /** The first failure seen, for a probe that must not fail. */
  firstFailure(): string {
    const first = this.failures.values().next().value;
    return first ? `${first.kind}${first.status ? ` HTTP ${first.status}` : ''}: ${first.detail}` : 'no answer';
  }
}

/** Decides whether a reply to request `id` is right: undefined when it is, else what is wrong. */
export type Check = (status: number, body: string, id: number) => FailureInfo | undefined;

function rpcResult(status: number, body: string, id: number): { result: unknown } | FailureInfo {
  if (status !== 200) return { kind: 'http', status, detail: body.slice(0, 300) };
  let message;
  try {
    message = parseRpcBody(body);
  } catch {
    message = undefined;
  }
  if (message?.error) return { kind: 'rpc-error', status, detail: JSON.stringify(message.error).slice(0, 300) };
  if (message?.id !== id) return { kind: 'mismatch', status, detail: `expected id ${id}: ${body.slice(0, 300)}` };
  return { result: message.result };
}

/** A tools/call reply whose first content item is `text`. */
export function textResultCheck(text: string): Check {
  return (status, body, id) => {
    const out = rpcResult(status, body, id);
    if (!('result' in out)) return out;
    const got = (out.result as { content?: Array<{ text?: unknown }> } | undefined)?.content?.[0]?.text;
    return got === text ? undefined : { kind: 'mismatch', status, detail: `expected text ${JSON.stringify(text)}: ${body.slice(0, 300)}` };
  };
}

/** A tools/list reply with exactly `count` tools and no further page. */
export function toolCountCheck(count: number): Check {
  return (status, body, id) => {
    const out = rpcResult(status, body, id);
    if (!('result' in out)) return out;
    const result = out.result as { tools?: unknown[]; nextCursor?: unknown } | undefined;
    if (result?.tools?.length === count && result.nextCursor === undefined) return undefined;
    return { kind: 'mismatch', status, detail: `expected ${count} tools on one page, got ${result?.tools?.length ?? 'none'}${result?.nextCursor !== undefined ? ' and a next page' : ''}` };
  };
}
