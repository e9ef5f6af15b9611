import { ErrorCode, JsonRpcError } from './errors.ts';
import type { JsonRpcMessage } from './message.ts';

/**
 * Validates the JSON-RPC envelope of an already parsed value. Only the envelope:
 * params and results are the peers' business and pass through unvalidated.
 */
export function toMessage(value: unknown): JsonRpcMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: expected a JSON-RPC 2.0 object');
  }
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') {
    throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: "jsonrpc" must be "2.0"');
  }
  const hasId = 'id' in m;
  if (hasId && !isValidId(m.id, 'method' in m)) {
    throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: "id" must be a string or an integer');
  }
  if ('method' in m) {
    if (typeof m.method !== 'string' || m.method.length === 0) {
      throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: "method" must be a non-empty string');
    }
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null || Array.isArray(m.params))) {
      throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: MCP "params" must be an object');
    }
    return m as unknown as JsonRpcMessage;
  }
  if (!hasId) {
    throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: a message needs "method" or "id"');
  }
  const hasResult = 'result' in m;
  const hasError = 'error' in m;
  if (hasResult === hasError) {
    throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: a response needs exactly one of "result" or "error"');
  }
  if (hasError) {
    const e = m.error as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.code !== 'number' || typeof e.message !== 'string') {
      throw new JsonRpcError(ErrorCode.InvalidRequest, 'Invalid Request: "error" needs a numeric code and a message');
    }
  }
  return m as unknown as JsonRpcMessage;
}

function isValidId(id: unknown, isRequest: boolean): boolean {
  if (typeof id === 'string') return true;
  if (typeof id === 'number') return Number.isSafeInteger(id);
  // A response to a request whose id could not be read carries id null.
  return !isRequest && id === null;
}

/** Parses one JSON text into a JSON-RPC message; -32700 for bad JSON, -32600 for a bad envelope. */
export function parseMessage(text: string): JsonRpcMessage {
  return toMessage(parseJson(text));
}

/** Parses a JSON text; -32700 when it is not one. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new JsonRpcError(ErrorCode.ParseError, `Parse error: ${(err as Error).message}`);
  }
}
