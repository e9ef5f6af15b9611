import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch } from './dispatch.ts';

/** /ok answers at once; /hang never answers; /reset drops the connection. */
function startServer(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/ok') res.end('done');
    else if (req.url === '/reset') req.socket.destroy();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function readAll(body: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  for await (const chunk of body) text += chunk.toString();
  return text;
}

describe('an upstream exchange and the caller signal', () => {
  let server: Server;
  let pool: Pool;

  beforeAll(async () => {
    server = await startServer();
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 4 });
  });

  afterAll(async () => {
    await pool.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('leaves no listener on the signal once the response has ended', async () => {
    const signal = new AbortController().signal;
    const res = await dispatch(pool, { method: 'GET', path: '/ok' }, 5_000, signal);
    expect(await readAll(res.body)).toBe('done');
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('leaves no listener on the signal when the exchange fails', async () => {
    const signal = new AbortController().signal;
    await expect(dispatch(pool, { method: 'GET', path: '/reset' }, 5_000, signal)).rejects.toThrow();
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('is aborted by the signal while it waits, and lets go of it', async () => {
    const controller = new AbortController();
    const pending = dispatch(pool, { method: 'GET', path: '/hang' }, 5_000, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('client cancelled'));
    await expect(pending).rejects.toThrow('client cancelled');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
