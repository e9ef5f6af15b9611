import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.ts';

/**
 * Reads a request body up to `limit` bytes. A declared Content-Length over the limit is
 * refused before reading anything; a body that grows past it while streaming is cut off.
 * Read with 'data' events rather than an async iterator: on the hot path the iterator's
 * machinery costs more than the body it reads.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    // The listeners stay on the request (taking them off costs more than reading the body):
    // once settled they do nothing, and hold no chunk, however long the request lives on.
    const settle = (): void => {
      settled = true;
      chunks = [];
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        settle();
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (settled) return;
      const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8');
      settle();
      resolve(text);
    });
    req.on('error', (err: Error) => {
      if (settled) return;
      settle();
      reject(err);
    });
    // 'close' before 'end': the client went away mid-body.
    req.on('close', () => {
      if (settled) return;
      settle();
      reject(new Error('request body incomplete: the client closed the connection'));
    });
  });
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body exceeds the limit of ${limit} bytes`);
}
