import { createHash } from 'node:crypto';

/** The credentials that can name a caller, in the order the authentication stage checks them. */
export type AuthMethod = 'jwt' | 'apiKey' | 'mtls';

/**
 * Who is calling, as the authentication stage established it. Everything after it
 * (authorization, audit, upstream credentials) reads this, never the raw request.
 */
export interface Identity {
  /** The methods that proved something about the caller, in the order checked. */
  readonly methods: readonly AuthMethod[];
  /** The principal: the JWT subject, else the API key's name, else the SPIFFE id; undefined for anonymous callers. */
  readonly subject: string | undefined;
  /** Which credential named the subject (a JWT's `sub` and an API key's name are different namespaces). */
  readonly subjectFrom: AuthMethod | undefined;
  readonly issuer: string | undefined;
  /** Verified JWT claims ({} without a JWT). */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly scopes: readonly string[];
  readonly apiKey: { readonly name: string; readonly attributes: Readonly<Record<string, string>> } | undefined;
  /** The SPIFFE id from the client certificate's URI SAN (mTLS). */
  readonly spiffe: string | undefined;
  /** The peer address (after trusted-proxy handling). */
  readonly address: string;
  /** The client's bearer token, kept only to pass upstream where a backend explicitly asks for it. Never logged. */
  readonly bearer: string | undefined;
}

export function anonymous(address: string): Identity {
  return { methods: [], subject: undefined, subjectFrom: undefined, issuer: undefined, claims: {}, scopes: [], apiKey: undefined, spiffe: undefined, address, bearer: undefined };
}

/**
 * A stable, non-secret name for "this caller", stored in the session token so that a
 * session presented with someone else's credentials is refused. Anonymous callers share one.
 */
export function principalKey(identity: Identity): string {
  if (identity.methods.length === 0) return 'anonymous';
  const named = [identity.issuer ?? '', identity.subject ?? '', identity.apiKey?.name ?? '', identity.spiffe ?? ''];
  // A JWT without `sub` names nobody: it stands for itself alone, not for every such token of its issuer.
  if (identity.bearer !== undefined && identity.subjectFrom !== 'jwt') named.push(tokenDigest(identity.bearer));
  return JSON.stringify(named);
}

function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
