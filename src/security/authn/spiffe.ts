import type { TLSSocket } from 'node:tls';

const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/;

/**
 * The SPIFFE id of a verified client certificate: its one spiffe:// URI SAN. Undefined
 * when the peer presented no certificate, an unverified one, or none or several SPIFFE ids.
 */
export function spiffeIdOf(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const san = socket.getPeerCertificate()?.subjectaltname;
  if (!san) return undefined;
  const ids = san
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:spiffe://'))
    .map((entry) => entry.slice(4));
  return ids.length === 1 && SPIFFE_ID.test(ids[0]!) ? ids[0] : undefined;
}

/** The SPIFFE id Kubernetes workload identity gives a ServiceAccount. */
export function serviceAccountSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
