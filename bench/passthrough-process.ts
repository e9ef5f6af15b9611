/**
 * The floor every HTTP proxy stands on: a blind pass-through that understands nothing of MCP.
 * node:http in front, the gateway's own upstream HTTP client behind (src/http/client/pool.ts,
 * the same pool settings); the request body is read whole, the reply is written on chunk by
 * chunk from the client's callbacks, untouched but for hop-by-hop headers. Scenario (a)
 * measures it next to the gateway, so the gateway's cost for understanding MCP shows apart
 * from the cost of being one more process and one more hop on a small machine.
 *
 * Run: node bench/passthrough-process.ts --upstream http://127.0.0.1:PORT/mcp
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { HttpClientPool, type ClientRequest } from '../src/http/client/pool.ts';
import { announce, serveProcessStats } from './proc-stats.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'te', 'trailer', 'proxy-connection']);
/** What the HTTP client writes itself, besides. */
const REQUEST_DROPPED = new Set([...HOP_BY_HOP, 'content-length']);

function forwardable(headers: IncomingHttpHeaders, dropped: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !dropped.has(name)) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

const { values } = parseArgs({ options: { upstream: { type: 'string' } } });
if (!values.upstream) {
  process.stderr.write('usage: node bench/passthrough-process.ts --upstream URL\n');
  process.exit(2);
}
const upstream = new URL(values.upstream);
const pool = new HttpClientPool(upstream.origin, { connections: 128, keepAliveMs: 30_000 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = chunks.length > 0 ? Buffer.concat(chunks).toString() : undefined;
    pool.dispatch(
      { method: req.method as ClientRequest['method'], path: req.url ?? '/', headers: forwardable(req.headers, REQUEST_DROPPED), body },
      {
        onResponseStart(status, headers) {
          res.writeHead(status, forwardable(headers, HOP_BY_HOP));
        },
        onResponseData(chunk) {
          res.write(chunk);
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError(err) {
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(err.message);
        },
      },
    );
  });
});
server.keepAliveTimeout = 30_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
serveProcessStats(() => {
  server.closeAllConnections();
  process.exit(0);
});
announce({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${upstream.pathname}` });
