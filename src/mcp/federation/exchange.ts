import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';
import type { JsonRpcRequest } from '../../jsonrpc/message.ts';
import type { UpstreamSession } from '../upstream/types.ts';

let internalIds = 0;

/**
 * Sends a request the gateway itself needs answered (a list page, a fan-out) and returns
 * the result. Ids live in their own namespace so they cannot meet a client's ids.
 */
export async function call(session: UpstreamSession, method: string, params: Record<string, unknown> | undefined, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const request: JsonRpcRequest = { jsonrpc: '2.0', id: `switchboard-${++internalIds}`, method, ...(params ? { params } : {}) };
  for await (const inbound of session.request(request, signal)) {
    const m = inbound.message;
    if ('method' in m || m.id !== request.id) continue;
    if ('error' in m) throw new JsonRpcError(m.error.code, `backend "${session.backend}": ${m.error.message}`, m.error.data);
    return m.result;
  }
  throw new JsonRpcError(ErrorCode.UpstreamUnavailable, `backend "${session.backend}" sent no response to ${method}`);
}
