/** Combines a target's rounds into one table row: medians, ratios to the baseline, all failures. */
import type { FailureSample } from './load.ts';
import type { Measurement } from './measure.ts';
import { median, sum } from './stats.ts';

export interface Row {
  scenario: string;
  target: string;
  concurrency: number;
  rounds: number;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  cpuUs: number;
  behindCpuUs: number | undefined;
  peakRssMiB: number;
  loaderCpuPct: number;
  /** CPU used by other processes on the machine during the runs, % of one core (median). */
  foreignCpuPct: number;
  /** Against the scenario's first target; undefined on the baseline row itself. */
  ratio: { rps: number; p50: number; p99: number } | undefined;
  /** Responses that were not ok, plus socket errors, over all rounds. */
  failed: number;
  responses: number;
  statusCodes: Record<string, number>;
  failures: FailureSample[];
}

export function summarize(scenario: string, target: string, concurrency: number, runs: readonly Measurement[], baseline: Row | undefined): Row {
  const loads = runs.map((r) => r.load);
  const behind = runs.map((r) => r.behindCpuUs).filter((v): v is number => v !== undefined);
  const statusCodes: Record<string, number> = {};
  for (const load of loads) for (const [code, n] of Object.entries(load.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const failures = new Map<string, FailureSample>();
  for (const f of loads.flatMap((l) => l.failures)) {
    const key = `${f.kind} ${f.status ?? ''} ${f.detail}`;
    const seen = failures.get(key);
    if (seen) seen.count += f.count;
    else failures.set(key, { ...f });
  }
  const row: Row = {
    scenario,
    target,
    concurrency,
    rounds: runs.length,
    rps: median(loads.map((l) => l.rps)),
    p50: median(loads.map((l) => l.latencyMs.p50)),
    p99: median(loads.map((l) => l.latencyMs.p99)),
    p999: median(loads.map((l) => l.latencyMs.p999)),
    cpuUs: median(runs.map((r) => r.serverCpuUs)),
    behindCpuUs: behind.length > 0 ? median(behind) : undefined,
    peakRssMiB: Math.max(...runs.map((r) => r.serverPeakRssMiB)),
    loaderCpuPct: median(loads.map((l) => l.loaderCpuPct)),
    foreignCpuPct: median(runs.map((r) => r.foreignCpuPct)),
    ratio: undefined,
    failed: sum(loads.map((l) => l.responses - l.ok + l.socketErrors)),
    responses: sum(loads.map((l) => l.responses)),
    statusCodes,
    failures: [...failures.values()],
  };
  if (baseline) row.ratio = { rps: row.rps / baseline.rps, p50: row.p50 / baseline.p50, p99: row.p99 / baseline.p99 };
  return row;
}
