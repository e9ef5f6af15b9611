import ipaddr from 'ipaddr.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * The client's address as far as the gateway can vouch for it. X-Forwarded-For is read
 * only when the direct peer is a configured trusted proxy, and then from the right: the
 * first address not itself a trusted proxy is the client (anything to its left was
 * written by the client and proves nothing).
 */
export class ClientAddressResolver {
  private readonly trusted: readonly Range[];

  constructor(trustedProxies: readonly string[]) {
    this.trusted = trustedProxies.map((cidr) => (cidr.includes('/') ? ipaddr.parseCIDR(cidr) : ([ipaddr.parse(cidr), ipaddr.parse(cidr).kind() === 'ipv4' ? 32 : 128] as Range)));
  }

  resolve(peer: string, forwardedFor: string | string[] | undefined): string {
    if (this.trusted.length === 0 || forwardedFor === undefined || !this.isTrusted(peer)) return peer;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (!ipaddr.isValid(hop)) return peer;
      if (!this.isTrusted(hop)) return normalize(hop);
    }
    return peer;
  }

  private isTrusted(address: string): boolean {
    if (!ipaddr.isValid(address)) return false;
    const parsed = ipaddr.process(address);
    return this.trusted.some(([range, bits]) => parsed.kind() === range.kind() && parsed.match(range, bits));
  }
}

function normalize(address: string): string {
  return ipaddr.process(address).toString();
}

/**
 * What a client address stands for when clients are counted: an IPv4 address itself (also
 * when written IPv4-mapped), an IPv6 address's /64, since one host commonly holds a whole /64.
 */
export function clientNetwork(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  return `${(parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`;
}
