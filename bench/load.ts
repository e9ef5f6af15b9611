/**
 * The load generator, in its own process: runs one LoadSpec (see scenario.ts) against one
 * target with a fixed concurrency, for a warm-up that is thrown away and a measured period.
 * Every reply is checked (status, JSON-RPC id, expected result); anything else is counted
 * and sampled. One operation is checked end to end before the warm-up, so a broken setup
 * fails loudly before any numbers are taken.
 *
 * Run: node bench/load.ts --url URL [--mode call|list|churn|stream|idle] [--tool echo]
 *        [--tools a,b,c] [--expect-tools N] [--steps N] [--sessions N] [--header 'name: value']…
 *        [--concurrency 16] [--duration 10] [--warmup 2]
 * Prints one JSON line (LoadResult). Under the runner (an IPC channel exists) it sends
 * `{type:'warmed'}` after the warm-up and waits for `{type:'go'}`, and after printing the
 * result waits for `{type:'finish'}` before cleaning up (closing its sessions), so the runner
 * can sample the servers exactly around the measured period, and, for idle sessions, while
 * the sessions are still open.
 */
import { parseArgs } from 'node:util';
import { driveAutocannon } from './load-autocannon.ts';
import { deleteSessionOp, driveLoop, McpHttp, openSessionOp, requestOp, streamOp, type SessionHeaders, type Until } from './load-loop.ts';
import { Phase, textResultCheck, toolCountCheck, type Check, type FailureSample } from './load-phase.ts';
import { ACCEPT, closeSession, openSession, sessionHeaders, type McpSession } from './mcp-client.ts';
import type { LoadSpec } from './scenario.ts';

export type { FailureSample } from './load-phase.ts';

export interface LoadOptions extends LoadSpec {
  url: string;
  concurrency: number;
  duration: number;
  warmup: number;
}

export interface LoadResult {
  url: string;
  mode: LoadSpec['mode'];
  concurrency: number;
  /** Seconds the measured period actually lasted. */
  durationS: number;
  /** Operations answered in the measured period, right or wrong. */
  responses: number;
  /** Operations whose every reply was right. */
  ok: number;
  /** ok / durationS */
  rps: number;
  /** Progress notifications received (stream mode), and per second. */
  events: number;
  eventsPerS: number;
  /** Latency of the ok operations, in ms. */
  latencyMs: { p50: number; p99: number; p999: number; mean: number; max: number };
  /** HTTP status codes of every reply (an operation may make several requests). */
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
/**
 * Idle mode warms up on at most this many sessions (opened and closed again): enough for the
 * code paths to be compiled, few enough that the memory they leave behind for reuse hardly
 * shrinks the RSS growth measured next.
 */
const IDLE_WARMUP_SESSIONS = 200;

type Drive = (until: Until, phase: Phase) => Promise<{ elapsedS: number; timeouts: number }>;

/** How one LoadSpec is run: what it opens first, one warm-up or measured period, what it closes after. */
interface Mode {
  prepare(): Promise<void>;
  warm: Drive;
  measure: Drive;
  finish(): Promise<void>;
}

function seconds(until: Until): number {
  if (until.seconds === undefined || until.count !== undefined) throw new Error('this mode runs for a duration, not a count');
  return until.seconds;
}

/** Runs `op` once before any load and throws what went wrong, if anything did. */
async function probe(what: string, op: (phase: Phase) => Promise<unknown>): Promise<void> {
  const phase = new Phase();
  await driveLoop(1, { count: 1 }, phase, () => op(phase));
  if (phase.ok !== 1) throw new Error(`${what}: ${phase.firstFailure()}`);
}

/** call and list: one request per operation on one session, driven by autocannon. */
function singleRequestMode(options: LoadOptions, body: (id: number) => string, check: Check): Mode {
  let session: McpSession | undefined;
  const drive: Drive = (until, phase) =>
    driveAutocannon({ url: options.url, headers: { accept: ACCEPT, 'content-type': 'application/json', ...sessionHeaders(session!) }, body, check }, options.concurrency, seconds(until), phase);
  return {
    async prepare() {
      session = await openSession(options.url, options.headers);
      const http = new McpHttp(options.url, options.headers ?? {}, 1);
      try {
        await probe(`${options.mode} against ${options.url}`, (phase) => requestOp(http, phase, sessionHeaders(session!), JSON.parse(body(0)), 0, check));
      } finally {
        await http.close();
      }
    },
    warm: drive,
    measure: drive,
    async finish() {
      if (session) await closeSession(session).catch(() => undefined);
    },
  };
}

/** churn, stream and idle: operations run by the undici loop. */
function loopMode(options: LoadOptions, op: (http: McpHttp, phase: Phase, seq: number) => Promise<unknown>, hooks: { prepare?(http: McpHttp): Promise<void>; warmOp?: typeof op; finish?(http: McpHttp): Promise<void> } = {}): Mode {
  const http = new McpHttp(options.url, options.headers ?? {}, options.concurrency);
  const drive =
    (fn: typeof op): Drive =>
    (until, phase) =>
      driveLoop(options.concurrency, until, phase, (seq) => fn(http, phase, seq));
  return {
    async prepare() {
      await hooks.prepare?.(http);
      await probe(`${options.mode} against ${options.url}`, (phase) => (hooks.warmOp ?? op)(http, phase, 0));
    },
    warm: drive(hooks.warmOp ?? op),
    measure: drive(op),
    async finish() {
      await hooks.finish?.(http);
      await http.close();
    },
  };
}

function modeFor(options: LoadOptions): Mode {
  const tool = options.tool ?? 'echo';
  switch (options.mode) {
    case 'call': {
      const tools = options.tools?.length ? options.tools : [tool];
      const tails = tools.map((t) => `,"method":"tools/call","params":{"name":${JSON.stringify(t)},"arguments":{"text":${JSON.stringify(TEXT)}}}}`);
      return singleRequestMode(options, (id) => `{"jsonrpc":"2.0","id":${id}${tails[Math.floor(Math.random() * tails.length)]}`, textResultCheck(TEXT));
    }
    case 'list':
      if (options.expectTools === undefined) throw new Error('list mode needs --expect-tools');
      return singleRequestMode(options, (id) => `{"jsonrpc":"2.0","id":${id},"method":"tools/list","params":{}}`, toolCountCheck(options.expectTools));
    case 'churn': {
      const check = textResultCheck(TEXT);
      return loopMode(options, async (http, phase, seq) => {
        const session = await openSessionOp(http, phase, seq);
        try {
          await requestOp(http, phase, session, { jsonrpc: '2.0', id: seq, method: 'tools/call', params: { name: tool, arguments: { text: TEXT } } }, seq, check);
        } catch (err) {
          await deleteSessionOp(http, phase, session).catch(() => undefined);
          throw err;
        }
        await deleteSessionOp(http, phase, session);
      });
    }
    case 'stream': {
      const steps = options.steps ?? 100;
      const check = textResultCheck(`done ${steps}`);
      let session: SessionHeaders = {};
      return loopMode(options, (http, phase, seq) => streamOp(http, phase, session, tool, steps, seq, check), {
        async prepare(http) {
          session = await openSessionOp(http, new Phase(), 0);
        },
        async finish(http) {
          await deleteSessionOp(http, new Phase(), session).catch(() => undefined);
        },
      });
    }
    case 'idle': {
      const held: SessionHeaders[] = [];
      return loopMode(
        options,
        async (http, phase, seq) => {
          held.push(await openSessionOp(http, phase, seq));
        },
        {
          // Warm-up sessions are closed again: only the measured ones stay.
          warmOp: async (http, phase, seq) => deleteSessionOp(http, phase, await openSessionOp(http, phase, seq)),
          async finish(http) {
            const phase = new Phase();
            await driveLoop(options.concurrency, { count: held.length }, phase, (seq) => deleteSessionOp(http, phase, held[seq - 1]!));
            if (phase.ok !== held.length) process.stderr.write(`closing idle sessions: ${held.length - phase.ok} of ${held.length} failed (${phase.firstFailure()})\n`);
          },
        },
      );
    }
  }
}

/** Resolves when the runner sends `type`, after sending it `announce` (if given); at once when there is no runner. */
function fromRunner(type: string, announce?: string): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) return Promise.resolve();
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if ((message as { type?: unknown })?.type !== type) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
    if (announce) send({ type: announce });
  });
}

/** Runs the load; `onResult` gets the result as soon as it exists, before the mode cleans up. */
export async function runLoad(options: LoadOptions, onResult: (result: LoadResult) => Promise<void>): Promise<void> {
  const mode = modeFor(options);
  try {
    await mode.prepare();
    if (options.warmup > 0) await mode.warm(options.mode === 'idle' ? { seconds: options.warmup, count: IDLE_WARMUP_SESSIONS } : { seconds: options.warmup }, new Phase());
    await fromRunner('go', 'warmed');
    const phase = new Phase();
    const cpuBefore = process.cpuUsage();
    const until: Until = options.mode === 'idle' ? { count: options.sessions ?? 10_000 } : { seconds: options.duration };
    const { elapsedS, timeouts } = await mode.measure(until, phase);
    const cpu = process.cpuUsage(cpuBefore);
    const h = phase.histogram;
    const ms = (us: number): number => us / 1000;
    const non2xx = [...phase.statusCodes].filter(([s]) => s < 200 || s > 299).reduce((n, [, c]) => n + c, 0);
    await onResult({
      url: options.url,
      mode: options.mode,
      concurrency: options.concurrency,
      durationS: elapsedS,
      responses: phase.responses,
      ok: phase.ok,
      rps: phase.ok / elapsedS,
      events: phase.events,
      eventsPerS: phase.events / elapsedS,
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
    });
    await fromRunner('finish');
  } finally {
    await mode.finish();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      mode: { type: 'string', default: 'call' },
      tool: { type: 'string', default: 'echo' },
      tools: { type: 'string' },
      'expect-tools': { type: 'string' },
      steps: { type: 'string', default: '100' },
      sessions: { type: 'string', default: '10000' },
      header: { type: 'string', multiple: true, default: [] },
      concurrency: { type: 'string', default: '16' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
    },
  });
  const modes = ['call', 'list', 'churn', 'stream', 'idle'];
  if (!values.url || !modes.includes(values.mode)) {
    process.stderr.write(
      'usage: node bench/load.ts --url URL [--mode call|list|churn|stream|idle] [--tool echo] [--tools a,b] [--expect-tools N] [--steps N] [--sessions N] [--header "name: value"]… [--concurrency 16] [--duration 10] [--warmup 2]\n',
    );
    process.exit(2);
  }
  const headers: Record<string, string> = {};
  for (const h of values.header) {
    const colon = h.indexOf(':');
    if (colon > 0) headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  // Under the runner: leave when it does.
  const orphaned = (): never => process.exit(1);
  process.on('disconnect', orphaned);
  await runLoad(
    {
      url: values.url,
      mode: values.mode as LoadSpec['mode'],
      tool: values.tool,
      ...(values.tools ? { tools: values.tools.split(',') } : {}),
      ...(values['expect-tools'] !== undefined ? { expectTools: Number(values['expect-tools']) } : {}),
      steps: Number(values.steps),
      sessions: Number(values.sessions),
      headers,
      concurrency: Number(values.concurrency),
      duration: Number(values.duration),
      warmup: Number(values.warmup),
    },
    (result) => new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, () => resolve())),
  );
  process.off('disconnect', orphaned);
  process.exit(0);
}
