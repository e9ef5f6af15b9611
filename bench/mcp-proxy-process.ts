/**
 * The `mcp-proxy` npm package's own command-line program, unchanged, in a process of its own
 * that also answers the bench's CPU/memory probes: it serves streamable HTTP at /mcp in front
 * of a stdio command, here bench/stdio-echo.ts run by this same (pinned) Node.
 *
 * mcp-proxy takes a fixed --port and prints no address, so this picks a free port, hands the
 * program its arguments through process.argv, imports it (its top level starts the server and
 * resolves once it listens) and then announces the URL like every bench server.
 *
 * Run: node bench/mcp-proxy-process.ts
 */
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { announce, serveProcessStats } from './proc-stats.ts';

const bin = fileURLToPath(import.meta.resolve('mcp-proxy/package.json').replace(/package\.json$/, 'dist/bin/mcp-proxy.mjs'));
const stdioServer = fileURLToPath(new URL('./stdio-echo.ts', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const port = await freePort();
// The program's own options: HTTP streamable transport only (no legacy SSE endpoint), on loopback.
process.argv = [process.execPath, bin, '--port', String(port), '--host', '127.0.0.1', '--server', 'stream', '--', process.execPath, stdioServer];
// mcp-proxy installs its own SIGTERM/SIGINT handling (graceful shutdown, which stops the stdio
// server); once it has closed everything, only the IPC channel would keep this process alive.
serveProcessStats(() => process.kill(process.pid, 'SIGTERM'));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.channel?.unref());
await import(bin);
announce({ url: `http://127.0.0.1:${port}/mcp` });
