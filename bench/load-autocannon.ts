/**
 * The autocannon driver of the load generator, for operations that are one HTTP request on an
 * open session (tools/call, tools/list): keep-alive connections, each with one request in
 * flight, every reply checked.
 */
import autocannon from 'autocannon';
import type { Check, Phase } from './load-phase.ts';

export interface SingleRequest {
  url: string;
  /** Every header of the request (session, accept, content type, authorization). */
  headers: Record<string, string>;
  /** The JSON-RPC request with this id. */
  body(id: number): string;
  check: Check;
}

export async function driveAutocannon(request: SingleRequest, concurrency: number, seconds: number, phase: Phase): Promise<{ elapsedS: number; timeouts: number }> {
  let seq = 0;
  // onResponse runs just before autocannon's 'response' event for the same response.
  let lastOk = false;
  const started = process.hrtime.bigint();
  const instance = autocannon({
    url: request.url,
    connections: concurrency,
    duration: seconds,
    timeout: 10,
    method: 'POST',
    headers: request.headers,
    requests: [
      {
        setupRequest(params, context) {
          const id = ++seq;
          context.id = id;
          params.body = request.body(id);
          return params;
        },
        onResponse(status, body, context) {
          phase.responses++;
          phase.status(status);
          const failure = request.check(status, body, context.id as number);
          lastOk = failure === undefined;
          if (failure) phase.failed(failure);
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
    if (lastOk) phase.succeeded(responseTimeMs * 1000);
  });
  instance.on('reqError', (err: Error) => phase.failed({ kind: 'socket', detail: err.message }));
  const result = await instance;
  return { elapsedS: Number(process.hrtime.bigint() - started) / 1e9, timeouts: result.timeouts };
}
