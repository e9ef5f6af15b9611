import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { HttpError } from '../../http/errors.ts';
import type { AuthenticationIR, OAuthIR } from '../../ir/types.ts';
import type { Identity } from '../identity.ts';
import { anonymous } from '../identity.ts';
import { matchApiKey } from './api-keys.ts';
import { AuthError } from './errors.ts';
import { JwtVerifier } from './jwt.ts';

import { spiffeIdOf } from './spiffe.ts';

/** Fetches a JSON document through the gateway's SSRF guard. */
export type OutboundFetch = (url: URL) => Promise<unknown>;

const BEARER = /^Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i;

/**
 * The authentication stage of a route, compiled once per config load: it turns the
 * credentials on a request (bearer JWT, API key, client certificate) into an Identity, or
 * refuses the request with a 401/403 that tells an MCP client where to get a token.
 */
export class Authenticator {
  private readonly ir: AuthenticationIR;
  private readonly oauth: OAuthIR | undefined;
  private readonly jwt: JwtVerifier | undefined;
  private readonly challenge: string;

  constructor(ir: AuthenticationIR, oauth: OAuthIR | undefined, fetchJson: OutboundFetch) {
    this.ir = ir;
    this.oauth = oauth;
    this.jwt =
      ir.jwt &&
      new JwtVerifier(
        ir.jwt.map((i) => ({ ...i, audiences: [...i.audiences], algorithms: [...i.algorithms], ...(i.jwks ? { jwks: { keys: [...i.jwks.keys] } } : {}) })),
        { fetchJwks: (url) => fetchJson(url) },
      );
    this.challenge = oauth
      ? `Bearer resource_metadata="${new URL(oauth.metadataPath, oauth.resource).href}"${oauth.requiredScopes.length ? `, scope="${oauth.requiredScopes.join(' ')}"` : ''}`
      : 'Bearer realm="switchboard"';
  }

  async authenticate(req: IncomingMessage, address: string): Promise<Identity> {
    if (/[?&]access_token=/.test(req.url ?? '')) {
      throw this.refuse(new AuthError('invalid_request', 'tokens in the query string are not accepted; send an Authorization header'));
    }
    const methods: Array<'jwt' | 'apiKey' | 'mtls'> = [];
    let identity = anonymous(address);
    try {
      const authorization = req.headers.authorization;
      if (this.jwt && authorization !== undefined) {
        const token = BEARER.exec(authorization)?.[1];
        if (!token) throw new AuthError('invalid_request', 'malformed Authorization header: expected "Bearer <token>"');
        const verified = await this.jwt.verify(token);
        methods.push('jwt');
        identity = { ...identity, subject: verified.subject, issuer: verified.issuer, claims: verified.claims, scopes: verified.scopes, bearer: token };
      }
      const keys = this.ir.apiKeys;
      const presented = keys && req.headers[keys.header];
      if (keys && presented !== undefined) {
        const entry = typeof presented === 'string' ? matchApiKey(presented, keys.keys) : undefined;
        if (!entry) throw new AuthError('invalid_token', 'unknown API key');
        methods.push('apiKey');
        // The key has done its job: no later stage (policies, external authorizer) sees it.
        delete req.headers[keys.header];
        identity = { ...identity, subject: identity.subject ?? entry.name, apiKey: { name: entry.name, attributes: entry.attributes } };
      }
      if (this.ir.mtls) {
        const spiffe = 'encrypted' in req.socket ? spiffeIdOf(req.socket as TLSSocket) : undefined;
        if (spiffe) {
          methods.push('mtls');
          identity = { ...identity, subject: identity.subject ?? spiffe, spiffe };
        } else if (this.ir.mtls.required) {
          // No credential at all: a bare challenge (RFC 6750 §3.1), like a missing token.
          throw this.refuse(undefined);
        }
      }
    } catch (err) {
      if (err instanceof AuthError) throw this.refuse(err);
      throw err;
    }
    if (methods.length === 0 && this.ir.mode === 'strict') throw this.refuse(undefined);
    identity = { ...identity, methods };
    if (methods.includes('jwt') && this.oauth) {
      const missing = this.oauth.requiredScopes.filter((s) => !identity.scopes.includes(s));
      if (missing.length > 0) throw this.refuse(new AuthError('insufficient_scope', `the token lacks scope ${missing.join(' ')}`));
    }
    return identity;
  }

  /**
   * A token is verified once and remembered until it expires: agents send the same token
   * with every call, and a signature check costs more than the rest of the request.
   * Bounded; when full it starts over. (Keys are not re-fetched for a remembered token,
   * exactly as a token verified a moment ago stays valid until its exp.)
   */
  /** 401 (or 403 for scope, 400 for a malformed request) with the challenge MCP clients follow to get a token. */
  private refuse(err: AuthError | undefined): HttpError {
    if (!err) return new HttpError(401, 'authentication required', { 'www-authenticate': this.challenge });
    const header = `${this.challenge}, error="${err.code}", error_description="${err.message.replace(/["\\]/g, '')}"`;
    return new HttpError(err.status, err.message, { 'www-authenticate': header });
  }
}
