import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, generateSecret, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthError } from './errors.ts';
import { JwtVerifier, type JwtIssuerOptions, type JwtVerifierOptions } from './jwt.ts';

const ISS = 'https://idp.example.test';
const AUD = 'switchboard';
const now = () => Math.floor(Date.now() / 1000);

interface Pair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

let rsa: Pair;
let ec: Pair;
let attacker: Pair;

async function pair(alg: string, kid: string): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' } };
}

beforeAll(async () => {
  [rsa, ec, attacker] = await Promise.all([pair('RS256', 'rsa-1'), pair('ES256', 'ec-1'), pair('RS256', 'attacker')]);
});

// --- a real JWKS endpoint on 127.0.0.1 ------------------------------------------------

interface Server {
  url: URL;
  hits: () => number;
}

const servers: Array<ReturnType<typeof createServer>> = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}/jwks.json`), hits: () => hits };
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Serves whatever `keys` holds at the time of each request, so tests can rotate keys. */
async function jwksServer(keys: JWK[]): Promise<Server> {
  return serve((_req, res) => json(res, { keys }));
}

// --- tokens ---------------------------------------------------------------------------

function issuer(overrides: Partial<JwtIssuerOptions>): JwtIssuerOptions {
  return { issuer: ISS, audiences: [AUD], algorithms: ['RS256', 'ES256'], clockToleranceSec: 30, ...overrides };
}

async function remoteVerifier(keys: JWK[] = [rsa.jwk, ec.jwk], options: JwtVerifierOptions = {}, overrides: Partial<JwtIssuerOptions> = {}) {
  const server = await jwksServer(keys);
  return { server, verifier: new JwtVerifier([issuer({ jwksUrl: server.url, ...overrides })], options) };
}

function inlineVerifier(keys: object[], overrides: Partial<JwtIssuerOptions> = {}): JwtVerifier {
  return new JwtVerifier([issuer({ jwks: { keys }, ...overrides })]);
}

/** A token from the test IdP; claims set to undefined are left out. */
async function sign(claims: JWTPayload = {}, key: CryptoKey | Uint8Array = rsa.privateKey, header: Record<string, unknown> = { alg: 'RS256', kid: 'rsa-1' }) {
  return new SignJWT({ iss: ISS, aud: AUD, sub: 'alice', iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader(header as { alg: string })
    .sign(key);
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS assembled by hand, for tokens jose refuses to produce. */
function compact(header: object, payload: object, sign: (input: string) => string = () => ''): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign(input)}`;
}

const claims = () => ({ iss: ISS, aud: AUD, sub: 'mallory', iat: now(), exp: now() + 300 });

async function expectRefused(verifier: JwtVerifier, token: string, reason: string): Promise<void> {
  const error = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected "${reason}"`).toBeInstanceOf(AuthError);
  const refusal = error as AuthError;
  expect(refusal.message).toBe(reason);
  expect(refusal.code).toBe('invalid_token');
  expect(refusal.status).toBe(401);
  expect(refusal.cause).toBeUndefined();
  const visible = `${refusal.message}\n${refusal.stack}\n${JSON.stringify(refusal)}`;
  for (const part of token.split('.').filter((part) => part.length >= 8)) expect(visible).not.toContain(part);
}

// --- tests ----------------------------------------------------------------------------

describe('JwtVerifier configuration', () => {
  const jwks = () => ({ keys: [rsa.jwk] });

  it('refuses alg none in any letter case', () => {
    for (const none of ['none', 'None', 'NONE', 'nOnE']) {
      expect(() => new JwtVerifier([issuer({ jwks: jwks(), algorithms: ['RS256', none] })])).toThrow(/none/);
    }
  });

  it('refuses unknown algorithms and an empty algorithm list', () => {
    expect(() => new JwtVerifier([issuer({ jwks: jwks(), algorithms: ['RS257'] })])).toThrow(/unsupported algorithm/);
    expect(() => new JwtVerifier([issuer({ jwks: jwks(), algorithms: [] })])).toThrow(/at least one algorithm/);
  });

  it('needs exactly one of jwksUrl and jwks', () => {
    expect(() => new JwtVerifier([issuer({})])).toThrow(/exactly one/);
    expect(() => new JwtVerifier([issuer({ jwks: jwks(), jwksUrl: new URL('https://idp.example.test/jwks') })])).toThrow(/exactly one/);
  });

  it('bounds clockToleranceSec to 0..300', () => {
    expect(() => new JwtVerifier([issuer({ jwks: jwks(), clockToleranceSec: 301 })])).toThrow(/clockToleranceSec/);
    expect(() => new JwtVerifier([issuer({ jwks: jwks(), clockToleranceSec: -1 })])).toThrow(/clockToleranceSec/);
    expect(() => new JwtVerifier([issuer({ jwks: jwks(), clockToleranceSec: 300 })])).not.toThrow();
  });

  it('refuses HMAC algorithms with a jwksUrl, duplicate issuers, missing audiences and a refresh interval above the cache time', () => {
    expect(() => new JwtVerifier([issuer({ jwksUrl: new URL('https://idp.example.test/jwks'), algorithms: ['HS256'] })])).toThrow(/inline jwks/);
    expect(() => new JwtVerifier([issuer({ jwks: jwks() }), issuer({ jwks: jwks() })])).toThrow(/twice/);
    expect(() => new JwtVerifier([issuer({ jwks: jwks(), audiences: [] })])).toThrow(/audience/);
    expect(() => new JwtVerifier([issuer({ jwks: jwks() })], { jwksCacheMs: 1000, jwksRefreshMinIntervalMs: 2000 })).toThrow(/jwksRefreshMinIntervalMs/);
  });
});

describe('JwtVerifier.verify', () => {
  it('accepts a valid RS256 token from a JWKS URL and returns the verified identity', async () => {
    const { verifier } = await remoteVerifier();
    const result = await verifier.verify(await sign({ scope: 'tools:read  tools:call', tenant: 'acme' }));
    expect(result.issuer).toBe(ISS);
    expect(result.subject).toBe('alice');
    expect(result.claims).toMatchObject({ iss: ISS, aud: AUD, tenant: 'acme' });
    expect(result.scopes).toEqual(['tools:read', 'tools:call']);
  });

  it('accepts ES256 and, without a kid, picks the key by algorithm', async () => {
    const { verifier } = await remoteVerifier();
    await expect(verifier.verify(await sign({}, ec.privateKey, { alg: 'ES256' }))).resolves.toMatchObject({ subject: 'alice' });
    await expect(verifier.verify(await sign({}, rsa.privateKey, { alg: 'RS256' }))).resolves.toMatchObject({ subject: 'alice' });
  });

  it('reads scopes from scp as an array or a string, and tolerates no scopes', async () => {
    const verifier = inlineVerifier([rsa.jwk]);
    expect((await verifier.verify(await sign({ scp: ['a', 'b', 7] }))).scopes).toEqual(['a', 'b']);
    expect((await verifier.verify(await sign({ scp: 'a b' }))).scopes).toEqual(['a', 'b']);
    expect((await verifier.verify(await sign({ sub: undefined }))).scopes).toEqual([]);
    expect((await verifier.verify(await sign({ sub: undefined }))).subject).toBeUndefined();
  });

  it('rejects an unknown or missing issuer before any key lookup or network call', async () => {
    let fetches = 0;
    const { server, verifier } = await remoteVerifier([rsa.jwk], {
      fetchJwks: async () => {
        fetches++;
        return { keys: [rsa.jwk] };
      },
    });
    await expectRefused(verifier, await sign({ iss: 'https://evil.example.test' }), 'unknown issuer');
    await expectRefused(verifier, await sign({ iss: undefined }), 'unknown issuer');
    await expectRefused(verifier, await sign({ iss: `${ISS}/` }), 'unknown issuer');
    expect(fetches).toBe(0);
    expect(server.hits()).toBe(0);
  });

  it('never fetches or uses jku, x5u, jwk or x5c from the token header', async () => {
    const trap = await jwksServer([attacker.jwk]);
    const { server, verifier } = await remoteVerifier();
    const header = {
      alg: 'RS256',
      jku: trap.url.href,
      x5u: trap.url.href,
      jwk: attacker.jwk,
      x5c: [Buffer.from('not a certificate').toString('base64')],
    };
    await expectRefused(verifier, await sign({}, attacker.privateKey, header), 'invalid signature');
    await expectRefused(verifier, await sign({}, attacker.privateKey, { ...header, kid: 'attacker' }), 'no matching key');
    expect(trap.hits()).toBe(0);
    expect(server.hits()).toBe(1);
  });

  it('rejects a token that carries its own jwk and is signed with that key', async () => {
    const verifier = inlineVerifier([rsa.jwk]);
    const { kid: _, ...embedded } = attacker.jwk;
    await expectRefused(verifier, await sign({}, attacker.privateKey, { alg: 'RS256', jwk: embedded }), 'invalid signature');
    await expectRefused(verifier, await sign({}, attacker.privateKey, { alg: 'RS256', kid: 'rsa-1', jwk: embedded }), 'invalid signature');
  });

  it('rejects alg none in any letter case', async () => {
    const verifier = inlineVerifier([rsa.jwk]);
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await expectRefused(verifier, compact({ alg, typ: 'JWT' }, claims()), 'unsigned token');
      await expectRefused(verifier, compact({ alg, kid: 'rsa-1' }, claims(), () => 'c2lnbmF0dXJl'), 'unsigned token');
    }
  });

  it("rejects algorithms outside the issuer's list even when the key exists", async () => {
    const verifier = inlineVerifier([rsa.jwk, ec.jwk], { algorithms: ['RS256'] });
    await expectRefused(verifier, await sign({}, ec.privateKey, { alg: 'ES256', kid: 'ec-1' }), 'algorithm not allowed');
    await expectRefused(verifier, compact({ alg: 'PS256', kid: 'rsa-1' }, claims(), () => 'c2lnbmF0dXJl'), 'algorithm not allowed');
  });

  it('rejects HS256 signed with the RSA public key as the HMAC secret', async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const forge = (secret: string) => (input: string) => createHmac('sha256', secret).update(input).digest('base64url');
    const forged = [
      compact({ alg: 'HS256', kid: 'rsa-1' }, claims(), forge(pem)),
      compact({ alg: 'HS256' }, claims(), forge(pem)),
      compact({ alg: 'HS256', kid: 'rsa-1' }, claims(), forge(JSON.stringify(rsa.jwk))),
    ];
    const rsaOnly = inlineVerifier([rsa.jwk], { algorithms: ['RS256'] });
    // Even an issuer that allows HS256 has no oct key, so nothing can verify an HMAC.
    const mixed = inlineVerifier([rsa.jwk], { algorithms: ['RS256', 'HS256'] });
    for (const token of forged) {
      await expectRefused(rsaOnly, token, 'algorithm not allowed');
      await expectRefused(mixed, token, 'no matching key');
    }
  });

  it('accepts HS256 only with a configured oct key, and never an RSA alg against that key', async () => {
    const secret = (await generateSecret('HS256', { extractable: true })) as Uint8Array | CryptoKey;
    const oct = { ...(await exportJWK(secret)), kid: 'shared' };
    const verifier = inlineVerifier([oct, rsa.jwk], { algorithms: ['HS256', 'RS256'] });
    await expect(verifier.verify(await sign({}, secret, { alg: 'HS256', kid: 'shared' }))).resolves.toMatchObject({ subject: 'alice' });
    await expectRefused(verifier, await sign({}, rsa.privateKey, { alg: 'RS256', kid: 'shared' }), 'no matching key');
  });

  it('rejects a tampered payload', async () => {
    const verifier = inlineVerifier([rsa.jwk]);
    const [header, , signature] = (await sign()).split('.');
    await expectRefused(verifier, `${header}.${b64({ ...claims(), sub: 'admin' })}.${signature}`, 'invalid signature');
  });

  it('checks exp, nbf and iat with the clock tolerance', async () => {
    const verifier = inlineVerifier([rsa.jwk], { clockToleranceSec: 30 });
    await expectRefused(verifier, await sign({ iat: now() - 600, exp: now() - 60 }), 'token expired');
    await expect(verifier.verify(await sign({ iat: now() - 600, exp: now() - 10 }))).resolves.toBeDefined();
    await expectRefused(verifier, await sign({ nbf: now() + 60 }), 'token not yet valid');
    await expect(verifier.verify(await sign({ nbf: now() + 10 }))).resolves.toBeDefined();
    await expectRefused(verifier, await sign({ iat: now() + 60 }), 'token issued in the future');
    await expect(verifier.verify(await sign({ iat: now() + 10 }))).resolves.toBeDefined();
    await expectRefused(verifier, await sign({ exp: undefined }), 'token has no valid expiry');
  });

  it('requires an audience that includes ours', async () => {
    const verifier = inlineVerifier([rsa.jwk], { audiences: [AUD, 'switchboard-eu'] });
    await expectRefused(verifier, await sign({ aud: undefined }), 'token has no audience');
    await expectRefused(verifier, await sign({ aud: 'someone-else' }), 'audience not accepted');
    await expectRefused(verifier, await sign({ aud: ['someone-else', 'another'] }), 'audience not accepted');
    await expect(verifier.verify(await sign({ aud: ['someone-else', 'switchboard-eu'] }))).resolves.toBeDefined();
    await expect(verifier.verify(await sign({ aud: AUD }))).resolves.toBeDefined();
  });

  it('refuses oversized tokens before parsing and malformed ones as "malformed token"', async () => {
    const verifier = inlineVerifier([rsa.jwk]);
    await expectRefused(verifier, await sign({ padding: 'x'.repeat(17 * 1024) }), 'token too large');
    const good = await sign();
    const [header, payload] = good.split('.');
    for (const token of [
      '',
      'abc',
      `${header}.${payload}`,
      `${good}.x.y`,
      `${header}.${payload}.sig.x.y`,
      `!!!.${payload}.sig`,
      `${b64('not json')}.${payload}.sig`,
      `${b64([1, 2])}.${payload}.sig`,
      `${header}.${b64('[]')}.sig`,
      `${header}.${b64('{"iss":')}.sig`,
      compact({ alg: 7 }, claims()),
      compact({ alg: 'RS256', kid: 42 }, claims()),
    ]) {
      await expectRefused(verifier, token, 'malformed token');
    }
  });

  it('never puts the token into error messages, stacks or serialized errors', async () => {
    const verifier = inlineVerifier([rsa.jwk]);
    const marker = `secret-${randomUUID()}`;
    const tokens = [
      await sign({ sub: marker, exp: now() - 600 }),
      await sign({ sub: marker, aud: marker }),
      await sign({ sub: marker, iss: marker }),
      await sign({ sub: marker }, attacker.privateKey, { alg: 'RS256', kid: marker }),
      compact({ alg: 'none', kid: marker }, { ...claims(), sub: marker }),
    ];
    for (const token of tokens) {
      const error = (await verifier.verify(token).catch((e: unknown) => e)) as AuthError;
      expect(error).toBeInstanceOf(AuthError);
      expect(`${error.message}${error.stack}${JSON.stringify(error)}`).not.toContain(marker);
      expect(`${error.message}${error.stack}`).not.toContain(token);
    }
  });
});

describe('remembered verifications', () => {
  it('a token differing only before its signature gets nothing from a remembered one', async () => {
    const verifier = inlineVerifier([rsa.jwk]);
    const token = await sign();
    await verifier.verify(token);
    const [header, , signature] = token.split('.');
    await expectRefused(verifier, `${header}.${b64({ ...claims(), sub: 'admin' })}.${signature}`, 'invalid signature');
    expect((await verifier.verify(token)).subject).toBe('alice');
  });

  it('a remembered token expires on time', async () => {
    const verifier = inlineVerifier([rsa.jwk], { clockToleranceSec: 0 });
    const token = await sign({ exp: now() + 1 });
    await verifier.verify(token);
    await new Promise((r) => setTimeout(r, 2_100));
    await expectRefused(verifier, token, 'token expired');
  });

  it('a remembered token is checked against the key set of the moment: a rotated-away key, or keys that cannot be refetched, refuse it', async () => {
    const keys = [rsa.jwk];
    let up = true;
    const server = await serve((_req, res) => (up ? json(res, { keys }) : json(res, {}, 503)));
    const verifier = new JwtVerifier([issuer({ jwksUrl: server.url })], { jwksCacheMs: 0, jwksRefreshMinIntervalMs: 0 });
    const token = await sign();
    await verifier.verify(token);
    keys.splice(0, 1, ec.jwk);
    await expectRefused(verifier, token, 'no matching key');
    keys.splice(0, 1, rsa.jwk);
    await verifier.verify(token);
    up = false;
    await expectRefused(verifier, token, 'signing keys unavailable');
  });
});

describe('recalling a remembered verification without waiting', () => {
  it('answers only for the very token verified before, while it holds', async () => {
    const verifier = inlineVerifier([rsa.jwk], { clockToleranceSec: 0 });
    const token = await sign({ exp: now() + 1 });
    expect(verifier.recall(token)).toBeUndefined();
    const result = await verifier.verify(token);
    expect(verifier.recall(token)).toBe(result);
    const [header, , signature] = token.split('.');
    expect(verifier.recall(`${header}.${b64({ ...claims(), sub: 'admin' })}.${signature}`)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2_100));
    expect(verifier.recall(token)).toBeUndefined();
  });

  it('leaves a token whose issuer keys are past their cache lifetime to verify()', async () => {
    const { verifier: fresh } = await remoteVerifier();
    const token = await sign();
    await fresh.verify(token);
    expect(fresh.recall(token)?.subject).toBe('alice');
    const { verifier: stale } = await remoteVerifier([rsa.jwk], { jwksCacheMs: 0, jwksRefreshMinIntervalMs: 0 });
    await stale.verify(token);
    expect(stale.recall(token)).toBeUndefined();
  });
});

describe('JWKS from a URL', () => {
  it('caches the key set for jwksCacheMs', async () => {
    const cached = await remoteVerifier();
    for (let i = 0; i < 5; i++) await cached.verifier.verify(await sign());
    expect(cached.server.hits()).toBe(1);

    const uncached = await remoteVerifier([rsa.jwk], { jwksCacheMs: 0, jwksRefreshMinIntervalMs: 0 });
    for (let i = 0; i < 3; i++) await uncached.verifier.verify(await sign());
    expect(uncached.server.hits()).toBe(3);
  });

  it('shares one in-flight fetch between concurrent verifications', async () => {
    const { server, verifier } = await remoteVerifier();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => sign()));
    const results = await Promise.all(tokens.map((token) => verifier.verify(token)));
    expect(results).toHaveLength(20);
    expect(server.hits()).toBe(1);
  });

  it('turns a flood of unknown kids into at most one fetch per refresh interval', async () => {
    const { server, verifier } = await remoteVerifier([rsa.jwk], { jwksRefreshMinIntervalMs: 60_000 });
    const flood = await Promise.all(Array.from({ length: 50 }, () => sign({}, attacker.privateKey, { alg: 'RS256', kid: randomUUID() })));
    await Promise.all(flood.map((token) => expectRefused(verifier, token, 'no matching key')));
    for (const token of flood) await expectRefused(verifier, token, 'no matching key');
    expect(server.hits()).toBe(1);
    await verifier.verify(await sign());
    expect(server.hits()).toBe(1);
  });

  it('refetches on an unknown kid once the interval allows, sharing one fetch among concurrent tokens', async () => {
    const keys = [rsa.jwk];
    const { server, verifier } = await remoteVerifier(keys, { jwksRefreshMinIntervalMs: 0 });
    await verifier.verify(await sign());
    expect(server.hits()).toBe(1);

    const rotated = await pair('RS256', 'rsa-2');
    keys.push(rotated.jwk);
    const tokens = await Promise.all(Array.from({ length: 10 }, () => sign({}, rotated.privateKey, { alg: 'RS256', kid: 'rsa-2' })));
    await Promise.all(tokens.map((token) => verifier.verify(token)));
    expect(server.hits()).toBe(2);
  });

  it('does not pick up a rotated key before the refresh interval has passed', async () => {
    const keys = [rsa.jwk];
    const { server, verifier } = await remoteVerifier(keys, { jwksRefreshMinIntervalMs: 60_000 });
    await verifier.verify(await sign());
    const rotated = await pair('RS256', 'rsa-2');
    keys.push(rotated.jwk);
    await expectRefused(verifier, await sign({}, rotated.privateKey, { alg: 'RS256', kid: 'rsa-2' }), 'no matching key');
    expect(server.hits()).toBe(1);
  });

  it('fails closed when the endpoint is down, without retrying inside the interval', async () => {
    const down = await serve((_req, res) => json(res, { error: 'unavailable' }, 503));
    const verifier = new JwtVerifier([issuer({ jwksUrl: down.url })]);
    await expectRefused(verifier, await sign(), 'signing keys unavailable');
    await expectRefused(verifier, await sign(), 'signing keys unavailable');
    expect(down.hits()).toBe(1);

    const closed = await serve(() => {});
    const refused = new JwtVerifier([issuer({ jwksUrl: closed.url })]);
    await new Promise((resolve) => servers.pop()!.close(resolve));
    await expectRefused(refused, await sign(), 'signing keys unavailable');
  });

  it('recovers once the endpoint is back and the interval has passed', async () => {
    let up = false;
    const server = await serve((_req, res) => (up ? json(res, { keys: [rsa.jwk] }) : json(res, {}, 500)));
    const verifier = new JwtVerifier([issuer({ jwksUrl: server.url })], { jwksRefreshMinIntervalMs: 0 });
    await expectRefused(verifier, await sign(), 'signing keys unavailable');
    up = true;
    await expect(verifier.verify(await sign())).resolves.toMatchObject({ subject: 'alice' });
    expect(server.hits()).toBe(2);
  });

  it('does not fall back to expired cached keys when the refetch fails', async () => {
    let up = true;
    const server = await serve((_req, res) => (up ? json(res, { keys: [rsa.jwk] }) : json(res, {}, 503)));
    const verifier = new JwtVerifier([issuer({ jwksUrl: server.url })], { jwksCacheMs: 0, jwksRefreshMinIntervalMs: 0 });
    await verifier.verify(await sign());
    up = false;
    await expectRefused(verifier, await sign(), 'signing keys unavailable');
    expect(server.hits()).toBe(2);
  });

  it('enforces the fetch timeout, even on a custom fetcher that ignores the signal', async () => {
    const hanging = await serve(() => {});
    const verifier = new JwtVerifier([issuer({ jwksUrl: hanging.url })], { jwksTimeoutMs: 100 });
    await expectRefused(verifier, await sign(), 'signing keys unavailable');
    expect(hanging.hits()).toBe(1);

    let signal: AbortSignal | undefined;
    const stubborn = new JwtVerifier([issuer({ jwksUrl: hanging.url })], {
      jwksTimeoutMs: 100,
      fetchJwks: (_url, given) => {
        signal = given;
        return new Promise(() => {});
      },
    });
    await expectRefused(stubborn, await sign(), 'signing keys unavailable');
    expect(signal?.aborted).toBe(true);
  });

  it('enforces maxJwksBytes with and without a content-length', async () => {
    const big = { keys: [rsa.jwk, ...Array.from({ length: 40 }, (_, i) => ({ ...ec.jwk, kid: `padding-${i}` }))] };
    const body = JSON.stringify(big);
    expect(body.length).toBeGreaterThan(4096);
    const declared = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    const chunked = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < body.length; i += 512) res.write(body.slice(i, i + 512));
      res.end();
    });
    for (const server of [declared, chunked]) {
      const small = new JwtVerifier([issuer({ jwksUrl: server.url })], { maxJwksBytes: 4096 });
      await expectRefused(small, await sign(), 'signing keys unavailable');
      const roomy = new JwtVerifier([issuer({ jwksUrl: server.url })]);
      await expect(roomy.verify(await sign())).resolves.toBeDefined();
    }
  });

  it('rejects a response that is not a JWKS document, and redirects', async () => {
    const target = await jwksServer([rsa.jwk]);
    const bodies = [
      (res: ServerResponse) => res.writeHead(200).end('<html>not json</html>'),
      (res: ServerResponse) => json(res, { keys: 'rsa-1' }),
      (res: ServerResponse) => json(res, [rsa.jwk]),
      (res: ServerResponse) => res.writeHead(302, { location: target.url.href }).end(),
    ];
    for (const body of bodies) {
      const server = await serve((_req, res) => body(res));
      await expectRefused(new JwtVerifier([issuer({ jwksUrl: server.url })]), await sign(), 'signing keys unavailable');
    }
    expect(target.hits()).toBe(0);
  });

  it('routes fetches through an injected fetchJwks', async () => {
    const server = await jwksServer([rsa.jwk]);
    const seen: string[] = [];
    const verifier = new JwtVerifier([issuer({ jwksUrl: server.url })], {
      fetchJwks: async (url, signal) => {
        seen.push(url.href);
        return (await fetch(url, { signal })).json();
      },
    });
    await verifier.verify(await sign());
    expect(seen).toEqual([server.url.href]);
    expect(server.hits()).toBe(1);
  });
});
