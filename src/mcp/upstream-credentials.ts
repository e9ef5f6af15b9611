import type { BackendIR } from '../ir/types.ts';
import type { Identity } from '../security/identity.ts';

/**
 * Per-caller headers for a backend. Only a backend configured with `passthrough: true`
 * receives the client's own token; every other backend gets its configured credentials
 * alone, so a client's token never reaches a server it was not issued for.
 */
export function upstreamHeaders(backend: BackendIR, identity: Identity): Record<string, string> | undefined {
  if (backend.transport === 'stdio' || !backend.passthrough || !identity.bearer) return undefined;
  return { authorization: `Bearer ${identity.bearer}` };
}
