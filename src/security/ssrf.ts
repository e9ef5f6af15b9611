// SSRF guard for every URL the gateway fetches on its own behalf (JWKS, OAuth metadata,
// agent cards, backends added at runtime). Three layers:
//   - isAddressAllowed: classifies one IP address (public unicast, or inside allowedRanges);
//   - guardedAgent: an undici Agent whose connector resolves the host itself, checks every
//     resolved address and connects to a checked address only (no second lookup, so DNS
//     rebinding cannot swap the address between check and connect);
//   - guardedFetch: one request with redirects followed by hand, each hop checked before it is
//     requested, with a redirect limit, a response size cap and an overall timeout.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import ipaddr from 'ipaddr.js';
import type { Dispatcher } from 'undici';
import { Agent, buildConnector, type Connector, type ConnectorOptions } from '../util/undici.ts';

export interface SsrfPolicy {
  /** URL schemes that may be fetched, without the colon. Default ['https']; 'http' must be allowed explicitly. */
  allowedSchemes: readonly string[];
  /** CIDR ranges that are allowed even though they are private/loopback/link-local (e.g. '127.0.0.1/32' for tests, '10.0.0.0/8' for a cluster). */
  allowedRanges: readonly string[];
  /** Redirects guardedFetch follows before giving up. Default 3. */
  maxRedirects: number;
  /** Overall time budget of one guardedFetch (all hops and the body), and the connect timeout of guardedAgent. Default 5000. */
  timeoutMs: number;
  /** Largest response body guardedFetch reads, in bytes. Default 1 MiB. */
  maxResponseBytes: number;
}

/** Why a URL was refused. */
export type SsrfRefusal = 'url' | 'scheme' | 'address' | 'redirects' | 'size' | 'timeout';

export class SsrfError extends Error {
  override readonly name = 'SsrfError';
  /** The URL (or, from the agent alone, the origin) that was refused. */
  readonly url: string;
  /** The resolved address that was refused, when the refusal is about an address. */
  readonly address?: string;
  readonly reason: SsrfRefusal;
  /** The message without the "refused <url>" prefix. */
  readonly detail: string;

  constructor(url: string, detail: string, options: { reason: SsrfRefusal; address?: string; cause?: unknown }) {
    super(`SSRF guard refused ${url}: ${detail}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.url = url;
    this.detail = detail;
    this.reason = options.reason;
    if (options.address !== undefined) this.address = options.address;
  }
}

const SUPPORTED_SCHEMES = new Set(['http', 'https']);

export function defaultSsrfPolicy(overrides: Partial<SsrfPolicy> = {}): SsrfPolicy {
  const policy: SsrfPolicy = {
    allowedSchemes: overrides.allowedSchemes ?? ['https'],
    allowedRanges: overrides.allowedRanges ?? [],
    maxRedirects: overrides.maxRedirects ?? 3,
    timeoutMs: overrides.timeoutMs ?? 5000,
    maxResponseBytes: overrides.maxResponseBytes ?? 1024 * 1024,
  };
  assertValidPolicy(policy);
  return policy;
}

function assertValidPolicy(policy: SsrfPolicy): void {
  for (const scheme of policy.allowedSchemes) {
    if (!SUPPORTED_SCHEMES.has(normalizeScheme(scheme))) {
      throw new TypeError(`SSRF policy: allowedSchemes entry '${scheme}' is not supported (only 'http' and 'https')`);
    }
  }
  parseRanges(policy.allowedRanges);
  if (!Number.isInteger(policy.maxRedirects) || policy.maxRedirects < 0) {
    throw new TypeError(`SSRF policy: maxRedirects must be a non-negative integer, got ${policy.maxRedirects}`);
  }
  if (!Number.isFinite(policy.timeoutMs) || policy.timeoutMs <= 0) {
    throw new TypeError(`SSRF policy: timeoutMs must be a positive number, got ${policy.timeoutMs}`);
  }
  if (!Number.isInteger(policy.maxResponseBytes) || policy.maxResponseBytes < 0) {
    throw new TypeError(`SSRF policy: maxResponseBytes must be a non-negative integer, got ${policy.maxResponseBytes}`);
  }
}

function normalizeScheme(scheme: string): string {
  return scheme.toLowerCase().replace(/:$/, '');
}

// ---------------------------------------------------------------------------------------------
// Address classification

type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [IpAddress, number];

function parseRanges(ranges: readonly string[]): Cidr[] {
  return ranges.map((range) => {
    try {
      return ipaddr.parseCIDR(range);
    } catch {
      throw new TypeError(`SSRF policy: allowedRanges entry '${range}' is not a CIDR range (write a single host as '127.0.0.1/32')`);
    }
  });
}

/** Cloud instance-metadata and credential endpoints: allowed only by a range naming the exact host. */
const METADATA_ADDRESSES = new Set([
  '169.254.169.254', // AWS, GCP, Azure, OCI, OpenStack instance metadata
  '169.254.170.2', // AWS ECS task credentials
  '169.254.170.23', // AWS EKS pod identity
  'fd00:ec2:0:0:0:0:0:254', // AWS instance metadata over IPv6
  'fd00:ec2:0:0:0:0:0:23', // AWS EKS pod identity over IPv6
  '100.100.100.200', // Alibaba Cloud instance metadata
]);

const RANGE_DESCRIPTIONS: Record<string, string> = {
  private: 'a private (RFC 1918) address',
  loopback: 'a loopback address',
  linkLocal: 'a link-local address',
  uniqueLocal: 'a unique-local (fc00::/7) address',
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  multicast: 'a multicast address',
  carrierGradeNat: 'a carrier-grade NAT (100.64.0.0/10) address',
  reserved: 'a reserved address',
};

function describeRange(range: string): string {
  return RANGE_DESCRIPTIONS[range] ?? `a special-purpose (${range}) address`;
}

function v4FromParts(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

function isMetadata(addr: IpAddress): boolean {
  return METADATA_ADDRESSES.has(addr.toNormalizedString());
}

/**
 * Why the address may not be contacted when no allowedRanges entry covers it, or null when it is
 * a public unicast address. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4, Teredo)
 * are judged by the IPv4 address they carry.
 */
function blockReason(addr: IpAddress): string | null {
  if (isMetadata(addr)) return 'the cloud metadata address';
  if (addr.kind() === 'ipv4') {
    const range = addr.range();
    return range === 'unicast' ? null : describeRange(range);
  }
  const v6 = addr as ipaddr.IPv6;
  const p = v6.parts;
  const range = v6.range();
  const embedded = (label: string, v4s: ipaddr.IPv4[]): string | null => {
    for (const v4 of v4s) {
      const inner = blockReason(v4);
      if (inner !== null) return `${label} of ${v4.toString()}, ${inner}`;
    }
    return null;
  };
  switch (range) {
    case 'unicast':
      // IPv4-compatible ::a.b.c.d (deprecated) is not classified by ipaddr.js; never contact it.
      if (p[0] === 0 && p[1] === 0 && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) {
        return 'a deprecated IPv4-compatible IPv6 address';
      }
      return null;
    case 'ipv4Mapped':
      return embedded('an IPv4-mapped IPv6 address', [v6.toIPv4Address()]);
    case 'rfc6145':
      return embedded('an IPv4-translated IPv6 address', [v4FromParts(p[6]!, p[7]!)]);
    case 'rfc6052':
      // 64:ff9b::/96 (well-known NAT64 prefix) carries a v4 address; 64:ff9b:1::/48 is local-use.
      if (p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) {
        return embedded('a NAT64 address', [v4FromParts(p[6]!, p[7]!)]);
      }
      return 'a local-use NAT64 (64:ff9b:1::/48) address';
    case '6to4':
      return embedded('a 6to4 address', [v4FromParts(p[1]!, p[2]!)]);
    case 'teredo':
      // Teredo server in bits 32-63, client (obfuscated: every bit flipped) in bits 96-127.
      return embedded('a Teredo address', [v4FromParts(p[2]!, p[3]!), v4FromParts(p[6]! ^ 0xffff, p[7]! ^ 0xffff)]);
    default:
      return describeRange(range);
  }
}

/** The address itself plus, for an IPv4-mapped IPv6 address, the IPv4 address the socket reaches. */
function matchForms(addr: IpAddress): IpAddress[] {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [addr, (addr as ipaddr.IPv6).toIPv4Address()];
  }
  return [addr];
}

function inAllowedRanges(addr: IpAddress, ranges: Cidr[]): boolean {
  const forms = matchForms(addr);
  for (const form of forms) {
    const hostBits = form.kind() === 'ipv4' ? 32 : 128;
    // A broad range such as 169.254.0.0/16 must not open the metadata endpoint by accident.
    const needExact = isMetadata(form);
    for (const [base, bits] of ranges) {
      if (base.kind() !== form.kind()) continue;
      if (needExact && bits !== hostBits) continue;
      if (form.match(base, bits)) return true;
    }
  }
  return false;
}

/** Null when the address may be contacted, else a phrase saying what it is ("a loopback address"). */
function refusalFor(address: string, policy: SsrfPolicy): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  const addr = ipaddr.parse(address);
  if (inAllowedRanges(addr, parseRanges(policy.allowedRanges))) return null;
  return blockReason(addr);
}

/**
 * True when the address may be contacted: public unicast, or inside allowedRanges. Blocks the
 * private, loopback, link-local, unique-local, unspecified, broadcast, multicast, carrier-grade
 * NAT, reserved and other special-purpose ranges of ipaddr.js, IPv6 forms embedding such an IPv4
 * address (mapped, NAT64, 6to4, Teredo), and the cloud metadata addresses (169.254.169.254 and
 * friends; only an allowedRanges entry naming the exact host opens those).
 */
export function isAddressAllowed(address: string, policy: SsrfPolicy): boolean {
  return refusalFor(address, policy) === null;
}

function addressRefusal(url: string, host: string, address: string, what: string): SsrfError {
  const subject = host === address ? 'it' : host;
  return new SsrfError(url, `${subject} resolves to ${address}, ${what}, which the SSRF policy does not allow (allowedRanges can permit it)`, {
    reason: 'address',
    address,
  });
}

// ---------------------------------------------------------------------------------------------
// Pinned, checked connections

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface GuardedAgentOptions {
  /** Resolves a host name to all of its addresses. Default: dns.lookup with all: true. */
  lookup?: (hostname: string) => Promise<readonly ResolvedAddress[]>;
  /** TLS material for https origins (a private CA, a client certificate for mTLS). */
  tls?: Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'passphrase' | 'pfx' | 'minVersion'>;
}

const guardedAgents = new WeakSet<Agent>();

// Failures that make the next resolved address worth trying; anything else (TLS, policy) is final.
const NEXT_ADDRESS_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function originOf(opts: ConnectorOptions): string {
  const host = isIP(opts.hostname) === 6 ? `[${opts.hostname}]` : opts.hostname;
  return `${opts.protocol}//${host}${opts.port ? `:${opts.port}` : ''}`;
}

/**
 * An undici Agent whose connect step resolves the host itself (dns.lookup, all addresses),
 * checks every resolved address, and connects only to a checked address: there is no second
 * DNS lookup between check and connect, so DNS rebinding cannot swap it. Literal IP hosts are
 * checked too. TLS still verifies the certificate against the host name (SNI = host name).
 */
export function guardedAgent(policy: SsrfPolicy, options: GuardedAgentOptions = {}): Agent {
  assertValidPolicy(policy);
  const resolve = options.lookup ?? ((hostname: string) => dnsLookup(hostname, { all: true }));
  const { ca, cert, key, passphrase, pfx, minVersion } = options.tls ?? {};
  const tls = Object.fromEntries(Object.entries({ ca, cert, key, passphrase, pfx, minVersion }).filter(([, v]) => v !== undefined));
  const base = buildConnector({ ...tls, timeout: policy.timeoutMs });

  const connect: Connector = (opts, callback) => {
    const origin = originOf(opts);
    const host = opts.hostname;
    const fail = (err: Error) => callback(err, null);

    if (isIP(host) !== 0) {
      const what = refusalFor(host, policy);
      if (what !== null) return fail(addressRefusal(origin, host, host, what));
      return base(opts, callback);
    }

    resolve(host).then(
      (addresses) => {
        if (addresses.length === 0) return fail(new Error(`SSRF guard: ${host} resolved to no address`));
        for (const { address } of addresses) {
          const what = refusalFor(address, policy);
          if (what !== null) return fail(addressRefusal(origin, host, address, what));
        }
        const attempt = (index: number): void => {
          const { address } = addresses[index]!;
          base(
            {
              ...opts,
              hostname: address,
              // Certificate verification and SNI use the name, not the pinned address.
              ...(opts.protocol === 'https:' ? { servername: opts.servername || host } : {}),
            },
            (err, socket) => {
              if (err !== null) {
                const code = (err as NodeJS.ErrnoException).code;
                if (index + 1 < addresses.length && code !== undefined && NEXT_ADDRESS_CODES.has(code)) return attempt(index + 1);
                return fail(err);
              }
              callback(null, socket);
            },
          );
        };
        attempt(0);
      },
      (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
    );
  };

  const agent = new Agent({ connect });
  guardedAgents.add(agent);
  return agent;
}

// ---------------------------------------------------------------------------------------------
// Guarded fetch

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);
const BODY_HEADERS = new Set(['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']);

/** Scheme and literal-address checks for one hop; host names are checked by the agent at connect. */
function checkHop(url: URL, policy: SsrfPolicy): void {
  const scheme = url.protocol.slice(0, -1);
  if (!policy.allowedSchemes.some((s) => normalizeScheme(s) === scheme)) {
    throw new SsrfError(url.href, `the scheme '${scheme}' is not allowed (allowed: ${policy.allowedSchemes.join(', ') || 'none'})`, { reason: 'scheme' });
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw new SsrfError(url.href, 'the URL has no host', { reason: 'url' });
  if (isIP(host) !== 0) {
    const what = refusalFor(host, policy);
    if (what !== null) throw addressRefusal(url.href, host, host, what);
  }
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/**
 * Fetches url (GET unless init.method) and follows redirects by hand: every hop's URL is checked
 * for scheme and address before it is requested (host names at connect time by the guarded agent,
 * pinned), at most policy.maxRedirects hops, the body is streamed and refused past
 * policy.maxResponseBytes, and the whole exchange is bounded by policy.timeoutMs. A redirect to
 * another origin drops Authorization, Cookie and Proxy-Authorization; 303 (and 301/302 after a
 * POST) turn into a GET without body. init.agent, when given, must come from guardedAgent (its
 * policy then governs addresses); otherwise a guarded agent for this policy is used and closed.
 */
export async function guardedFetch(
  url: string | URL,
  policy: SsrfPolicy,
  init: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {},
): Promise<{ status: number; headers: Record<string, string>; body: string; url: string }> {
  assertValidPolicy(policy);
  if (init.agent !== undefined && !guardedAgents.has(init.agent)) {
    throw new TypeError('guardedFetch: init.agent must be created by guardedAgent()');
  }
  let current: URL;
  try {
    current = new URL(url);
  } catch (err) {
    throw new SsrfError(String(url), 'it is not a valid absolute URL', { reason: 'url', cause: err });
  }

  const agent = init.agent ?? guardedAgent(policy);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), policy.timeoutMs);
  let method = (init.method ?? 'GET').toUpperCase();
  let body = init.body;
  let headers: Record<string, string> = { ...init.headers };

  try {
    for (let redirects = 0; ; redirects++) {
      checkHop(current, policy);
      let res: Dispatcher.ResponseData;
      try {
        res = await agent.request({ origin: current.origin, path: `${current.pathname}${current.search}`, method, headers, body: body ?? null, signal: controller.signal });
      } catch (err) {
        throw translateError(err, current, controller.signal, policy);
      }

      const location = res.headers.location;
      if (REDIRECT_STATUSES.has(res.statusCode) && typeof location === 'string') {
        discard(res.body);
        if (redirects >= policy.maxRedirects) {
          throw new SsrfError(current.href, `too many redirects (more than maxRedirects = ${policy.maxRedirects}); the next one was to ${location}`, {
            reason: 'redirects',
          });
        }
        let next: URL;
        try {
          next = new URL(location, current);
        } catch (err) {
          throw new SsrfError(current.href, `it redirects to an invalid URL '${location}'`, { reason: 'url', cause: err });
        }
        if (res.statusCode === 303 ? method !== 'HEAD' : (res.statusCode === 301 || res.statusCode === 302) && method === 'POST') {
          method = 'GET';
          body = undefined;
          headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !BODY_HEADERS.has(name.toLowerCase())));
        }
        if (next.origin !== current.origin) {
          headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase())));
        }
        current = next;
        continue;
      }

      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > policy.maxResponseBytes) {
        discard(res.body);
        throw sizeRefusal(current, policy);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > policy.maxResponseBytes) {
            discard(res.body);
            throw sizeRefusal(current, policy);
          }
          chunks.push(chunk as Buffer);
        }
      } catch (err) {
        throw translateError(err, current, controller.signal, policy);
      }
      return {
        status: res.statusCode,
        headers: flattenHeaders(res.headers),
        body: Buffer.concat(chunks).toString('utf8'),
        url: current.href,
      };
    }
  } finally {
    clearTimeout(timer);
    if (init.agent === undefined) await agent.destroy().catch(() => {});
  }
}

/** Drops a response body we will not read; its abort error must not surface as unhandled. */
function discard(body: NodeJS.ReadableStream & { destroy(): unknown }): void {
  body.on('error', () => {});
  body.destroy();
}

function sizeRefusal(url: URL, policy: SsrfPolicy): SsrfError {
  return new SsrfError(url.href, `the response body is larger than maxResponseBytes (${policy.maxResponseBytes} bytes)`, { reason: 'size' });
}

function translateError(err: unknown, url: URL, signal: AbortSignal, policy: SsrfPolicy): unknown {
  if (err instanceof SsrfError) {
    if (err.url === url.href) return err;
    // The agent names only the origin; name the full URL of the hop.
    return new SsrfError(url.href, err.detail, { reason: err.reason, address: err.address, cause: err });
  }
  if (signal.aborted) {
    return new SsrfError(url.href, `no complete response within timeoutMs (${policy.timeoutMs} ms)`, { reason: 'timeout', cause: err });
  }
  return err;
}
