import type { JsonRpcId } from '../jsonrpc/message.ts';

/**
 * Requests that upstreams send to the client (sampling, elicitation, roots, ping) get ids
 * that name their backend: two upstreams using the same id cannot collide, and the
 * client's answer finds its way back on any replica without a lookup table.
 */
const PREFIX = 'switchboard:';

export function toDownstreamId(backend: string, id: JsonRpcId): string {
  return `${PREFIX}${backend}:${JSON.stringify(id)}`;
}

export function fromDownstreamId(id: JsonRpcId | null): { backend: string; id: JsonRpcId } | undefined {
  if (typeof id !== 'string' || !id.startsWith(PREFIX)) return undefined;
  const colon = id.indexOf(':', PREFIX.length);
  if (colon === -1) return undefined;
  try {
    const original: unknown = JSON.parse(id.slice(colon + 1));
    if (typeof original !== 'string' && typeof original !== 'number') return undefined;
    return { backend: id.slice(PREFIX.length, colon), id: original };
  } catch {
    return undefined;
  }
}
