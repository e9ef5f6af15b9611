/** Renders rows as a console table and as a markdown section appended to bench/RESULTS.md. */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Row } from './summary.ts';

const HEADERS = [
  'scenario',
  'target',
  'op',
  'conc',
  'ops/s',
  'events/s',
  'p50 ms',
  'p99 ms',
  'p99.9 ms',
  'CPU µs/op',
  'GC µs/op',
  'upstream CPU µs/op',
  'peak RSS MiB',
  'RSS KiB/session',
  'upstream RSS KiB/session',
  'ratio ops/s',
  'ratio p50',
  'ratio p99',
  'errors',
  'loader CPU %',
  'other CPU %',
];
/** Left-aligned text columns; the rest are numbers. */
const TEXT_COLUMNS = 3;

const fixed = (n: number | undefined, digits: number): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '—');
const times = (n: number | undefined): string => (n === undefined ? '—' : `${fixed(n, 2)}×`);

function cells(row: Row): string[] {
  return [
    row.scenario,
    row.target,
    row.op,
    String(row.concurrency),
    fixed(row.rps, 0),
    fixed(row.eventsPerS, 0),
    fixed(row.p50, 2),
    fixed(row.p99, 2),
    fixed(row.p999, 2),
    fixed(row.cpuUs, 0),
    fixed(row.gcUs, 1),
    fixed(row.behindCpuUs, 0),
    fixed(row.peakRssMiB, 0),
    fixed(row.rssKiBPerOp, 1),
    fixed(row.behindRssKiBPerOp, 1),
    times(row.ratio?.rps),
    times(row.ratio?.p50),
    times(row.ratio?.p99),
    row.failed === 0 ? '0' : `${row.failed} of ${row.responses}`,
    fixed(row.loaderCpuPct, 0),
    fixed(row.foreignCpuPct, 0),
  ];
}

export function consoleTable(rows: readonly Row[]): string {
  const table = [HEADERS, ...rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i < TEXT_COLUMNS ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(cells(r)))].join('\n');
}

export function markdownTable(rows: readonly Row[]): string {
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  const align = HEADERS.map((_, i) => (i < TEXT_COLUMNS ? ':--' : '--:'));
  return [line(HEADERS), line(align), ...rows.map((r) => line(cells(r)))].join('\n');
}

/** Every distinct failure seen, per row, for the console and the results file. */
export function failureReport(rows: readonly Row[]): string[] {
  const out: string[] = [];
  for (const row of rows) {
    if (row.failed === 0) continue;
    out.push(`${row.scenario} / ${row.target} / ${row.op} / c=${row.concurrency}: ${row.failed} of ${row.responses} operations failed; HTTP status codes seen ${JSON.stringify(row.statusCodes)}`);
    for (const f of row.failures) out.push(`  ${f.count}× ${f.kind}${f.status ? ` HTTP ${f.status}` : ''}: ${f.detail}`);
  }
  return out;
}

export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ${os.type()} ${os.release()}`;
}

function gitDescription(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${commit} (with uncommitted changes in src/)` : commit;
  } catch {
    return 'unknown';
  }
}

export const FILE_HEADER = `# Benchmark results

Appended by \`npm run bench\` (bench/run.ts), newest last; every section records the machine it ran on.
Numbers from different machines, or from runs where the load generator saturated a core, are
not comparable. bench/README.md describes the scenarios.

Columns: **op** what one operation is (one tools/call, one tools/list, a whole
initialize→initialized→tools/call→DELETE sequence, a call with its progress notifications, opening
one idle session); **ops/s** successful operations per second; **events/s** progress notifications
received per second (scenario e); **p50/p99/p99.9 ms** latency of successful operations as the load
generator saw it; **CPU µs/op** CPU time (user+system) of the process the load hits (the upstream
for \`direct\`, the gateway or proxy otherwise) divided by operations; **GC µs/op** the part of it the process's main thread spent in
garbage-collection pauses (what per-call garbage costs, and the first sign of objects that live
long enough to be promoted); **upstream CPU µs/op** the same
for the process behind it (the upstream, or the stdio server in scenario b); **peak RSS MiB** of the
process the load hits (100 ms sampling); **RSS KiB/session** (scenario f) RSS growth of the process
the load hits per idle session held, after a forced GC, and **upstream RSS KiB/session** the same
for the upstream behind it; **ratio** the row against its baseline (the scenario's first target,
or the row of the same op above it); **errors** operations that failed (wrong status, JSON-RPC error,
wrong result) plus socket errors; **loader CPU %** the load generator's own CPU use (near 100% means
the loader, not the server, was the limit); **other CPU %** what every other process on the machine
used meanwhile, in % of one core (well above a few percent means the run competed with other work
and is not trustworthy). Every figure is the median over the interleaved rounds (peak RSS: the
maximum). Sections before the scenarios b-g existed have fewer columns (req/s = ops/s).
`;

export interface ScenarioSettings {
  name: string;
  duration: number;
  warmup: number;
  rounds: number;
  concurrency: number[];
}

export function describeSettings(s: ScenarioSettings): string {
  return `${s.name}: ${s.duration} s measured after ${s.warmup} s warm-up, ${s.rounds} interleaved round(s) (median), concurrency ${s.concurrency.join(', ')}`;
}

/**
 * `caveat`: what made the run unlike a plain one (profiling, another gateway beside this one),
 * said on its Settings line; such a run is not the one the next is compared with.
 */
export function appendResults(file: string, rows: readonly Row[], settings: readonly ScenarioSettings[], caveat: string | undefined, notes: readonly string[]): void {
  if (!existsSync(file)) writeFileSync(file, FILE_HEADER);
  const failures = failureReport(rows);
  const section = [
    '',
    `## ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    '',
    `- Machine: ${machineDescription()}`,
    `- Gateway commit: ${gitDescription()}`,
    `- Settings${caveat ? ` (${caveat})` : ''}:`,
    ...settings.map((s) => `  - ${describeSettings(s)}`),
    '',
    markdownTable(rows),
    '',
    ...(failures.length > 0 ? ['Errors under load:', '', '```', ...failures, '```', ''] : []),
    ...notes.map((n) => `- ${n}`),
    ...(notes.length > 0 ? [''] : []),
  ].join('\n');
  appendFileSync(file, section);
}
