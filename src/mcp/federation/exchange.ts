import { JsonRpcError } from '../../jsonrpc/errors.ts';
import type { JsonRpcRequest } from '../../jsonrpc/message.ts';
import type { SessionContext } from '../session-context.ts';
import { responseTo } from '../upstream/responses.ts';
import type { ReplyControl, ReplySink } from '../upstream/types.ts';

let internalIds = 0;

/** A request the gateway itself makes; its ids live in their own namespace, apart from clients'. */
export function internalRequest(method: string, params: Record<string, unknown> | undefined): JsonRpcRequest {
  return { jsonrpc: '2.0', id: `switchboard-${++internalIds}`, method, ...(params ? { params } : {}) };
}

/** The result of a request the gateway makes; the upstream's error as a JsonRpcError. */
export async function resultOf(backend: string, request: JsonRpcRequest, send: (sink: ReplySink) => ReplyControl): Promise<Record<string, unknown>> {
  const m = (await responseTo(backend, request, send)).message;
  if ('error' in m) throw new JsonRpcError(m.error.code, `backend "${backend}": ${m.error.message}`, m.error.data);
  return (m as { result: Record<string, unknown> }).result;
}

/** Sends a request the gateway needs answered (a list page, a fan-out) through the session, with recovery. */
export function call(ctx: SessionContext, backend: string, method: string, params: Record<string, unknown> | undefined, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const request = internalRequest(method, params);
  return resultOf(backend, request, (sink) => ctx.exchange(backend, request, sink, signal));
}
