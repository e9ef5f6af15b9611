/**
 * A token issuer for the policy-stack scenario, in the runner's process: an ES256 key pair,
 * its public half served as a JWKS document on 127.0.0.1, and tokens signed with jose. The
 * gateway fetches the JWKS once and caches it, so serving it here costs nothing during runs.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export interface Issuer {
  issuer: string;
  jwksUrl: string;
  /** A token for `subject` and `audience`, valid for two hours. */
  token(subject: string, audience: string): Promise<string>;
  close(): Promise<void>;
}

export async function startIssuer(): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const kid = 'bench-key-1';
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] });
  const server = createServer((req, res) => {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer: `${origin}/`,
    jwksUrl: `${origin}/jwks.json`,
    token: (subject, audience) =>
      new SignJWT({ scope: 'mcp' })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(`${origin}/`)
        .setSubject(subject)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(privateKey),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
