import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody } from './body.ts';

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A server that hands each request to `onRequest` and answers with what it returns (or the error's message). */
async function serve(onRequest: (req: IncomingMessage) => Promise<string>): Promise<string> {
  server = createServer((req, res) => {
    onRequest(req).then(
      (text) => res.end(text),
      (err: Error & { status?: number }) => res.writeHead(err.status ?? 500).end(err.message),
    );
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

function post(url: string, chunks: Array<string | Buffer>, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('readBody', () => {
  it('reads a body sent in pieces, multi-byte characters split across them included', async () => {
    const url = await serve((req) => readBody(req, 1024));
    const euro = Buffer.from('€');
    const res = await post(url, ['{"a":"', euro.subarray(0, 1), euro.subarray(1), '"}']);
    expect(res).toEqual({ status: 200, text: '{"a":"€"}' });
  });

  it('refuses a declared length over the limit before reading, and a body that grows past it', async () => {
    const url = await serve((req) => readBody(req, 8));
    const declared = await post(url, ['0123456789'], { 'content-length': '10' });
    expect(declared).toEqual({ status: 413, text: 'request body exceeds the limit of 8 bytes' });
    const chunked = await post(url, ['01234', '56789']);
    expect(chunked).toEqual({ status: 413, text: 'request body exceeds the limit of 8 bytes' });
  });

  it('once the body is read, later events on the request change nothing and a stream error is still handled', async () => {
    let seen: IncomingMessage | undefined;
    const url = await serve(async (req) => {
      const text = await readBody(req, 1024);
      seen = req;
      return text;
    });
    expect((await post(url, ['{}'])).text).toBe('{}');
    const req = seen!;
    expect(req.listenerCount('error')).toBeGreaterThan(0);
    expect(() => req.emit('error', new Error('late'))).not.toThrow();
    expect(() => req.emit('data', Buffer.from('more'))).not.toThrow();
  });

  it('rejects when the client goes away in the middle of the body', async () => {
    let outcome: Promise<string> | undefined;
    const arrived = new Promise<void>((resolve) => {
      server = createServer((req) => {
        outcome = readBody(req, 1024);
        req.once('data', () => resolve());
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const client = request(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/`, { method: 'POST', headers: { 'content-length': '100' } });
    client.on('error', () => {});
    client.write('{"partial":');
    await arrived;
    client.destroy();
    await expect(outcome).rejects.toThrow(/aborted|incomplete/);
  });
});
