/**
 * What the runner knows about a scenario. A scenario owns its processes: `setup()` starts
 * them and fills `targets`, `teardown()` stops them (it is called even when setup failed).
 * Each target is compared with its `baseline` (default: the scenario's first target).
 */
import type { CpuSample } from './proc-stats.ts';

/** A process whose CPU time and memory the runner can sample (Child, or ProcProbe via /proc). */
export interface Probe {
  cpu(resetPeak?: boolean): Promise<CpuSample>;
  /** RSS in bytes, after a forced garbage collection where the process allows it. */
  memory(): Promise<number>;
}

/**
 * What the load generator does against a target (bench/load.ts):
 * - `call`: tools/call of `tool`, or of a random name from `tools` per request (autocannon);
 * - `list`: tools/list, expecting exactly `expectTools` tools (autocannon);
 * - `churn`: initialize → notifications/initialized → tools/call `tool` → DELETE, one
 *   "operation" per sequence (undici loop);
 * - `stream`: tools/call `tool` {steps} with a progress token, counting the progress
 *   notifications in the SSE reply (undici loop);
 * - `idle`: open `sessions` sessions (initialize + initialized) and keep them; the runner
 *   reports the servers' RSS growth per session (undici, bounded concurrency).
 */
export interface LoadSpec {
  mode: 'call' | 'list' | 'churn' | 'stream' | 'idle';
  tool?: string;
  tools?: string[];
  expectTools?: number;
  steps?: number;
  sessions?: number;
  /** Sent on every request, e.g. `authorization: Bearer …`. */
  headers?: Record<string, string>;
}

export interface Target {
  /** Short label in the table, e.g. "direct", "gateway". */
  name: string;
  /** The MCP endpoint the load generator talks to. */
  url: string;
  load: LoadSpec;
  /** The process the load hits: CPU per operation and peak RSS are reported for it. */
  server: Probe;
  /** A process behind the server (the upstream behind a gateway): its CPU per operation too. */
  behind?: Probe;
  /** The target this one is compared with; default: the scenario's first target. */
  baseline?: Target;
  /** More references, each compared in a note under the table (the gateway against the blind pass-through, or another commit's gateway). */
  alsoAgainst?: Target[];
  /**
   * This target stands for the slowest of these candidates: before the rounds at each
   * concurrency the runner screens them with short runs and measures the slowest in its place.
   */
  slowestOf?: Target[];
}

/** How a scenario is run; flags override the scenario's defaults, which override the runner's. */
export interface RunSettings {
  duration: number;
  warmup: number;
  rounds: number;
  concurrency: number[];
}

export interface ScenarioContext {
  /** Node flags for gateway processes (e.g. --cpu-prof). */
  gatewayExecArgv: string[];
  /** Gateway log level; logs go to the gateway's stderr, which the runner prefixes and shows. */
  gatewayLogLevel: string;
  /** Sessions scenario (f) opens. */
  idleSessions: number;
  /** Progress notifications per call in scenario (e). */
  progressSteps: number;
  /** Another commit's tree (`--against`), whose gateway scenarios measure beside this one's. */
  against?: { commit: string; dir: string } | undefined;
}

export interface Scenario {
  /** The letter `--scenario` selects it by. */
  id: string;
  name: string;
  targets: Target[];
  /** Settings that differ from the runner's defaults when no flag sets them. */
  defaults?: Partial<RunSettings>;
  /**
   * Start every round on fresh processes (the runner calls teardown() and setup() between
   * rounds): for measurements that a process's history spoils, such as RSS growth, which does
   * not shrink back when the previous round's sessions are closed.
   */
  freshEachRound?: boolean;
  /** With `--against`, it measures the other commit's gateway beside this one's. */
  measuresAgainst?: boolean;
  setup(ctx: ScenarioContext): Promise<void>;
  teardown(): Promise<void>;
  /** Findings of its own for the report, asked for after teardown. */
  notes?(): string[];
}

/**
 * The order targets are measured in, by index: the first (the baseline) always leads, the others
 * take turns, reversed every second round, so that whatever drifts within a round (the machine,
 * the upstream's heap) does not favour the same one every time.
 */
export function roundOrder(targets: number, round: number): number[] {
  const rest = Array.from({ length: targets - 1 }, (_, i) => i + 1);
  return [0, ...(round % 2 === 0 ? rest.reverse() : rest)].slice(0, targets);
}
