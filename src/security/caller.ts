import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Identity } from './identity.ts';

/** The HTTP facts policies may read about the request that carried a message. */
export interface HttpFacts {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: IncomingHttpHeaders;
}

/** Who sent a message and over what request: the input of every later stage. */
export interface Caller {
  readonly identity: Identity;
  readonly http: HttpFacts;
}

export function callerOf(req: IncomingMessage, identity: Identity): Caller {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return { identity, http: { method: req.method ?? '', path: q === -1 ? url : url.slice(0, q), host: req.headers.host ?? '', headers: req.headers } };
}
