import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareWithPast, describeChanges, parseResults } from './history.ts';
import { appendResults, machineDescription } from './report.ts';
import type { Row } from './summary.ts';

const dir = mkdtempSync(join(tmpdir(), 'bench-history-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function row(target: string, rps: number, p50: number, baseline?: Row, rssKiB?: number): Row {
  const r: Row = {
    scenario: '(a) tools/call, streamable HTTP',
    target,
    op: 'tools/call',
    concurrency: 16,
    rounds: 3,
    rps,
    eventsPerS: Number.NaN,
    p50,
    p99: p50 * 4,
    p999: p50 * 6,
    cpuUs: 150,
    gcUs: 3,
    behindCpuUs: undefined,
    peakRssMiB: 130,
    rssKiBPerOp: rssKiB,
    behindRssKiBPerOp: undefined,
    loaderCpuPct: 40,
    foreignCpuPct: 0,
    ratio: undefined,
    failed: 0,
    responses: 1000,
    statusCodes: { 200: 1000 },
    failures: [],
  };
  if (baseline) r.ratio = { rps: rps / baseline.rps, p50: p50 / baseline.p50, p99: r.p99 / baseline.p99 };
  return r;
}

function run(direct: number, gateway: number): Row[] {
  const base = row('direct', direct, 2);
  return [base, row('gateway', gateway, (2 * direct) / gateway, base)];
}

function recorded(...runs: Row[][]): string {
  const file = join(dir, `results-${Math.random().toString(36).slice(2)}.md`);
  for (const rows of runs) appendResults(file, rows, [], undefined, []);
  return readFileSync(file, 'utf8');
}

describe('comparing a run with the previous one on the same machine', () => {
  it('reads back what the results file recorded, row by row', () => {
    const [section] = parseResults(recorded(run(4000, 3000)));
    expect(section!.machine).toBe(machineDescription());
    expect(section!.rows.get('(a) tools/call, streamable HTTP / gateway / tools/call / c=16')).toMatchObject({ 'ops/s': '3000', 'ratio ops/s': '0.75×', 'ratio p50': '1.33×' });
  });

  it('flags a ratio that got worse by more than 5%, and only that', () => {
    const past = parseResults(recorded(run(4000, 3000)));
    const slower = compareWithPast(run(4000, 2700), past, machineDescription());
    const notes = describeChanges(slower);
    expect(notes[0]).toMatch(/^Against the previous run on this machine: 3 of 3 figures worse by more than 5%/);
    expect(notes[1]).toMatch(/^Worse: \(a\) tools\/call, streamable HTTP \/ gateway \/ tools\/call \/ c=16: ratio ops\/s 0\.75× → 0\.68× \(−9%; before: /);
    // Absolute rates moved with the machine; the ratio held.
    const sameRatio = describeChanges(compareWithPast(run(3000, 2250), past, machineDescription()));
    expect(sameRatio).toEqual([expect.stringMatching(/: 0 of 3 figures worse by more than 5%, 0 better/)]);
  });

  it('compares with the latest run that has the row, on this machine only', () => {
    const markdown = recorded(run(4000, 3000), run(4000, 3600));
    expect(describeChanges(compareWithPast(run(4000, 3600), parseResults(markdown), machineDescription()))[0]).toMatch(/0 of 3 figures worse by more than 5%, 0 better/);
    const elsewhere = parseResults(markdown.replaceAll(`- Machine: ${machineDescription()}`, '- Machine: Another CPU, 64 cores, 256.0 GiB RAM, Node v24.21.0, Linux 6.1'));
    expect(describeChanges(compareWithPast(run(4000, 3000), elsewhere, machineDescription()))).toEqual([expect.stringMatching(/none on this machine has these rows/)]);
  });

  it('skips runs that were profiled or had failures', () => {
    const file = join(dir, 'profiled.md');
    appendResults(file, run(4000, 3000), [], 'gateways under --cpu-prof: slower than normal', []);
    const past = parseResults(readFileSync(file, 'utf8'));
    expect(describeChanges(compareWithPast(run(4000, 2000), past, machineDescription()))).toEqual([expect.stringMatching(/none on this machine has these rows/)]);
  });

  it('compares memory per idle session as itself, lower being better, and leaves rounding alone', () => {
    const idle = (kib: number): Row[] => [row('direct', 500, 5, undefined, 10), row('gateway', 450, 5.5, row('direct', 500, 5), kib)];
    const past = parseResults(recorded(idle(1.4)));
    const memory = (kib: number) => compareWithPast(idle(kib), past, machineDescription()).changes.filter((c) => c.figure === 'RSS KiB/session' && c.row.includes('gateway'));
    expect(memory(1.6)).toEqual([expect.objectContaining({ before: '1.4', after: '1.6', change: expect.closeTo(0.143, 3), verdict: 'worse' })]);
    // 7% more, but one unit of the last digit shown: as likely rounding as growth.
    expect(memory(1.5)).toEqual([expect.objectContaining({ after: '1.5', verdict: 'held' })]);
    expect(memory(1.2)).toEqual([expect.objectContaining({ after: '1.2', verdict: 'better' })]);
  });

  it("says when the baselines' own cost moved so far that the machine was in another state", () => {
    const past = parseResults(recorded(run(4000, 3000)));
    const busier = run(2000, 1500);
    busier[0]!.cpuUs = 320;
    const notes = describeChanges(compareWithPast(busier, past, machineDescription()));
    expect(notes[1]).toBe(
      "The machine was not in the state of those runs: the baselines' own CPU per operation moved by more than 20% in 1 row(s), so the ratios moved with it; " +
        'judge a change by an A/B within one run (--against). (a) tools/call, streamable HTTP / direct / tools/call / c=16: CPU µs/op 150 → 320 (+113%).',
    );
    // A gateway row's own CPU is what a change may move: it is no sign of the machine.
    const costlier = run(4000, 3000);
    costlier[1]!.cpuUs = 320;
    expect(describeChanges(compareWithPast(costlier, past, machineDescription()))).toHaveLength(1);
    const policy = (cpuUs: number): Row[] => {
      const rows = run(4000, 3000);
      rows[0]!.target = 'gateway (a)';
      rows[0]!.cpuUs = cpuUs;
      return rows;
    };
    expect(describeChanges(compareWithPast(policy(320), parseResults(recorded(policy(150))), machineDescription()))).toHaveLength(1);
  });

  it('counts a latency ratio 5% higher as 5% worse', () => {
    const base = row('direct', 4000, 2);
    const latency = (p50: number): Row[] => [base, row('gateway', 3000, p50, base)];
    const changes = compareWithPast(latency(2.12), parseResults(recorded(latency(2))), machineDescription()).changes;
    expect(changes.find((c) => c.figure === 'ratio p50')).toMatchObject({ before: '1.00×', after: '1.06×', verdict: 'worse' });
  });
});
