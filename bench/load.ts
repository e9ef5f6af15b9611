/**
 * The load generator, in its own process: opens one MCP session on the target, then drives
 * tools/call with a fixed number of concurrent connections (autocannon) for a warm-up that is
 * thrown away and a measured period. Every response is checked: HTTP 200, a JSON-RPC response
 * with the request's own id, and the echoed text; anything else is counted and sampled.
 *
 * Run: node bench/load.ts --url URL [--tool echo] [--concurrency 16] [--duration 10] [--warmup 2]
 * Prints one JSON line (LoadResult). When started by the runner (an IPC channel exists) it
 * sends `{type:'warmed'}` after the warm-up and waits for `{type:'go'}`, so the runner can
 * sample the servers' CPU exactly around the measured period.
 */
import { createHistogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { ACCEPT, callTool, closeSession, openSession, parseRpcBody, sessionHeaders, type McpSession } from './mcp-client.ts';

export interface FailureSample {
  kind: 'http' | 'rpc-error' | 'mismatch' | 'socket';
  status?: number;
  detail: string;
  count: number;
}

export interface LoadResult {
  url: string;
  tool: string;
  concurrency: number;
  /** Seconds the measured period actually lasted. */
  durationS: number;
  /** Responses received in the measured period, good or bad. */
  responses: number;
  /** Responses that were HTTP 200 with the right id and the echoed text. */
  ok: number;
  /** ok / durationS */
  rps: number;
  /** Latency of the ok responses, in ms. */
  latencyMs: { p50: number; p99: number; p999: number; mean: number; max: number };
  statusCodes: Record<string, number>;
  non2xx: number;
  rpcErrors: number;
  mismatches: number;
  socketErrors: number;
  timeouts: number;
  /** Up to 10 distinct failures, with how often each was seen. */
  failures: FailureSample[];
  /** The load generator's own CPU use during the measured period, in % of one core. */
  loaderCpuPct: number;
}

const TEXT = 'hello from the switchboard bench';
const MAX_FAILURE_KINDS = 10;

interface Phase {
  ok: number;
  responses: number;
  statusCodes: Map<number, number>;
  rpcErrors: number;
  mismatches: number;
  socketErrors: number;
  failures: Map<string, FailureSample>;
  histogram: ReturnType<typeof createHistogram>;
}

function newPhase(): Phase {
  return { ok: 0, responses: 0, statusCodes: new Map(), rpcErrors: 0, mismatches: 0, socketErrors: 0, failures: new Map(), histogram: createHistogram() };
}

function noteFailure(phase: Phase, sample: Omit<FailureSample, 'count'>): void {
  const key = `${sample.kind} ${sample.status ?? ''} ${sample.detail}`;
  const seen = phase.failures.get(key);
  if (seen) seen.count++;
  else if (phase.failures.size < MAX_FAILURE_KINDS) phase.failures.set(key, { ...sample, count: 1 });
}

async function drive(session: McpSession, tool: string, concurrency: number, seconds: number): Promise<{ phase: Phase; elapsedS: number; timeouts: number }> {
  const phase = newPhase();
  let seq = 0;
  // onResponse runs just before autocannon's 'response' event for the same response.
  let lastOk = false;
  const prefix = '{"jsonrpc":"2.0","id":';
  const suffix = `,"method":"tools/call","params":{"name":${JSON.stringify(tool)},"arguments":{"text":${JSON.stringify(TEXT)}}}}`;

  const started = process.hrtime.bigint();
  const instance = autocannon({
    url: session.url,
    connections: concurrency,
    duration: seconds,
    timeout: 10,
    method: 'POST',
    headers: { accept: ACCEPT, 'content-type': 'application/json', ...sessionHeaders(session) },
    requests: [
      {
        setupRequest(request, context) {
          const id = ++seq;
          context.id = id;
          request.body = `${prefix}${id}${suffix}`;
          return request;
        },
        onResponse(status, body, context) {
          lastOk = false;
          phase.responses++;
          phase.statusCodes.set(status, (phase.statusCodes.get(status) ?? 0) + 1);
          if (status !== 200) {
            noteFailure(phase, { kind: 'http', status, detail: body.slice(0, 300) });
            return;
          }
          let message;
          try {
            message = parseRpcBody(body);
          } catch {
            message = undefined;
          }
          if (message?.error) {
            phase.rpcErrors++;
            noteFailure(phase, { kind: 'rpc-error', status, detail: JSON.stringify(message.error).slice(0, 300) });
            return;
          }
          const text = (message?.result as { content?: Array<{ text?: unknown }> } | undefined)?.content?.[0]?.text;
          if (message?.id !== context.id || text !== TEXT) {
            phase.mismatches++;
            noteFailure(phase, { kind: 'mismatch', status, detail: `expected id ${String(context.id)}: ${body.slice(0, 300)}` });
            return;
          }
          phase.ok++;
          lastOk = true;
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
    if (lastOk) phase.histogram.record(Math.max(1, Math.round(responseTimeMs * 1000)));
  });
  instance.on('reqError', (err: Error) => {
    phase.socketErrors++;
    noteFailure(phase, { kind: 'socket', detail: err.message });
  });
  const result = await instance;
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  return { phase, elapsedS, timeouts: result.timeouts };
}

/** Resolves when the runner says go; immediately when there is no runner. */
function handshake(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) return Promise.resolve();
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if ((message as { type?: unknown })?.type !== 'go') return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
    send({ type: 'warmed' });
  });
}

export async function runLoad(options: { url: string; tool: string; concurrency: number; duration: number; warmup: number }): Promise<LoadResult> {
  const session = await openSession(options.url);
  try {
    const probe = (await callTool(session, options.tool, { text: TEXT })) as { content?: Array<{ text?: unknown }> };
    if (probe.content?.[0]?.text !== TEXT) throw new Error(`tools/call ${options.tool} answered ${JSON.stringify(probe)}`);
    if (options.warmup > 0) await drive(session, options.tool, options.concurrency, options.warmup);
    await handshake();
    const cpuBefore = process.cpuUsage();
    const { phase, elapsedS, timeouts } = await drive(session, options.tool, options.concurrency, options.duration);
    const cpu = process.cpuUsage(cpuBefore);
    const h = phase.histogram;
    const ms = (us: number): number => us / 1000;
    const non2xx = [...phase.statusCodes].filter(([s]) => s < 200 || s > 299).reduce((n, [, c]) => n + c, 0);
    return {
      url: options.url,
      tool: options.tool,
      concurrency: options.concurrency,
      durationS: elapsedS,
      responses: phase.responses,
      ok: phase.ok,
      rps: phase.ok / elapsedS,
      latencyMs: {
        p50: ms(h.count ? h.percentile(50) : 0),
        p99: ms(h.count ? h.percentile(99) : 0),
        p999: ms(h.count ? h.percentile(99.9) : 0),
        mean: ms(h.count ? h.mean : 0),
        max: ms(h.count ? h.max : 0),
      },
      statusCodes: Object.fromEntries([...phase.statusCodes].map(([s, c]) => [String(s), c])),
      non2xx,
      rpcErrors: phase.rpcErrors,
      mismatches: phase.mismatches,
      socketErrors: phase.socketErrors,
      timeouts,
      failures: [...phase.failures.values()],
      loaderCpuPct: ((cpu.user + cpu.system) / 1e6 / elapsedS) * 100,
    };
  } finally {
    await closeSession(session).catch(() => undefined);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      tool: { type: 'string', default: 'echo' },
      concurrency: { type: 'string', default: '16' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
    },
  });
  if (!values.url) {
    process.stderr.write('usage: node bench/load.ts --url URL [--tool echo] [--concurrency 16] [--duration 10] [--warmup 2]\n');
    process.exit(2);
  }
  // Under the runner: leave when it does.
  const orphaned = (): never => process.exit(1);
  process.on('disconnect', orphaned);
  const result = await runLoad({
    url: values.url,
    tool: values.tool,
    concurrency: Number(values.concurrency),
    duration: Number(values.duration),
    warmup: Number(values.warmup),
  });
  process.off('disconnect', orphaned);
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}
