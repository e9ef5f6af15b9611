/**
 * `npm run bench`: runs the selected scenarios' targets in interleaved rounds at each
 * concurrency, prints one table and appends it to bench/RESULTS.md.
 *
 * Every process (upstreams, gateways, proxies, load generators) is a child of this one, or
 * a registered child of one of them; all of them are stopped when the bench ends, fails, or
 * is interrupted.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SETTINGS, parseBenchArgs, USAGE } from './args.ts';
import { killAllChildren, stopAllChildren } from './child.ts';
import { compareWithPast, describeChanges, parseResults } from './history.ts';
import { warmUntilSettled } from './warm-up.ts';
import { checkoutOrExit } from './worktree.ts';
import { failedCalls, measure, type Measurement } from './measure.ts';
import { appendResults, consoleTable, describeSettings, failureReport, machineDescription, type ScenarioSettings } from './report.ts';
import { roundOrder, type RunSettings, type Scenario, type ScenarioContext, type Target } from './scenario.ts';
import { idleSessions, sessionChurn, sseStreaming, toolsCallOverHttp } from './scenarios/direct-vs-gateway.ts';
import { federation } from './scenarios/federation.ts';
import { policyStackScenario } from './scenarios/policy-stack.ts';
import { stdioVsMcpProxy } from './scenarios/stdio-vs-mcp-proxy.ts';
import { describeOp, summarize, type Row } from './summary.ts';

/** Add scenarios here; the runner needs nothing else from them. */
const SCENARIOS: Array<() => Scenario> = [toolsCallOverHttp, stdioVsMcpProxy, federation, sessionChurn, sseStreaming, idleSessions, policyStackScenario];

const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const PROFILE_DIR = fileURLToPath(new URL('./profiles/', import.meta.url));
const V8_LOG_DIR = join(tmpdir(), 'switchboard-bench-v8');
/** Loader CPU above this (% of one core) means the load generator may have been the limit. */
const LOADER_BUSY_PCT = 90;
/** Other processes using more than this (% of one core) during a run make its numbers suspect. */
const FOREIGN_BUSY_PCT = 10;
/** Screening runs that pick the slowest of several candidates (Target.slowestOf), in seconds. */
const SCREEN = { duration: 1, warmup: 0.5 };

process.on('exit', () => killAllChildren());
/** Set on Ctrl-C/SIGTERM: what the interrupted run still prints is not recorded. */
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping child processes\n`);
    void stopAllChildren(3_000).finally(() => process.exit(130));
  });
}

const args = parseBenchArgs(process.argv.slice(2));
const ctx: ScenarioContext = { gatewayExecArgv: [], gatewayLogLevel: args.gatewayLog, idleSessions: args.sessions, progressSteps: args.steps };
if (args.cpuProf) {
  mkdirSync(PROFILE_DIR, { recursive: true });
  ctx.gatewayExecArgv.push('--cpu-prof', '--cpu-prof-dir', PROFILE_DIR);
}
if (args.perfMap) {
  // V8 also writes a log per process with it: kept out of the working directory.
  mkdirSync(V8_LOG_DIR, { recursive: true });
  ctx.gatewayExecArgv.push('--perf-basic-prof-only-functions', `--logfile=${join(V8_LOG_DIR, 'v8.log')}`);
}

const all = SCENARIOS.map((make) => make());
const unknown = args.scenarios.filter((id) => !all.some((s) => s.id === id));
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario(s) ${unknown.join(', ')}; there are ${all.map((s) => s.id).join(', ')}\n${USAGE}\n`);
  process.exit(2);
}
const selected = args.scenarios.length === 0 ? all : args.scenarios.map((id) => all.find((s) => s.id === id)!);
if (args.against !== undefined && !selected.some((s) => s.measuresAgainst)) {
  process.stderr.write(`--against applies to scenarios ${all.filter((s) => s.measuresAgainst).map((s) => s.id).join(', ')}; none of them is selected\n`);
  process.exit(2);
}
if (args.against !== undefined) {
  const worktree = checkoutOrExit(args.against);
  ctx.against = { commit: worktree.commit, dir: worktree.dir };
}

const settingsOf = (scenario: Scenario): RunSettings => ({ ...DEFAULT_SETTINGS, ...scenario.defaults, ...args.settings });
const scenarioSettings: ScenarioSettings[] = selected.map((s) => ({ name: s.name, ...settingsOf(s) }));

const log = (text: string): void => void process.stderr.write(`${text}\n`);
const fmt = (m: Measurement): string =>
  `${m.load.rps.toFixed(0)} ops/s${m.load.events > 0 ? ` (${m.load.eventsPerS.toFixed(0)} events/s)` : ''}, p50 ${m.load.latencyMs.p50.toFixed(2)} ms, p99 ${m.load.latencyMs.p99.toFixed(2)} ms, ` +
  `${m.serverCpuUs.toFixed(0)} µs CPU/op (GC ${m.serverGcUs.toFixed(1)})` +
  (m.serverRssPerOp !== undefined ? `, ${(m.serverRssPerOp / 1024).toFixed(1)} KiB/session` : '') +
  (m.behindRssPerOp !== undefined ? ` (upstream ${(m.behindRssPerOp / 1024).toFixed(1)})` : '') +
  `, ${failedCalls(m.load)} errors, other CPU ${m.foreignCpuPct.toFixed(0)}%`;

log(`machine: ${machineDescription()}`);
for (const s of scenarioSettings) log(`settings ${describeSettings(s)}`);

/**
 * The slowest of a target's candidates at this concurrency, by ops/s in short screening runs
 * (measured like any run, only shorter); it is then measured in the target's place. A
 * full-length run on the first candidate goes first and is thrown away: candidates usually
 * share a process, and a cold one would make whichever is screened first look slowest.
 */
async function slowest(target: Target, concurrency: number, settings: RunSettings, scenario: Scenario, notes: string[]): Promise<Target> {
  await measure(target.slowestOf![0]!, { concurrency, duration: settings.duration, warmup: settings.warmup });
  const screened: Array<{ candidate: Target; rps: number }> = [];
  for (const candidate of target.slowestOf!) {
    const m = await measure(candidate, { concurrency, ...SCREEN });
    // A candidate that fails is the one to look at: it counts as the slowest.
    screened.push({ candidate, rps: failedCalls(m.load) > 0 ? 0 : m.load.rps });
    log(`  c=${concurrency} screen ${candidate.name}: ${fmt(m)}`);
  }
  screened.sort((a, b) => a.rps - b.rps);
  const pick = screened[0]!;
  notes.push(
    `${scenario.name} / ${target.name} / c=${concurrency}: ${pick.candidate.name}, the slowest of ${screened.length} in ${SCREEN.duration} s screening runs ` +
      `(${screened.map((s) => `${s.candidate.name} ${s.rps.toFixed(0)}`).join(', ')} ops/s)`,
  );
  return { ...pick.candidate, name: `${target.name} (${pick.candidate.name})` };
}

/** Rounds of the warm-up's length, thrown away, until the target's CPU per operation holds still (warm-up.ts). */
async function warmUp(target: Target, concurrency: number, settings: RunSettings, scenario: Scenario, notes: string[]): Promise<void> {
  const round = { concurrency, duration: settings.warmup, warmup: 0 };
  const settled = await warmUntilSettled([target], round, args.warmRounds, (n, [cpu]) => log(`  c=${concurrency} warm-up ${n} ${target.name}: ${cpu!.toFixed(0)} µs CPU/op`));
  if (!settled) notes.push(`${scenario.name} / ${target.name} / c=${concurrency}: CPU per operation still moved by more than 5% after ${args.warmRounds} warm-up rounds of ${round.duration} s; the JIT may not have settled.`);
}

/** One row against another, for a note: ratios of throughput and latency, the CPU and memory it costs more. */
function comparison(row: Row, other: Row): string {
  const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
  const delta = (a: number, b: number, unit: string): string => `${a >= b ? '+' : '−'}${Math.abs(a - b).toFixed(0)} ${unit}`;
  return `ops/s ${ratio(row.rps, other.rps)}, p50 ${ratio(row.p50, other.p50)}, p99 ${ratio(row.p99, other.p99)}, CPU ${delta(row.cpuUs, other.cpuUs, 'µs/op')}, peak RSS ${delta(row.peakRssMiB, other.peakRssMiB, 'MiB')}`;
}

const rows: Row[] = [];
const notes: string[] = [];
/** Scenarios that could not finish, with why. */
const aborted: string[] = [];
try {
  for (const scenario of selected) {
    const settings = settingsOf(scenario);
    log(`\n${scenario.name}: starting`);
    try {
      await scenario.setup(ctx);
      /** Whether the running processes have served a round already (see Scenario.freshEachRound). */
      let used = false;
      for (const concurrency of settings.concurrency) {
        // Targets are objects of the current processes; runs and baselines go by position.
        const runs = scenario.targets.map(() => [] as Measurement[]);
        let stand: Target[] = [];
        for (let round = 1; round <= settings.rounds; round++) {
          if (scenario.freshEachRound && used) {
            log(`  restarting the processes for a fresh round`);
            await scenario.teardown();
            await scenario.setup(ctx);
            stand = [];
          }
          used = true;
          if (stand.length === 0) {
            for (const target of scenario.targets) stand.push(target.slowestOf ? await slowest(target, concurrency, settings, scenario, notes) : target);
            // Fresh processes for every round measure memory from a cold start, on purpose; --warmup 0 asks for none.
            if (!scenario.freshEachRound && settings.warmup > 0 && args.warmRounds > 0) for (const target of stand) await warmUp(target, concurrency, settings, scenario, notes);
          }
          for (const i of roundOrder(stand.length, round)) {
            const measured = stand[i]!;
            const m = await measure(measured, { concurrency, duration: settings.duration, warmup: settings.warmup });
            runs[i]!.push(m);
            log(`  c=${concurrency} round ${round}/${settings.rounds} ${measured.name}: ${fmt(m)}`);
          }
        }
        const rowAt: Row[] = [];
        for (const [i, target] of scenario.targets.entries()) {
          const baseline = scenario.targets.indexOf(target.baseline ?? scenario.targets[0]!);
          const row = summarize(scenario.name, stand[i]!.name, describeOp(target.load), concurrency, runs[i]!, baseline === i ? undefined : rowAt[baseline]);
          rowAt.push(row);
          rows.push(row);
          const where = `${scenario.name} / ${row.target} / ${row.op} / c=${concurrency}`;
          if (row.loaderCpuPct > LOADER_BUSY_PCT) notes.push(`${where}: the load generator used ${row.loaderCpuPct.toFixed(0)}% of a core; it may have been the bottleneck.`);
          if (row.foreignCpuPct > FOREIGN_BUSY_PCT) notes.push(`${where}: other processes used ${row.foreignCpuPct.toFixed(0)}% of a core during the runs; the numbers are disturbed.`);
        }
        for (const [i, target] of scenario.targets.entries()) {
          for (const reference of target.alsoAgainst ?? []) {
            const other = rowAt[scenario.targets.indexOf(reference)]!;
            notes.push(`${scenario.name} / ${rowAt[i]!.target} / c=${concurrency}: against ${other.target}: ${comparison(rowAt[i]!, other)}`);
          }
        }
      }
    } catch (err) {
      // One broken scenario does not cost the others' results; it fails the bench all the same.
      const message = err instanceof Error ? err.message : String(err);
      log(`${scenario.name}: FAILED: ${message}`);
      aborted.push(`${scenario.name}: ${message}`);
    } finally {
      await scenario.teardown();
      notes.push(...(scenario.notes?.() ?? []));
    }
  }
} finally {
  await stopAllChildren(3_000);
}

if (rows.length > 0 && existsSync(RESULTS_FILE)) {
  notes.push(...describeChanges(compareWithPast(rows, parseResults(readFileSync(RESULTS_FILE, 'utf8')), machineDescription())));
}
process.stdout.write(`\n${consoleTable(rows)}\n`);
const failures = [...aborted.map((a) => `scenario failed: ${a}`), ...failureReport(rows)];
if (failures.length > 0) process.stdout.write(`\nErrors under load:\n${failures.join('\n')}\n`);
if (notes.length > 0) process.stdout.write(`\n${notes.join('\n')}\n`);
if (args.cpuProf) process.stdout.write(`\nGateway CPU profiles: ${PROFILE_DIR} (open in Chrome DevTools → Performance, or VS Code)\n`);
if (args.record && !interrupted) {
  const caveat = args.cpuProf ? 'gateways under --cpu-prof: slower than normal' : ctx.against ? `with the gateway of ${ctx.against.commit} measured beside this one's` : undefined;
  appendResults(RESULTS_FILE, rows, scenarioSettings, caveat, [...aborted.map((a) => `Scenario failed: ${a}`), ...notes]);
  process.stdout.write(`\nAppended to ${RESULTS_FILE}\n`);
}
// Failed calls are a finding, not noise: make them visible to scripts and CI.
if (failures.length > 0) process.exitCode = 1;
