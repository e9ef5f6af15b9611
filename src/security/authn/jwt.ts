import type * as Jose from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { lazyModule } from '../../util/lazy-module.ts';
import { TokenCache } from '../../util/token-cache.ts';
import { AuthError } from './errors.ts';

const jose = lazyModule<typeof Jose>('jose');

export interface JwtIssuerOptions {
  /** Compared exactly with the token's `iss`. */
  issuer: string;
  /** The token's `aud` (string or array) must contain at least one of these. */
  audiences: readonly string[];
  /** Exactly one of jwksUrl / jwks. */
  jwksUrl?: URL;
  /** A JWKS document loaded at config time (the only place an `oct` key may come from). */
  jwks?: { readonly keys: readonly object[] };
  algorithms: readonly string[];
  /** At most 300. */
  clockToleranceSec: number;
  claimsToForward?: never;
}

export interface VerifiedJwt {
  issuer: string;
  subject: string | undefined;
  claims: Record<string, unknown>;
  /** From `scope` (space separated) or else `scp` (array, or space separated as some IdPs send it). */
  scopes: string[];
}

export interface JwtVerifierOptions {
  /** Default 10 minutes. */
  jwksCacheMs?: number;
  /** Default 30 s. No JWKS URL is fetched more often than this, whatever triggers it (unknown kid, failure, expiry). */
  jwksRefreshMinIntervalMs?: number;
  /** Default 5 s. */
  jwksTimeoutMs?: number;
  /** Default 1 MiB. Enforced by the default fetcher; a custom fetchJwks must bound what it reads itself. */
  maxJwksBytes?: number;
  /** Returns the parsed JWKS document. Lets the gateway route the fetch through its SSRF guard. */
  fetchJwks?: (url: URL, signal: AbortSignal) => Promise<unknown>;
}

/** Checked before any decoding, so an oversized header cannot cost parsing work. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_CLOCK_TOLERANCE_SEC = 300;

/**
 * The key each algorithm needs. Pinning the key type to the alg is what defeats
 * HS256/RS256 confusion: an RSA public key can never be picked as an HMAC secret.
 */
const KEY_TYPES = new Map<string, { kty: string; crv?: string }>([
  ...['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'].map((alg) => [alg, { kty: 'RSA' }] as const),
  ['ES256', { kty: 'EC', crv: 'P-256' }],
  ['ES384', { kty: 'EC', crv: 'P-384' }],
  ['ES512', { kty: 'EC', crv: 'P-521' }],
  ['EdDSA', { kty: 'OKP', crv: 'Ed25519' }],
  ['Ed25519', { kty: 'OKP', crv: 'Ed25519' }],
  ...['HS256', 'HS384', 'HS512'].map((alg) => [alg, { kty: 'oct' }] as const),
]);

interface KeySet {
  /** The configured keys a token with this kid may have been signed with. */
  keysFor(kid: string | undefined): Promise<readonly JWK[]>;
  /** Those keys when they are at hand and fresh, without waiting; undefined when only keysFor can tell. */
  current(kid: string | undefined): readonly JWK[] | undefined;
}

/**
 * A token verified before: whose keys and which of them verified it, and until when (its exp,
 * in seconds). The issuer and kid are what its claims and header said: the same token string
 * decodes to the same values, so a repeat need not decode it again. It holds while its key is
 * still in the issuer's current set (which fails closed past its lifetime and drops rotated
 * keys) and it has not expired.
 */
interface Remembered {
  readonly issuer: Issuer;
  readonly kid: string | undefined;
  readonly jwk: JWK;
  readonly exp: number;
  readonly result: VerifiedJwt;
}

interface Issuer {
  readonly issuer: string;
  readonly audiences: string[];
  readonly algorithms: readonly string[];
  readonly clockToleranceSec: number;
  readonly keys: KeySet;
}

export class JwtVerifier {
  readonly #issuers = new Map<string, Issuer>();
  /** Importing a key costs more than verifying with it; keyed by the JWK object so a refetched set starts afresh. */
  readonly #imported = new WeakMap<JWK, Map<string, Promise<CryptoKey | Uint8Array>>>();
  /**
   * Tokens verified before, found by their signature: a signature checked once stays good for
   * the same token and key, so a repeat skips the verification. What can change is checked
   * on every use: the clock (exp), and the key set, which fails closed past its lifetime and
   * drops rotated keys (a refetched set is new objects).
   */
  readonly #remembered = new TokenCache<Remembered>((token) => token.slice(token.lastIndexOf('.') + 1));

  constructor(issuers: JwtIssuerOptions[], options: JwtVerifierOptions = {}) {
    const maxBytes = options.maxJwksBytes ?? 1024 * 1024;
    const remote = {
      cacheMs: options.jwksCacheMs ?? 10 * 60_000,
      minIntervalMs: options.jwksRefreshMinIntervalMs ?? 30_000,
      timeoutMs: options.jwksTimeoutMs ?? 5_000,
      fetchJwks: options.fetchJwks ?? ((url: URL, signal: AbortSignal) => fetchJwksDocument(url, signal, maxBytes)),
    };
    // Otherwise an expired cache could not be refreshed and every token would fail until the interval passed.
    if (remote.minIntervalMs > remote.cacheMs) throw new Error('jwksRefreshMinIntervalMs must not exceed jwksCacheMs');
    for (const options of issuers) {
      checkIssuerOptions(options);
      if (this.#issuers.has(options.issuer)) throw new Error(`JWT issuer ${options.issuer} is configured twice`);
      this.#issuers.set(options.issuer, {
        issuer: options.issuer,
        audiences: [...options.audiences],
        algorithms: [...options.algorithms],
        clockToleranceSec: options.clockToleranceSec,
        keys: options.jwks ? new StaticKeys(jwksKeys(options.jwks)) : new RemoteKeys(options.jwksUrl!, remote),
      });
    }
  }

  /**
   * The result for a token verified before, when it still holds and its issuer's keys are at
   * hand: the per-call path, with no promise to wait for. Undefined means "ask verify()", which
   * may refresh keys, verify afresh or refuse.
   */
  recall(token: string): VerifiedJwt | undefined {
    const known = this.#remembered.get(token);
    if (!known) return undefined;
    const keys = known.issuer.keys.current(known.kid);
    return keys && stillHolds(known, keys) ? known.result : undefined;
  }

  /** Verifies a compact JWS; throws AuthError('invalid_token', reason) on any failure. */
  async verify(token: string): Promise<VerifiedJwt> {
    if (typeof token !== 'string') throw refused('malformed token');
    if (token.length > MAX_TOKEN_LENGTH) throw refused('token too large');
    // A repeat is checked against the issuer's current keys, which it then shares with a fresh verification.
    const known = this.#remembered.get(token);
    let keys: readonly JWK[] | undefined;
    if (known) {
      keys = await known.issuer.keys.keysFor(known.kid);
      if (stillHolds(known, keys)) return known.result;
    }
    const { header, payload } = decode(token);
    const { alg, kid } = header as { alg?: unknown; kid?: unknown };
    if (typeof alg !== 'string' || (kid !== undefined && typeof kid !== 'string')) throw refused('malformed token');
    if (alg.toLowerCase() === 'none') throw refused('unsigned token');

    // Trusting the unverified iss here is safe: it only chooses whose keys must then verify the signature.
    const issuer = typeof payload.iss === 'string' ? this.#issuers.get(payload.iss) : undefined;
    if (!issuer) throw refused('unknown issuer');
    if (!issuer.algorithms.includes(alg)) throw refused('algorithm not allowed');

    // Only kid and alg steer key selection; jku, x5u, jwk and x5c are never read.
    // A remembered token decodes to the issuer and kid it was remembered with: its keys are those.
    keys ??= await issuer.keys.keysFor(kid);
    const candidates = keys.filter((jwk) => keyFits(jwk, alg));
    for (const jwk of candidates) {
      const key = await this.#import(jwk, alg).catch(() => undefined);
      if (!key) continue;
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jose().jwtVerify(token, key, {
          algorithms: [alg],
          issuer: issuer.issuer,
          audience: issuer.audiences,
          clockTolerance: issuer.clockToleranceSec,
          requiredClaims: ['exp'],
        }));
      } catch (error) {
        // Without a kid several keys may fit; only a bad signature means "try the next one".
        if ((error as { code?: unknown }).code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') continue;
        throw refused(reasonFor(error));
      }
      const result = verified(issuer, claims);
      this.#remembered.set(token, { issuer, kid, jwk, exp: claims.exp as number, result });
      return result;
    }
    throw refused(candidates.length > 0 ? 'invalid signature' : 'no matching key');
  }

  #import(jwk: JWK, alg: string): Promise<CryptoKey | Uint8Array> {
    let byAlg = this.#imported.get(jwk);
    if (!byAlg) this.#imported.set(jwk, (byAlg = new Map()));
    let key = byAlg.get(alg);
    if (!key) byAlg.set(alg, (key = jose().importJWK(jwk, alg)));
    return key;
  }
}

/**
 * A remembered verification holds while its key is among the issuer's current ones and the
 * token has not expired (jose's rule: expired once exp <= now - tolerance). An expired one is
 * verified afresh, to be refused with the precise reason.
 */
function stillHolds(known: Remembered, keys: readonly JWK[]): boolean {
  return keys.includes(known.jwk) && known.exp > Math.floor(Date.now() / 1000) - known.issuer.clockToleranceSec;
}

/** Reasons are fixed strings: nothing from the token, or from jose's messages about it, reaches them. */
function refused(reason: string): AuthError {
  return new AuthError('invalid_token', reason);
}

function decode(token: string): { header: object; payload: JWTPayload } {
  try {
    return { header: jose().decodeProtectedHeader(token), payload: jose().decodeJwt(token) };
  } catch {
    throw refused('malformed token');
  }
}

function reasonFor(error: unknown): string {
  const { code, claim, reason } = error as { code?: unknown; claim?: unknown; reason?: unknown };
  if (code === 'ERR_JWT_EXPIRED') return 'token expired';
  if (code === 'ERR_JWS_INVALID' || code === 'ERR_JWT_INVALID') return 'malformed token';
  if (code !== 'ERR_JWT_CLAIM_VALIDATION_FAILED') return 'invalid token';
  if (claim === 'nbf') return 'token not yet valid';
  if (claim === 'exp') return 'token has no valid expiry';
  if (claim === 'aud') return reason === 'missing' ? 'token has no audience' : 'audience not accepted';
  return 'invalid claims';
}

function verified(issuer: Issuer, claims: JWTPayload): VerifiedJwt {
  // jose leaves a future iat alone unless maxTokenAge is set; one beyond the tolerance means a forged or broken issuer.
  if (typeof claims.iat === 'number' && claims.iat > Math.floor(Date.now() / 1000) + issuer.clockToleranceSec) {
    throw refused('token issued in the future');
  }
  return {
    issuer: issuer.issuer,
    // An empty sub names nobody, as a missing one does.
    subject: typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : undefined,
    claims: { ...claims },
    scopes: scopesOf(claims),
  };
}

function scopesOf(claims: JWTPayload): string[] {
  const raw = claims.scope ?? claims.scp;
  const list: unknown[] = typeof raw === 'string' ? raw.split(' ') : Array.isArray(raw) ? raw : [];
  return list.filter((scope): scope is string => typeof scope === 'string' && scope !== '');
}

function keyFits(jwk: JWK, alg: string): boolean {
  const wanted = KEY_TYPES.get(alg)!;
  return (
    jwk.kty === wanted.kty &&
    (wanted.crv === undefined || jwk.crv === wanted.crv) &&
    (jwk.alg === undefined || jwk.alg === alg) &&
    (jwk.use === undefined || jwk.use === 'sig') &&
    (jwk.key_ops === undefined || (Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify')))
  );
}

function checkIssuerOptions(options: JwtIssuerOptions): void {
  const name = `JWT issuer ${JSON.stringify(options.issuer)}`;
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new Error('a JWT issuer needs a non-empty issuer');
  if (options.audiences.length === 0 || options.audiences.some((aud) => typeof aud !== 'string' || aud === '')) {
    throw new Error(`${name} needs at least one non-empty audience`);
  }
  if ((options.jwksUrl === undefined) === (options.jwks === undefined)) throw new Error(`${name} needs exactly one of jwksUrl and jwks`);
  if (options.algorithms.length === 0) throw new Error(`${name} needs at least one algorithm`);
  for (const alg of options.algorithms) {
    if (typeof alg === 'string' && alg.toLowerCase() === 'none') throw new Error(`${name}: alg "none" is never accepted`);
    if (!KEY_TYPES.has(alg)) throw new Error(`${name}: unsupported algorithm ${JSON.stringify(alg)}`);
    // A shared secret served over the network would be readable by anyone who can reach the URL.
    if (options.jwksUrl && KEY_TYPES.get(alg)!.kty === 'oct') throw new Error(`${name}: ${alg} needs an inline jwks, not a jwksUrl`);
  }
  const tolerance = options.clockToleranceSec;
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > MAX_CLOCK_TOLERANCE_SEC) {
    throw new Error(`${name}: clockToleranceSec must be between 0 and ${MAX_CLOCK_TOLERANCE_SEC}`);
  }
}

function jwksKeys(doc: unknown): JWK[] {
  const keys = typeof doc === 'object' && doc !== null ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) throw new Error('not a JWKS document: no "keys" array');
  return keys.filter((key): key is JWK => typeof key === 'object' && key !== null && typeof key.kty === 'string');
}

function withKid(keys: readonly JWK[], kid: string | undefined): readonly JWK[] {
  return kid === undefined ? keys : keys.filter((key) => key.kid === kid);
}

class StaticKeys implements KeySet {
  readonly #keys: readonly JWK[];

  constructor(keys: readonly JWK[]) {
    this.#keys = keys;
  }

  async keysFor(kid: string | undefined): Promise<readonly JWK[]> {
    return this.current(kid);
  }

  current(kid: string | undefined): readonly JWK[] {
    return withKid(this.#keys, kid);
  }
}

interface RemoteOptions {
  cacheMs: number;
  minIntervalMs: number;
  timeoutMs: number;
  fetchJwks: (url: URL, signal: AbortSignal) => Promise<unknown>;
}

class RemoteKeys implements KeySet {
  readonly #url: URL;
  readonly #options: RemoteOptions;
  #keys: readonly JWK[] = [];
  #fetchedAt = -Infinity;
  #attemptedAt = -Infinity;
  #inflight: Promise<boolean> | undefined;

  constructor(url: URL, options: RemoteOptions) {
    this.#url = url;
    this.#options = options;
  }

  async keysFor(kid: string | undefined): Promise<readonly JWK[]> {
    // Fail closed: keys past their cache lifetime may have been revoked, so they are not used.
    if (!this.#fresh() && !(await this.#refresh())) throw refused('signing keys unavailable');
    const keys = withKid(this.#keys, kid);
    // An unknown kid usually means the issuer rotated keys; #refresh keeps random kids from turning into a fetch flood.
    if (keys.length === 0 && kid !== undefined && (await this.#refresh())) return withKid(this.#keys, kid);
    return keys;
  }

  current(kid: string | undefined): readonly JWK[] | undefined {
    if (!this.#fresh()) return undefined;
    const keys = withKid(this.#keys, kid);
    return keys.length > 0 ? keys : undefined;
  }

  #fresh(): boolean {
    return performance.now() - this.#fetchedAt < this.#options.cacheMs;
  }

  /** Resolves to whether fresh keys arrived. Concurrent callers share one fetch; none starts within minIntervalMs of the last. */
  #refresh(): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    if (performance.now() - this.#attemptedAt < this.#options.minIntervalMs) return Promise.resolve(false);
    this.#attemptedAt = performance.now();
    this.#inflight = this.#load()
      .then(
        (keys) => {
          this.#keys = keys;
          this.#fetchedAt = performance.now();
          return true;
        },
        () => false,
      )
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #load(): Promise<JWK[]> {
    const signal = AbortSignal.timeout(this.#options.timeoutMs);
    // Racing the signal as well means a fetcher that ignores it still cannot stall verification.
    return jwksKeys(await Promise.race([this.#options.fetchJwks(this.#url, signal), whenAborted(signal)]));
  }
}

function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

async function fetchJwksDocument(url: URL, signal: AbortSignal, maxBytes: number): Promise<unknown> {
  // Redirects are refused: the configured URL is what was trusted, not wherever it points.
  const response = await fetch(url, { signal, redirect: 'error', headers: { accept: 'application/jwk-set+json, application/json' } });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`JWKS endpoint answered ${response.status}`);
  }
  if (Number(response.headers.get('content-length')) > maxBytes) {
    await response.body.cancel();
    throw new Error('JWKS document too large');
  }
  // Counted while streaming, since content-length may be absent or wrong.
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new Error('JWKS document too large');
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}
