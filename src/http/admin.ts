import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.ts';

/** What the admin endpoints report on; the gateway implements it. */
export interface AdminView {
  readonly ready: boolean;
}

/**
 * The admin listener's routes, kept off the data plane's port: liveness, readiness, and
 * later metrics, the admin API and the UI.
 */
export function adminHandler(view: AdminView): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'admin endpoints are read-only', { allow: 'GET, HEAD' });
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/healthz':
        return text(res, 200, 'ok\n');
      case '/readyz':
        return view.ready ? text(res, 200, 'ready\n') : text(res, 503, 'not ready\n');
      default:
        throw new HttpError(404, `no admin endpoint ${path}`);
    }
  };
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
