import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { LimitsIR, TlsIR } from '../ir/types.ts';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../telemetry/logger.ts';
import { HttpError } from './errors.ts';
import { createServer } from './node-http.ts';

export type ListenerLimits = Pick<LimitsIR, 'maxHeaderBytes' | 'maxHeaders' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'maxConnections'>;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * One HTTP listener. Errors thrown by the handler become responses here, in one place;
 * nothing a single request does can take the process down.
 */
export class Listener {
  readonly name: string;
  private readonly server: Server;

  constructor(name: string, handler: RequestHandler, logger: Logger, limits: ListenerLimits, tls?: TlsIR) {
    this.name = name;
    const options = {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // Node enforces the two timeouts only when it checks connections: often enough to matter.
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.headersTimeoutMs / 2)),
      keepAliveTimeout: 65_000,
    };
    const serve = (req: IncomingMessage, res: ServerResponse): void => {
      // Node keeps at most maxHeadersCount headers and drops the rest silently: one over the limit means too many.
      if (req.rawHeaders.length / 2 > limits.maxHeaders) {
        respondError(res, new HttpError(431, `more than ${limits.maxHeaders} request headers`), logger);
        return;
      }
      // Handlers may throw before their first await: those errors are answered the same way.
      try {
        handler(req, res).catch((err: unknown) => respondError(res, err, logger));
      } catch (err) {
        respondError(res, err, logger);
      }
    };
    this.server = tls
      ? createHttpsServer(
          { ...options, cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: tls.requireClientCert } : {}) },
          serve,
        )
      : createServer(options, serve);
    this.server.maxHeadersCount = limits.maxHeaders + 1;
    this.server.maxConnections = limits.maxConnections;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable) socket.end(`HTTP/1.1 ${CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else socket.destroy();
      logger.debug({ listener: name, err: err.message }, 'client error');
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  get address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  /** Stops accepting, lets requests in progress finish until the deadline, then cuts the rest. */
  async close(graceMs: number): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([closed, deadline]);
    this.server.closeAllConnections();
    await closed;
  }
}

/** Parser failures a client caused, answered before any handler runs. */
const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
};

export function respondError(res: ServerResponse, err: unknown, logger: Logger): void {
  const status = err instanceof HttpError ? err.status : 500;
  if (status === 500) logger.error({ err }, 'unhandled error in a request');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const message = err instanceof HttpError ? err.message : 'Internal server error';
  // MCP clients read JSON-RPC errors even from HTTP failures.
  const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: status === 404 ? -32001 : -32000, message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(err instanceof HttpError ? err.headers : {}) });
  res.end(body);
}
