import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigObject } from '../../config/load.ts';
import type { RemoteBackendIR } from '../../ir/types.ts';
import { HttpPools } from './http-pools.ts';
import { responseTo } from './responses.ts';
import { StreamableHttpSession } from './streamable-http.ts';

describe('the connections to an upstream origin', () => {
  const streams: ServerResponse[] = [];
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      // A server stream: open for as long as the client listens.
      res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': open\n\n');
      streams.push(res);
      return;
    }
    req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { ok: true } })));
  });
  const pools = new HttpPools(1, 8);
  let backend: RemoteBackendIR;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
    const ir = loadConfigObject({ backends: [{ name: 'b', transport: 'streamable-http', url, timeout: '2s' }], listeners: [{ name: 'l', port: 0, routes: [{ name: 'r', path: '/mcp', backends: ['b'] }] }] }, 'test.yaml');
    backend = ir.backends.get('b') as RemoteBackendIR;
  });

  afterAll(async () => {
    pools.close();
    for (const s of streams) s.end();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps server streams apart from requests: sessions that listen never leave requests without a connection', async () => {
    const session = new StreamableHttpSession({ backend, pools: pools.get(backend.origin), sessionId: 'up-1', protocolVersion: '2025-11-25', maxMessageBytes: 1 << 20 });
    const listening = new AbortController();
    const ignore = (): void => {};
    // More streams than the request pool's one connection.
    for (let i = 0; i < 3; i++) session.listen({ message: ignore, end: ignore, fail: ignore }, listening.signal);
    await new Promise<void>((resolve) => {
      const check = (): unknown => (streams.length === 3 ? resolve() : setTimeout(check, 10));
      check();
    });
    const request = { jsonrpc: '2.0' as const, id: 1, method: 'tools/list' };
    expect((await responseTo('b', request, (sink) => session.request(request, sink))).message).toMatchObject({ id: 1, result: { ok: true } });
    listening.abort();
  });
});
