/**
 * The floor every HTTP proxy stands on: a blind pass-through that understands nothing of MCP.
 * node:http in front, an undici pool behind (the same pool settings as the gateway's); the
 * request body is read whole, the reply is written on chunk by chunk from undici's dispatcher
 * callbacks (no streams in between, the cheapest way through undici), untouched but for
 * hop-by-hop headers. Scenario (a)
 * measures it next to the gateway, so the gateway's cost for understanding MCP shows apart
 * from the cost of being one more process and one more hop on a small machine.
 *
 * Run: node bench/passthrough-process.ts --upstream http://127.0.0.1:PORT/mcp
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { announce, serveProcessStats } from './proc-stats.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'te', 'trailer', 'proxy-connection']);

function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

const { values } = parseArgs({ options: { upstream: { type: 'string' } } });
if (!values.upstream) {
  process.stderr.write('usage: node bench/passthrough-process.ts --upstream URL\n');
  process.exit(2);
}
const upstream = new URL(values.upstream);
const pool = new Pool(upstream.origin, { connections: 128, keepAliveTimeout: 30_000, pipelining: 1 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = chunks.length > 0 ? Buffer.concat(chunks) : null;
    pool.dispatch(
      { method: req.method as 'POST', path: req.url ?? '/', headers: forwardable(req.headers), body },
      {
        onRequestStart() {},
        onResponseStart(_controller, status, headers) {
          res.writeHead(status, forwardable(headers));
        },
        onResponseData(_controller, chunk) {
          res.write(chunk);
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError(_controller, err) {
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
