import type { JsonRpcFailure, JsonRpcId } from './message.ts';

/** Standard JSON-RPC codes plus the MCP ones the gateway emits. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Same code the MCP SDK uses for a closed connection: the upstream could not be reached or failed. */
  UpstreamUnavailable: -32000,
  RequestTimeout: -32001,
  ResourceNotFound: -32002,
  /** kube-agentic-networking answers a denied tool call with HTTP 200 and this JSON-RPC code. */
  Forbidden: 403,
} as const;

/**
 * An error that is answered to the client as a JSON-RPC error object.
 * Thrown anywhere in the pipeline; turned into a wire response in one place.
 */
export class JsonRpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = 'JsonRpcError';
    this.code = code;
    this.data = data;
  }

  toResponse(id: JsonRpcId | null): JsonRpcFailure {
    const error = this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
    return { jsonrpc: '2.0', id, error };
  }
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcFailure {
  return new JsonRpcError(code, message, data).toResponse(id);
}
