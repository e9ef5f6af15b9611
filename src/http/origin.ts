import type { IncomingHttpHeaders } from 'node:http';
import type { OriginPolicyIR } from '../ir/types.ts';
import { HttpError } from './errors.ts';

const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

/**
 * Refuses browser requests from foreign origins and requests whose Host is not ours
 * (DNS rebinding: a hostile page resolving its own name to 127.0.0.1).
 */
export function checkOrigin(policy: OriginPolicyIR, headers: IncomingHttpHeaders): void {
  if (policy.allowedHosts) {
    const host = hostName(headers.host);
    if (host === undefined || !policy.allowedHosts.has(host)) throw new HttpError(403, `Host "${headers.host ?? ''}" is not allowed`);
  }
  const origin = headers.origin;
  if (origin === undefined || policy.allowedOrigins === null) return;
  if (policy.allowedOrigins.has(origin)) return;
  if (policy.allowLoopbackOrigins && LOOPBACK_ORIGIN.test(origin)) return;
  throw new HttpError(403, `Origin "${origin}" is not allowed`);
}

/** The host name of a Host header, lower case, without port; IPv6 keeps its brackets. */
function hostName(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const lower = host.toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end === -1 ? undefined : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(':');
  return colon === -1 ? lower : lower.slice(0, colon);
}
