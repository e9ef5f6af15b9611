/**
 * Who is calling, as the authentication stage established it. Everything after it
 * (authorization, audit, upstream credentials) reads this, never the raw request.
 */
export interface Identity {
  /** The methods that proved something about the caller, in the order checked. */
  readonly methods: ReadonlyArray<'jwt' | 'apiKey' | 'mtls'>;
  /** The principal: the JWT subject, else the API key's name, else the SPIFFE id; undefined for anonymous callers. */
  readonly subject: string | undefined;
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
  return { methods: [], subject: undefined, issuer: undefined, claims: {}, scopes: [], apiKey: undefined, spiffe: undefined, address, bearer: undefined };
}

/**
 * A stable, non-secret name for "this caller", stored in the session token so that a
 * session presented with someone else's credentials is refused. Anonymous callers share one.
 */
export function principalKey(identity: Identity): string {
  if (identity.methods.length === 0) return 'anonymous';
  return JSON.stringify([identity.issuer ?? '', identity.subject ?? '', identity.apiKey?.name ?? '', identity.spiffe ?? '']);
}
