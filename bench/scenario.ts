/**
 * What the runner knows about a scenario. A scenario owns its processes: `setup()` starts
 * them and fills `targets`, `teardown()` stops them (it is called even when setup failed).
 * The first target is the baseline the others are compared with.
 */
import type { CpuSample } from './proc-stats.ts';

/** A process whose CPU time and memory the runner can sample (bench/child.ts's Child). */
export interface Probe {
  cpu(resetPeak?: boolean): Promise<CpuSample>;
}

export interface Target {
  /** Short label in the table, e.g. "direct", "gateway". */
  name: string;
  /** The MCP endpoint the load generator opens a session on. */
  url: string;
  /** The tool to call there (the gateway prefixes backend tools). */
  tool: string;
  /** The process the load hits: CPU per call and peak RSS are reported for it. */
  server: Probe;
  /** A process behind the server (the upstream behind a gateway): its CPU per call too. */
  behind?: Probe;
}

export interface ScenarioContext {
  /** Node flags for the gateway process (e.g. --cpu-prof). */
  gatewayExecArgv: string[];
  /** Gateway log level; logs go to the gateway's stderr, which the runner prefixes and shows. */
  gatewayLogLevel: string;
}

export interface Scenario {
  name: string;
  targets: Target[];
  setup(ctx: ScenarioContext): Promise<void>;
  teardown(): Promise<void>;
}
