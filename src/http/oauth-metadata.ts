import type { ServerResponse } from 'node:http';
import type { OAuthIR } from '../ir/types.ts';

/**
 * RFC 9728 protected resource metadata: where MCP clients learn which authorization
 * server issues tokens for this route, after a 401 pointed them here.
 */
export function sendProtectedResourceMetadata(res: ServerResponse, oauth: OAuthIR): void {
  const body = JSON.stringify({
    resource: oauth.resource,
    authorization_servers: oauth.authorizationServers,
    scopes_supported: oauth.scopesSupported,
    bearer_methods_supported: ['header'],
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=300' });
  res.end(body);
}
