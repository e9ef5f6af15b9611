import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';

/**
 * A gateway-issued pagination cursor: the upstream cursor of every backend that still has
 * pages. Opaque to the client; validated on the way back in, since the client can send
 * anything: only backends of this route, only string cursors.
 */
export type PendingPages = Record<string, string>;

const MAX_CURSOR_CHARS = 16_384;

export function encodeCursor(pending: PendingPages): string | undefined {
  return Object.keys(pending).length === 0 ? undefined : Buffer.from(JSON.stringify(pending)).toString('base64url');
}

export function decodeCursor(cursor: unknown, backends: ReadonlySet<string>): PendingPages {
  const invalid = new JsonRpcError(ErrorCode.InvalidParams, 'Invalid cursor');
  if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR_CHARS) throw invalid;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid;
  const entries = Object.entries(value);
  if (entries.length === 0) throw invalid;
  for (const [backend, upstreamCursor] of entries) {
    if (!backends.has(backend) || typeof upstreamCursor !== 'string') throw invalid;
  }
  return value as PendingPages;
}
