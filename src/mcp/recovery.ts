import type { JsonRpcRequest } from '../jsonrpc/message.ts';
import { internalRequest, resultOf } from './federation/exchange.ts';
import { isSafeMethod } from './safe-methods.ts';
import type { UpstreamSession } from './upstream/types.ts';


const MAX_TOOL_PAGES = 20;

/**
 * Whether a request may be sent again on a fresh upstream session after the old one
 * expired: reads and lists always; a tool call only when the server annotates the tool
 * read-only or idempotent (asked of the fresh session itself, since it is the authority now).
 */
export async function isSafeToRetry(request: JsonRpcRequest, fresh: UpstreamSession, signal?: AbortSignal): Promise<boolean> {
  if (isSafeMethod(request.method)) return true;
  if (request.method !== 'tools/call') return false;
  const name = request.params?.name;
  let cursor: unknown;
  for (let page = 0; page < MAX_TOOL_PAGES; page++) {
    const list = internalRequest('tools/list', cursor === undefined ? undefined : { cursor });
    const result = await resultOf(fresh.backend, list, (sink) => fresh.request(list, sink, signal));
    const tools = Array.isArray(result.tools) ? (result.tools as Array<Record<string, unknown>>) : [];
    const tool = tools.find((t) => t.name === name);
    if (tool) {
      const annotations = (tool.annotations ?? {}) as Record<string, unknown>;
      return annotations.readOnlyHint === true || annotations.idempotentHint === true;
    }
    cursor = result.nextCursor;
    if (typeof cursor !== 'string' || cursor.length === 0) return false;
  }
  return false;
}
