/** Combines a target's rounds into one table row: medians, ratios to the baseline, all failures. */
import type { FailureSample } from './load.ts';
import { failedCalls, type Measurement } from './measure.ts';
import type { LoadSpec } from './scenario.ts';
import { median, sum } from './stats.ts';

export interface Row {
  scenario: string;
  target: string;
  /** What one operation is, e.g. "tools/call", "tools/list (200 tools)". */
  op: string;
  concurrency: number;
  rounds: number;
  rps: number;
  /** Progress notifications per second (streaming); NaN for other loads. */
  eventsPerS: number;
  p50: number;
  p99: number;
  p999: number;
  cpuUs: number;
  gcUs: number;
  behindCpuUs: number | undefined;
  peakRssMiB: number;
  /** Idle sessions: RSS growth per session in KiB, of the server and of the process behind it. */
  rssKiBPerOp: number | undefined;
  behindRssKiBPerOp: number | undefined;
  loaderCpuPct: number;
  /** CPU used by other processes on the machine during the runs, % of one core (median). */
  foreignCpuPct: number;
  /** Against the target's baseline; undefined on a baseline row itself. */
  ratio: { rps: number; p50: number; p99: number } | undefined;
  /** Responses that were not ok, plus socket errors, over all rounds. */
  failed: number;
  responses: number;
  statusCodes: Record<string, number>;
  failures: FailureSample[];
}

export function describeOp(spec: LoadSpec): string {
  switch (spec.mode) {
    case 'call':
      return spec.tools && spec.tools.length > 1 ? `tools/call, random of ${spec.tools.length}` : 'tools/call';
    case 'list':
      return `tools/list (${spec.expectTools} tools)`;
    case 'churn':
      return 'init+call+DELETE';
    case 'stream':
      return `tools/call + ${spec.steps} progress`;
    case 'idle':
      return `open session (of ${spec.sessions})`;
  }
}

function medianOf(values: ReadonlyArray<number | undefined>): number | undefined {
  const present = values.filter((v): v is number => v !== undefined);
  return present.length > 0 ? median(present) : undefined;
}

export function summarize(scenario: string, target: string, op: string, concurrency: number, runs: readonly Measurement[], baseline: Row | undefined): Row {
  const loads = runs.map((r) => r.load);
  const statusCodes: Record<string, number> = {};
  for (const load of loads) for (const [code, n] of Object.entries(load.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const failures = new Map<string, FailureSample>();
  for (const f of loads.flatMap((l) => l.failures)) {
    const key = `${f.kind} ${f.status ?? ''} ${f.detail}`;
    const seen = failures.get(key);
    if (seen) seen.count += f.count;
    else failures.set(key, { ...f });
  }
  const kib = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : bytes / 1024);
  const row: Row = {
    scenario,
    target,
    op,
    concurrency,
    rounds: runs.length,
    rps: median(loads.map((l) => l.rps)),
    eventsPerS: loads.some((l) => l.events > 0) ? median(loads.map((l) => l.eventsPerS)) : Number.NaN,
    p50: median(loads.map((l) => l.latencyMs.p50)),
    p99: median(loads.map((l) => l.latencyMs.p99)),
    p999: median(loads.map((l) => l.latencyMs.p999)),
    cpuUs: median(runs.map((r) => r.serverCpuUs)),
    gcUs: median(runs.map((r) => r.serverGcUs)),
    behindCpuUs: medianOf(runs.map((r) => r.behindCpuUs)),
    peakRssMiB: Math.max(...runs.map((r) => r.serverPeakRssMiB)),
    rssKiBPerOp: kib(medianOf(runs.map((r) => r.serverRssPerOp))),
    behindRssKiBPerOp: kib(medianOf(runs.map((r) => r.behindRssPerOp))),
    loaderCpuPct: median(loads.map((l) => l.loaderCpuPct)),
    foreignCpuPct: median(runs.map((r) => r.foreignCpuPct)),
    ratio: undefined,
    failed: sum(loads.map(failedCalls)),
    responses: sum(loads.map((l) => l.responses)),
    statusCodes,
    failures: [...failures.values()],
  };
  if (baseline) row.ratio = { rps: row.rps / baseline.rps, p50: row.p50 / baseline.p50, p99: row.p99 / baseline.p99 };
  return row;
}
