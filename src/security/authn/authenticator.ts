import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { HttpError } from '../../http/errors.ts';
import type { AuthenticationIR, OAuthIR } from '../../ir/types.ts';
import type { AuthMethod, Identity } from '../identity.ts';
import type { MaybePromise } from '../../util/maybe-promise.ts';
import { matchApiKey } from './api-keys.ts';
import { AuthError } from './errors.ts';
import { JwtVerifier, type VerifiedJwt } from './jwt.ts';
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

  /**
   * The caller's identity, or a refusal. Synchronous unless a token must be verified (first
   * use, expired key cache): agents send the same token with every call, and its remembered
   * verification costs no promise.
   */
  authenticate(req: IncomingMessage, address: string): MaybePromise<Identity> {
    if (/[?&]access_token=/.test(req.url ?? '')) {
      throw this.refuse(new AuthError('invalid_request', 'tokens in the query string are not accepted; send an Authorization header'));
    }
    const authorization = req.headers.authorization;
    if (!this.jwt || authorization === undefined) return this.identify(req, address, undefined);
    const token = BEARER.exec(authorization)?.[1];
    if (!token) throw this.refuse(new AuthError('invalid_request', 'malformed Authorization header: expected "Bearer <token>"'));
    const recalled = this.jwt.recall(token);
    if (recalled) return this.identify(req, address, { token, verified: recalled });
    return this.jwt.verify(token).then(
      (verified) => this.identify(req, address, { token, verified }),
      (err: unknown) => {
        throw err instanceof AuthError ? this.refuse(err) : err;
      },
    );
  }

  /** The identity from a verified bearer token (if any) and the request's other credentials. */
  private identify(req: IncomingMessage, address: string, bearer: { token: string; verified: VerifiedJwt } | undefined): Identity {
    const methods: AuthMethod[] = bearer ? ['jwt'] : [];
    let subject = bearer?.verified.subject;
    let subjectFrom: AuthMethod | undefined = subject === undefined ? undefined : 'jwt';
    let apiKey: Identity['apiKey'];
    let spiffe: string | undefined;
    const keys = this.ir.apiKeys;
    const presented = keys && req.headers[keys.header];
    if (keys && presented !== undefined) {
      const entry = typeof presented === 'string' ? matchApiKey(presented, keys.keys) : undefined;
      if (!entry) throw this.refuse(new AuthError('invalid_token', 'unknown API key'));
      methods.push('apiKey');
      // The key has done its job: no later stage (policies, external authorizer) sees it.
      delete req.headers[keys.header];
      if (subject === undefined) [subject, subjectFrom] = [entry.name, 'apiKey'];
      apiKey = { name: entry.name, attributes: entry.attributes };
    }
    if (this.ir.mtls) {
      spiffe = 'encrypted' in req.socket ? spiffeIdOf(req.socket as TLSSocket) : undefined;
      if (spiffe) {
        methods.push('mtls');
        if (subject === undefined) [subject, subjectFrom] = [spiffe, 'mtls'];
      } else if (this.ir.mtls.required) {
        // No credential at all: a bare challenge (RFC 6750 §3.1), like a missing token.
        throw this.refuse(undefined);
      }
    }
    if (methods.length === 0 && this.ir.mode === 'strict') throw this.refuse(undefined);
    const scopes = bearer?.verified.scopes ?? [];
    if (bearer && this.oauth) {
      const missing = this.oauth.requiredScopes.filter((s) => !scopes.includes(s));
      if (missing.length > 0) throw this.refuse(new AuthError('insufficient_scope', `the token lacks scope ${missing.join(' ')}`));
    }
    return {
      methods,
      subject,
      subjectFrom,
      issuer: bearer?.verified.issuer,
      claims: bearer?.verified.claims ?? {},
      scopes,
      apiKey,
      spiffe,
      address,
      bearer: bearer?.token,
    };
  }

  /** 401 (or 403 for scope, 400 for a malformed request) with the challenge MCP clients follow to get a token. */
  private refuse(err: AuthError | undefined): HttpError {
    if (!err) return new HttpError(401, 'authentication required', { 'www-authenticate': this.challenge });
    const header = `${this.challenge}, error="${err.code}", error_description="${err.message.replace(/["\\]/g, '')}"`;
    return new HttpError(err.status, err.message, { 'www-authenticate': header });
  }
}
