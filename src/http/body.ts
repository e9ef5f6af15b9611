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
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        finish();
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      finish();
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8'));
    };
    const onFail = (err?: Error): void => {
      finish();
      reject(err ?? new Error('request aborted'));
    };
    const finish = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      // A stream error after this must not go unhandled, but a listener of this reader's would
      // keep it (and every chunk of the body) alive for as long as the request is in flight.
      req.off('error', onFail);
      req.on('error', ignoreLateError);
    };
    // 'close' before 'end': the client went away mid-body.
    const onClose = (): void => onFail(new Error('request body incomplete: the client closed the connection'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onFail);
    req.on('close', onClose);
  });
}

/** The body is settled; whatever happens to the stream now is for the response's side to see. */
function ignoreLateError(): void {}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body exceeds the limit of ${limit} bytes`);
}
