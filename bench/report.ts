/** Renders rows as a console table and as a markdown section appended to bench/RESULTS.md. */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Row } from './summary.ts';

const HEADERS = [
  'scenario',
  'target',
  'conc',
  'req/s',
  'p50 ms',
  'p99 ms',
  'p99.9 ms',
  'CPU µs/call',
  'upstream CPU µs/call',
  'peak RSS MiB',
  'ratio req/s',
  'ratio p50',
  'ratio p99',
  'errors',
  'loader CPU %',
  'other CPU %',
];

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const times = (n: number | undefined): string => (n === undefined ? '—' : `${fixed(n, 2)}×`);

function cells(row: Row): string[] {
  return [
    row.scenario,
    row.target,
    String(row.concurrency),
    fixed(row.rps, 0),
    fixed(row.p50, 2),
    fixed(row.p99, 2),
    fixed(row.p999, 2),
    fixed(row.cpuUs, 0),
    row.behindCpuUs === undefined ? '—' : fixed(row.behindCpuUs, 0),
    fixed(row.peakRssMiB, 0),
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
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(cells(r)))].join('\n');
}

export function markdownTable(rows: readonly Row[]): string {
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  const align = HEADERS.map((_, i) => (i < 2 ? ':--' : '--:'));
  return [line(HEADERS), line(align), ...rows.map((r) => line(cells(r)))].join('\n');
}

/** Every distinct failure seen, per row, for the console and the results file. */
export function failureReport(rows: readonly Row[]): string[] {
  const out: string[] = [];
  for (const row of rows) {
    if (row.failed === 0) continue;
    out.push(`${row.scenario} / ${row.target} / c=${row.concurrency}: ${row.failed} of ${row.responses} responses failed; status codes ${JSON.stringify(row.statusCodes)}`);
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

const FILE_HEADER = `# Benchmark results

Appended by \`npm run bench\` (bench/run.ts), newest last; every section records the machine it ran on.
Numbers from different machines, or from runs where the load generator saturated a core, are
not comparable.

Columns: **req/s** successful calls per second; **p50/p99/p99.9 ms** latency of successful calls as
the load generator saw it; **CPU µs/call** CPU time (user+system) of the process the load hits
(the upstream for \`direct\`, the gateway for \`gateway\`) divided by responses; **upstream CPU µs/call**
the same for the upstream behind the gateway; **peak RSS MiB** of the process the load hits (100 ms
sampling); **ratio** the row against the scenario's first target (direct); **errors** responses that
were not HTTP 200 with the right JSON-RPC result, plus socket errors; **loader CPU %** the load
generator's own CPU use (near 100% means the loader, not the server, was the limit); **other CPU %**
what every other process on the machine used meanwhile, in % of one core (well above a few percent
means the run competed with other work and is not trustworthy).
Every figure is the median over the interleaved rounds (peak RSS: the maximum).
`;

export interface Settings {
  duration: number;
  warmup: number;
  rounds: number;
  concurrency: number[];
  cpuProf: boolean;
}

export function appendResults(file: string, rows: readonly Row[], settings: Settings, notes: readonly string[]): void {
  if (!existsSync(file)) writeFileSync(file, FILE_HEADER);
  const failures = failureReport(rows);
  const section = [
    '',
    `## ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    '',
    `- Machine: ${machineDescription()}`,
    `- Gateway commit: ${gitDescription()}`,
    `- Settings: ${settings.duration} s measured after ${settings.warmup} s warm-up, ${settings.rounds} interleaved round(s) (median), concurrency ${settings.concurrency.join(', ')}; one MCP session per run, keep-alive connections (autocannon)${settings.cpuProf ? '; gateway under --cpu-prof' : ''}`,
    '',
    markdownTable(rows),
    '',
    ...(failures.length > 0 ? ['Errors under load:', '', '```', ...failures, '```', ''] : []),
    ...notes.map((n) => `- ${n}`),
    ...(notes.length > 0 ? [''] : []),
  ].join('\n');
  appendFileSync(file, section);
}
