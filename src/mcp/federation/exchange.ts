import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';
import type { JsonRpcRequest } from '../../jsonrpc/message.ts';
import type { SessionContext } from '../session-context.ts';
import type { Inbound } from '../upstream/types.ts';

let internalIds = 0;

/** A request the gateway itself makes; its ids live in their own namespace, apart from clients'. */
export function internalRequest(method: string, params: Record<string, unknown> | undefined): JsonRpcRequest {
  return { jsonrpc: '2.0', id: `switchboard-${++internalIds}`, method, ...(params ? { params } : {}) };
}

/** The result of a request among the messages an upstream answered with; its error as a JsonRpcError. */
export async function resultOf(backend: string, request: JsonRpcRequest, messages: AsyncIterable<Inbound>): Promise<Record<string, unknown>> {
  for await (const inbound of messages) {
    const m = inbound.message;
    if ('method' in m || m.id !== request.id) continue;
    if ('error' in m) throw new JsonRpcError(m.error.code, `backend "${backend}": ${m.error.message}`, m.error.data);
    return m.result;
  }
  throw new JsonRpcError(ErrorCode.UpstreamUnavailable, `backend "${backend}" sent no response to ${request.method}`);
}

/** Sends a request the gateway needs answered (a list page, a fan-out) through the session, with recovery. */
export async function call(ctx: SessionContext, backend: string, method: string, params: Record<string, unknown> | undefined, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const request = internalRequest(method, params);
  return resultOf(backend, request, ctx.exchange(backend, request, signal));
}
