import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Guards } from '../mcp/guard/guards.ts';
import { metrics } from '../telemetry/metrics.ts';
import { readBody } from './body.ts';
import { HttpError } from './errors.ts';

/** What the admin endpoints report on and act upon; the gateway implements it. */
export interface AdminView {
  readonly ready: boolean;
  readonly guards: Guards;
}

/**
 * The admin listener's routes, kept off the data plane's port (and on loopback by
 * default): liveness, readiness, metrics, and the tool quarantine.
 */
export function adminHandler(view: AdminView): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'GET /healthz':
        return text(res, 200, 'ok\n');
      case 'GET /readyz':
        return view.ready ? text(res, 200, 'ready\n') : text(res, 503, 'not ready\n');
      case 'GET /metrics':
        return text(res, 200, await metrics.metrics(), metrics.contentType);
      case 'GET /quarantine':
        return json(res, 200, { quarantined: view.guards.all().flatMap((g) => g.quarantined()) });
      case 'POST /quarantine/approve': {
        const body = parseApproval(await readBody(req, 16 * 1024));
        const guard = view.guards.get(body.backend);
        if (!guard) throw new HttpError(404, `no backend ${body.backend}`);
        guard.approve(body.tool, body.sha256);
        return json(res, 200, { approved: body });
      }
      default:
        throw new HttpError(404, `no admin endpoint ${route}`);
    }
  };
}

function parseApproval(text: string): { backend: string; tool: string; sha256: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'expected JSON: {"backend", "tool", "sha256"}');
  }
  const v = value as Record<string, unknown>;
  if (typeof v.backend !== 'string' || typeof v.tool !== 'string' || typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256)) {
    throw new HttpError(400, 'expected {"backend": string, "tool": string, "sha256": 64 hex digits}');
  }
  return { backend: v.backend, tool: v.tool, sha256: v.sha256 };
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  text(res, status, JSON.stringify(body), 'application/json');
}
