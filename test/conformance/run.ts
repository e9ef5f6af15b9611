/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode,
 * its default "active" suite) twice: straight against the conformance fixture, then against a
 * gateway federating that fixture. Prints both summaries with the failing checks and exits
 * non-zero when any active scenario fails in either run.
 *
 *   npm run conformance            (or: ./node_modules/.bin/node test/conformance/run.ts)
 *
 * Each run writes the suite's per-scenario checks.json files to its own directory in
 * os.tmpdir(); the summary prints where.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfigObject } from '../../src/config/load.ts';
import { Gateway } from '../../src/gateway.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { startConformanceFixture } from './fixture-server.ts';

/** One check from a scenario's checks.json (the suite's ConformanceCheck). */
export interface ConformanceCheck {
  id: string;
  name: string;
  description: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED' | string;
  errorMessage?: string;
  details?: unknown;
}

export interface ScenarioResult {
  scenario: string;
  passed: number;
  failed: number;
  warnings: number;
  /** The scenario's checks; empty when the suite could not run it or wrote nothing. */
  checks: ConformanceCheck[];
  /** Set when the suite reported the scenario but produced no checks for it (crash, timeout). */
  problem?: string;
}

export interface SuiteRun {
  label: string;
  url: string;
  /** The suite's exit code; null when it was killed (timeout). */
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** Where the suite wrote its checks.json files. */
  resultsDir: string;
  /** The scenarios the suite ran (its active suite), in order. */
  scenarios: ScenarioResult[];
  stdout: string;
  stderr: string;
}

export interface ConformanceRuns {
  direct: SuiteRun;
  gateway: SuiteRun;
}

export interface RunOptions {
  /** Kill one suite run after this long. Default 10 minutes. */
  timeoutMs?: number;
  /** Echo the suite's output while it runs. */
  echo?: boolean;
}

const require = createRequire(import.meta.url);

/** The suite's CLI entry point (its package.json "bin"). */
function conformanceBin(): string {
  const pkgPath = require.resolve('@modelcontextprotocol/conformance/package.json');
  const pkg = require(pkgPath) as { version: string; bin: string | Record<string, string> };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.conformance;
  if (!bin) throw new Error('@modelcontextprotocol/conformance has no "conformance" bin');
  return join(dirname(pkgPath), bin);
}

export function conformanceVersion(): string {
  return (require('@modelcontextprotocol/conformance/package.json') as { version: string }).version;
}

const SUMMARY_LINE = /^([✓✗]) (\S+): (\d+) passed, (\d+) failed$/;
const RUNNING_LINE = /^=== Running scenario: (\S+) ===$/;
const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

async function readChecks(resultsDir: string): Promise<Map<string, ConformanceCheck[]>> {
  const byScenario = new Map<string, ConformanceCheck[]>();
  for (const entry of await readdir(resultsDir, { withFileTypes: true })) {
    const match = entry.isDirectory() ? RESULT_DIR.exec(entry.name) : null;
    if (!match) continue;
    try {
      const checks = JSON.parse(await readFile(join(resultsDir, entry.name, 'checks.json'), 'utf8')) as ConformanceCheck[];
      byScenario.set(match[1]!, checks);
    } catch {
      // no checks.json: the scenario is reported from the suite's output instead
    }
  }
  return byScenario;
}

function count(checks: ConformanceCheck[], status: string): number {
  return checks.filter((c) => c.status === status).length;
}

/** Runs `conformance server --url URL -o DIR` (the active suite) and collects every scenario's checks. */
export async function runSuite(label: string, url: string, options: RunOptions = {}): Promise<SuiteRun> {
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  const resultsDir = await mkdtemp(join(tmpdir(), `switchboard-conformance-${label}-`));
  const started = performance.now();
  // The suite needs Node 22+; this file already runs on the project's Node 26 (type stripping).
  const child = spawn(process.execPath, [conformanceBin(), 'server', '--url', url, '-o', resultsDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (options.echo) process.stdout.write(chunk);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (options.echo) process.stderr.write(chunk);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  }).finally(() => clearTimeout(timer));
  const durationMs = performance.now() - started;

  const checks = await readChecks(resultsDir);
  const lines = stdout.split('\n').map((l) => l.trimEnd());
  const summarised = new Map<string, { passed: number; failed: number }>();
  for (const line of lines) {
    const m = SUMMARY_LINE.exec(line);
    if (m) summarised.set(m[2]!, { passed: Number(m[3]), failed: Number(m[4]) });
  }
  // Every scenario the suite started, in order (the summary is missing when the run was killed).
  const names = lines.map((l) => RUNNING_LINE.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  for (const name of summarised.keys()) if (!names.includes(name)) names.push(name);

  const scenarios = names.map((scenario): ScenarioResult => {
    const scenarioChecks = checks.get(scenario) ?? [];
    const result: ScenarioResult = {
      scenario,
      passed: count(scenarioChecks, 'SUCCESS'),
      failed: count(scenarioChecks, 'FAILURE'),
      warnings: count(scenarioChecks, 'WARNING'),
      checks: scenarioChecks,
    };
    const summary = summarised.get(scenario);
    if (scenarioChecks.length === 0) {
      // Thrown before checks.json was written: the suite says "Failed to run scenario X: ..." on stderr.
      const crash = stderr.split('\n').find((l) => l.startsWith(`Failed to run scenario ${scenario}:`));
      result.problem = crash ?? (summary ? 'the suite wrote no checks for this scenario' : 'the suite did not finish this scenario');
      result.failed = Math.max(summary?.failed ?? 0, 1);
    }
    return result;
  });

  return { label, url, exitCode, timedOut, durationMs, resultsDir, scenarios, stdout, stderr };
}

/** A scenario passes when it produced checks and none of them failed. */
export function scenarioPassed(s: ScenarioResult): boolean {
  return s.checks.length > 0 && s.failed === 0 && s.problem === undefined;
}

export function runPassed(run: SuiteRun): boolean {
  return !run.timedOut && run.exitCode === 0 && run.scenarios.length > 0 && run.scenarios.every(scenarioPassed);
}

/** One line per failing check ("scenario › check-id: message"), for assertions and reports. */
export function failureLines(run: SuiteRun): string[] {
  const out: string[] = [];
  if (run.timedOut) out.push(`(suite killed after timing out; exit ${run.exitCode})`);
  else if (run.scenarios.length === 0) out.push(`(suite ran no scenarios; exit ${run.exitCode})`);
  for (const s of run.scenarios) {
    if (s.problem !== undefined) out.push(`${s.scenario} › ${s.problem}`);
    for (const c of s.checks) {
      if (c.status === 'FAILURE') out.push(`${s.scenario} › ${c.id}: ${c.errorMessage ?? c.description}`);
    }
  }
  return out;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** The suite's own summary block plus the failing (and warning) checks with their messages. */
export function formatRun(run: SuiteRun): string {
  const out: string[] = [];
  const scenariosPassed = run.scenarios.filter(scenarioPassed).length;
  out.push(`── ${run.label}: ${run.url}`);
  out.push(
    `   ${scenariosPassed}/${run.scenarios.length} active scenarios passed, exit code ${run.exitCode ?? 'none'}` +
      `${run.timedOut ? ' (timed out)' : ''}, ${seconds(run.durationMs)}; results in ${run.resultsDir}`,
  );
  const summaryAt = run.stdout.indexOf('=== SUMMARY ===');
  if (summaryAt !== -1) {
    out.push(...run.stdout.slice(summaryAt).trim().split('\n').map((l) => `   ${l}`));
  }
  for (const s of run.scenarios) {
    const bad = s.checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
    if (bad.length === 0 && s.problem === undefined) continue;
    out.push('', `   ${scenarioPassed(s) ? '!' : '✗'} ${s.scenario}`);
    if (s.problem !== undefined) out.push(`       ${s.problem}`);
    for (const c of bad) {
      out.push(`       ${c.status} [${c.id}] ${c.name}: ${c.description}`);
      if (c.errorMessage) out.push(`         ${c.errorMessage}`);
    }
  }
  return out.join('\n');
}

/** Starts the gateway of the brief: one listener, one route /mcp, the fixture as its only backend. */
async function startGateway(fixtureUrl: string): Promise<{ url: string; stop(): Promise<void> }> {
  const ir = loadConfigObject(
    {
      listeners: [{ name: 'conf', host: '127.0.0.1', port: 0, routes: [{ name: 'mcp', path: '/mcp', backends: ['fixture'], toolPrefix: 'never' }] }],
      backends: [{ name: 'fixture', transport: 'streamable-http', url: fixtureUrl }],
      admin: { enabled: false },
    },
    'conformance',
  );
  const gateway = new Gateway(ir, silentLogger);
  await gateway.start();
  const port = gateway.addresses().get('conf')!.port;
  return { url: `http://127.0.0.1:${port}/mcp`, stop: () => gateway.stop() };
}

/** Fixture up; suite against it; gateway up in front of it; suite through the gateway; all down. */
export async function runConformance(options: RunOptions = {}): Promise<ConformanceRuns> {
  const fixture = await startConformanceFixture();
  try {
    const direct = await runSuite('direct', fixture.url, options);
    const gateway = await startGateway(fixture.url);
    try {
      const through = await runSuite('gateway', gateway.url, options);
      return { direct, gateway: through };
    } finally {
      await gateway.stop();
    }
  } finally {
    await fixture.close();
  }
}

export async function removeResults(runs: ConformanceRuns): Promise<void> {
  await Promise.all([runs.direct, runs.gateway].map((r) => rm(r.resultsDir, { recursive: true, force: true })));
}

if (import.meta.main) {
  const echo = process.argv.includes('--verbose');
  console.log(`MCP conformance suite ${conformanceVersion()} (server, active suite)\n`);
  const runs = await runConformance({ echo });
  console.log(formatRun(runs.direct));
  console.log('');
  console.log(formatRun(runs.gateway));
  const ok = runPassed(runs.direct) && runPassed(runs.gateway);
  console.log(
    `\n${ok ? 'PASS' : 'FAIL'}: direct ${runPassed(runs.direct) ? 'passed' : 'failed'}, through the gateway ${runPassed(runs.gateway) ? 'passed' : 'failed'}`,
  );
  process.exitCode = ok ? 0 : 1;
}
