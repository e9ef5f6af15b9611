/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, server mode, active
 * suite), run straight against the conformance fixture and then through the gateway.
 * The direct run checks the fixture serves everything the suite asks for; the gateway run is
 * the one that says something about Switchboard.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failureLines, formatRun, removeResults, runConformance, type ConformanceRuns } from './conformance/run.ts';

// Two full suite runs, each bounded by the runner's own 10-minute kill; normally a few seconds.
const RUN_TIMEOUT_MS = 10 * 60_000;

describe('MCP conformance suite', () => {
  let runs: ConformanceRuns;

  beforeAll(async () => {
    runs = await runConformance({ timeoutMs: RUN_TIMEOUT_MS });
  }, 2 * RUN_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    if (runs) await removeResults(runs);
  });

  it('runs the same active scenarios both times', () => {
    const direct = runs.direct.scenarios.map((s) => s.scenario);
    expect(direct.length).toBeGreaterThan(0);
    expect(runs.gateway.scenarios.map((s) => s.scenario)).toEqual(direct);
  });

  it('passes every active scenario against the fixture directly', () => {
    expect(failureLines(runs.direct), formatRun(runs.direct)).toEqual([]);
    expect(runs.direct.exitCode).toBe(0);
  });

  it('passes every active scenario through the gateway', () => {
    expect(failureLines(runs.gateway), formatRun(runs.gateway)).toEqual([]);
    expect(runs.gateway.exitCode).toBe(0);
  });
});
