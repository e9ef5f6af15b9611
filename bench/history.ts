/**
 * What changed since the previous run on the same machine, read back from RESULTS.md: no
 * change may cost any scenario more than 5%. Only figures that hold still between runs are
 * compared: each row's ratios to its baseline, measured in the same run (absolute rates
 * drift with the machine by more than that), and memory per idle session. Both sides are
 * read from the markdown table report.ts writes, so they are rounded alike.
 */
import { markdownTable } from './report.ts';
import type { Row } from './summary.ts';

/** The columns compared, and which way is better. */
const FIGURES = { 'ratio ops/s': 'higher', 'ratio p50': 'lower', 'ratio p99': 'lower', 'RSS KiB/session': 'lower' } as const;
type Figure = keyof typeof FIGURES;

export const THRESHOLD = 0.05;

/**
 * How far a baseline's own CPU per operation may move between two runs before the machine
 * counts as another one: past it, ratios move with the machine as well (three busy processes
 * on two cores do not slow down alike), and only an A/B within one run can judge a change.
 */
export const MACHINE_DRIFT = 0.2;

interface Section {
  at: string;
  machine: string;
  commit: string;
  /** Profiled, with another gateway beside this one, or with failed operations: not a run to measure another against. */
  unrepresentative: boolean;
  rows: Map<string, Record<string, string>>;
}

/** One row of a results table, by column name; the key names the row across runs. */
function parseTable(lines: readonly string[]): Map<string, Record<string, string>> {
  const rows = new Map<string, Record<string, string>>();
  const split = (line: string): string[] => line.slice(2, -2).split(' | ');
  const header = lines[0] ? split(lines[0]) : [];
  // Sections from before the op column name their rows differently: nothing to compare.
  if (!header.includes('op')) return rows;
  for (const line of lines.slice(2)) {
    const cells = split(line);
    const row = Object.fromEntries(header.map((name, i) => [name, cells[i] ?? '']));
    rows.set(rowKey(row), row);
  }
  return rows;
}

function rowKey(row: Record<string, string>): string {
  return `${row.scenario} / ${row.target} / ${row.op} / c=${row.conc}`;
}

export function parseResults(markdown: string): Section[] {
  return markdown
    .split(/^## /m)
    .slice(1)
    .map((text) => {
      const lines = text.split('\n');
      return {
        at: lines[0]!.trim(),
        machine: /^- Machine: (.*)$/m.exec(text)?.[1] ?? '',
        commit: /^- Gateway commit: (.*)$/m.exec(text)?.[1] ?? '',
        unrepresentative: /^- Settings \(/m.test(text) || /^Errors under load:$/m.test(text),
        rows: parseTable(lines.filter((l) => l.startsWith('| '))),
      };
    });
}

/** The same machine: processor, cores, memory and Node; a kernel update does not make another one. */
export function comparableMachine(description: string): string {
  return description.replace(/, [^,]*$/, '');
}

function value(cell: string | undefined): number | undefined {
  const n = Number.parseFloat(cell ?? '');
  return Number.isFinite(n) ? n : undefined;
}

/** One unit of the last digit a cell shows: a change of one unit may be rounding alone. */
function roundingStep(cell: string): number {
  const decimals = /\.(\d+)/.exec(cell)?.[1]?.length ?? 0;
  return 10 ** -decimals;
}

export interface Change {
  row: string;
  figure: Figure;
  before: string;
  after: string;
  /** after / before − 1. */
  change: number;
  /** Beyond the threshold, and beyond what rounding the two cells can explain. */
  verdict: 'worse' | 'better' | 'held';
  since: { at: string; commit: string };
}

/** A baseline row of another server (direct, mcp-proxy) whose own CPU per operation moved past MACHINE_DRIFT. */
export interface Drift {
  row: string;
  before: string;
  after: string;
  change: number;
}

export interface Comparison {
  changes: Change[];
  compared: number;
  drifts: Drift[];
}

const BASELINE_CPU = 'CPU µs/op';
const SHOWN_DRIFTS = 3;

/**
 * Each figure of this run against the latest earlier run on the same machine that has the
 * same row (runs of some scenarios only are compared with what they measured).
 */
export function compareWithPast(rows: readonly Row[], sections: readonly Section[], machine: string): Comparison {
  const now = parseTable(markdownTable(rows).split('\n'));
  const same = sections.filter((s) => !s.unrepresentative && comparableMachine(s.machine) === comparableMachine(machine)).reverse();
  const changes: Change[] = [];
  const drifts: Drift[] = [];
  let compared = 0;
  for (const [key, row] of now) {
    const past = same.find((s) => s.rows.has(key));
    if (!past) continue;
    const old = past.rows.get(key)!;
    const drift = baselineDrift(key, old, row);
    if (drift) drifts.push(drift);
    for (const figure of Object.keys(FIGURES) as Figure[]) {
      const before = value(old[figure]);
      const after = value(row[figure]);
      // A figure of zero or less (memory that shrank within noise) has no relative change.
      if (before === undefined || after === undefined || before <= 0) continue;
      compared++;
      const change = after / before - 1;
      const moved = Math.abs(change) > THRESHOLD && Math.abs(after - before) > roundingStep(old[figure]!) * (1 + 1e-9);
      const improved = FIGURES[figure] === 'higher' ? change > 0 : change < 0;
      const verdict = !moved ? 'held' : improved ? 'better' : 'worse';
      changes.push({ row: key, figure, before: old[figure]!, after: row[figure]!, change, verdict, since: { at: past.at, commit: past.commit } });
    }
  }
  return { changes, compared, drifts };
}

/** A peer's baseline row whose own CPU per operation moved past MACHINE_DRIFT; (g)'s baseline is this gateway itself, whose cost a change may move. */
function baselineDrift(key: string, old: Record<string, string>, row: Record<string, string>): Drift | undefined {
  if (row['ratio ops/s'] !== '—' || row.target!.startsWith('gateway')) return undefined;
  const before = value(old[BASELINE_CPU]);
  const after = value(row[BASELINE_CPU]);
  if (!before || !after) return undefined;
  const change = after / before - 1;
  return Math.abs(change) > MACHINE_DRIFT ? { row: key, before: old[BASELINE_CPU]!, after: row[BASELINE_CPU]!, change } : undefined;
}

/** Notes for the console and RESULTS.md: every figure more than 5% worse or better, and how many held. */
export function describeChanges({ changes, compared, drifts }: Comparison): string[] {
  if (compared === 0) return ['Against earlier runs: none on this machine has these rows; this run is the first to compare with.'];
  const worse = changes.filter((c) => c.verdict === 'worse');
  const better = changes.filter((c) => c.verdict === 'better');
  const percent = (change: number): string => `${change > 0 ? '+' : '−'}${Math.abs(change * 100).toFixed(0)}%`;
  const line = (c: Change): string => `${c.row}: ${c.figure} ${c.before} → ${c.after} (${percent(c.change)}; before: ${c.since.at}, ${c.since.commit})`;
  const machineMoved =
    drifts.length === 0
      ? []
      : [
          `The machine was not in the state of those runs: the baselines' own CPU per operation moved by more than ${MACHINE_DRIFT * 100}% in ${drifts.length} row(s), ` +
            `so the ratios moved with it; judge a change by an A/B within one run (--against). ` +
            `${drifts.slice(0, SHOWN_DRIFTS).map((d) => `${d.row}: ${BASELINE_CPU} ${d.before} → ${d.after} (${percent(d.change)})`).join('; ')}` +
            `${drifts.length > SHOWN_DRIFTS ? `; and ${drifts.length - SHOWN_DRIFTS} more` : ''}.`,
        ];
  return [
    `Against the previous run on this machine: ${worse.length} of ${compared} figures worse by more than ${THRESHOLD * 100}%, ${better.length} better, the rest within ${THRESHOLD * 100}%.`,
    ...machineMoved,
    ...worse.map((c) => `Worse: ${line(c)}`),
    ...better.map((c) => `Better: ${line(c)}`),
  ];
}
