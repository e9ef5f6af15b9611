/**
 * `npm run bench`: runs every scenario's targets in interleaved rounds at each concurrency,
 * prints the table and appends it to bench/RESULTS.md.
 *
 * Every process (upstream, gateway, load generator) is a child of this one; all of them are
 * stopped when the bench ends, fails, or is interrupted.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './args.ts';
import { killAllChildren, stopAllChildren } from './child.ts';
import { measure, type Measurement } from './measure.ts';
import { appendResults, consoleTable, failureReport, machineDescription } from './report.ts';
import type { Scenario, ScenarioContext } from './scenario.ts';
import { toolsCallOverHttp } from './scenarios/tools-call-http.ts';
import { summarize, type Row } from './summary.ts';

/** Add scenarios here; the runner needs nothing else from them. */
const SCENARIOS: Array<() => Scenario> = [toolsCallOverHttp];

const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const PROFILE_DIR = fileURLToPath(new URL('./profiles/', import.meta.url));
/** Loader CPU above this (% of one core) means the load generator may have been the limit. */
const LOADER_BUSY_PCT = 90;
/** Other processes using more than this (% of one core) during a run make its numbers suspect. */
const FOREIGN_BUSY_PCT = 10;

process.on('exit', () => killAllChildren());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping child processes\n`);
    void stopAllChildren(3_000).finally(() => process.exit(130));
  });
}

const args = parseBenchArgs(process.argv.slice(2));
const ctx: ScenarioContext = { gatewayExecArgv: [], gatewayLogLevel: args.gatewayLog };
if (args.cpuProf) {
  mkdirSync(PROFILE_DIR, { recursive: true });
  ctx.gatewayExecArgv = ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR];
}

const log = (text: string): void => void process.stderr.write(`${text}\n`);
const fmt = (m: Measurement): string =>
  `${m.load.rps.toFixed(0)} req/s, p50 ${m.load.latencyMs.p50.toFixed(2)} ms, p99 ${m.load.latencyMs.p99.toFixed(2)} ms, ` +
  `${m.serverCpuUs.toFixed(0)} µs CPU/call, ${m.load.responses - m.load.ok + m.load.socketErrors} errors, other CPU ${m.foreignCpuPct.toFixed(0)}%`;

log(`machine: ${machineDescription()}`);
log(`settings: ${args.duration}s measured + ${args.warmup}s warm-up, ${args.rounds} round(s), concurrency ${args.concurrency.join(',')}`);

const rows: Row[] = [];
const notes: string[] = [];
try {
  for (const make of SCENARIOS) {
    const scenario = make();
    log(`\n${scenario.name}: starting`);
    try {
      await scenario.setup(ctx);
      for (const concurrency of args.concurrency) {
        const runs = new Map(scenario.targets.map((t) => [t, [] as Measurement[]]));
        for (let round = 1; round <= args.rounds; round++) {
          for (const target of scenario.targets) {
            const m = await measure(target, { concurrency, duration: args.duration, warmup: args.warmup });
            runs.get(target)!.push(m);
            log(`  c=${concurrency} round ${round}/${args.rounds} ${target.name}: ${fmt(m)}`);
          }
        }
        let baseline: Row | undefined;
        for (const target of scenario.targets) {
          const row = summarize(scenario.name, target.name, concurrency, runs.get(target)!, baseline);
          baseline ??= row;
          rows.push(row);
          if (row.loaderCpuPct > LOADER_BUSY_PCT) {
            notes.push(`${scenario.name} / ${target.name} / c=${concurrency}: the load generator used ${row.loaderCpuPct.toFixed(0)}% of a core; it may have been the bottleneck.`);
          }
          if (row.foreignCpuPct > FOREIGN_BUSY_PCT) {
            notes.push(`${scenario.name} / ${target.name} / c=${concurrency}: other processes used ${row.foreignCpuPct.toFixed(0)}% of a core during the runs; the numbers are disturbed.`);
          }
        }
      }
    } finally {
      await scenario.teardown();
    }
  }
} finally {
  await stopAllChildren(3_000);
}

process.stdout.write(`\n${consoleTable(rows)}\n`);
const failures = failureReport(rows);
if (failures.length > 0) process.stdout.write(`\nErrors under load:\n${failures.join('\n')}\n`);
if (notes.length > 0) process.stdout.write(`\n${notes.join('\n')}\n`);
if (args.cpuProf) process.stdout.write(`\nGateway CPU profiles: ${PROFILE_DIR} (open in Chrome DevTools → Performance, or VS Code)\n`);
if (args.record) {
  appendResults(RESULTS_FILE, rows, args, notes);
  process.stdout.write(`\nAppended to ${RESULTS_FILE}\n`);
}
// Failed calls are a finding, not noise: make them visible to scripts and CI.
if (failures.length > 0) process.exitCode = 1;
