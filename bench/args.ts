/** Command-line options of `npm run bench`. */
import { parseArgs } from 'node:util';
import type { RunSettings } from './scenario.ts';
import { MAX_WARM_ROUNDS } from './warm-up.ts';

export interface BenchArgs {
  /** Scenario ids to run, in the order given; empty: all. */
  scenarios: string[];
  /** Only the settings given on the command line; the rest come from each scenario. */
  settings: Partial<RunSettings>;
  sessions: number;
  steps: number;
  cpuProf: boolean;
  perfMap: boolean;
  gatewayLog: string;
  record: boolean;
  /** A commit whose gateway is measured beside this tree's, interleaved (scenarios a, d, e, g). */
  against: string | undefined;
  /** At most this many warm-up rounds before a target's first run (warm-up.ts); 0: none. */
  warmRounds: number;
}

/** Settings of a scenario that declares no defaults of its own (scenario a). */
export const DEFAULT_SETTINGS: RunSettings = { duration: 10, warmup: 2, rounds: 3, concurrency: [16, 64] };
/** Defaults of scenarios b-g: short runs, so the whole bench stays within minutes on a small machine. */
export const SHORT_SETTINGS: RunSettings = { duration: 5, warmup: 1, rounds: 2, concurrency: [16] };

export const USAGE = `usage: npm run bench -- [options]
  --scenario LIST     comma-separated scenario letters a-g (default: all)
  --duration S        measured seconds per run (default 10 for a, 5 for b-g)
  --warmup S          warm-up seconds per run, discarded (default 2 for a, 1 for b-g); before a
                      target's first run, rounds of S seconds until its CPU per op settles
  --warm-rounds N     at most N such rounds (default ${MAX_WARM_ROUNDS}; 0: none)
  --rounds N          interleaved rounds per concurrency, medians reported (default 3 for a, 2 for b-g)
  --concurrency LIST  comma-separated concurrency levels (default 16,64 for a, 16 for b-e and g, 50 for f)
  --sessions N        idle sessions opened per run in scenario f (default 10000)
  --steps N           progress notifications per call in scenario e (default 100)
  --cpu-prof          run gateways under --cpu-prof, profiles in bench/profiles/
  --perf-map          gateways write /tmp/perf-<pid>.map, so Linux perf names their JavaScript frames
  --gateway-log LVL   gateway log level, shown on stderr (default silent)
  --against REV       also measure the gateway of commit REV (a git worktree) beside this one, in a, d, e and g
  --no-record         do not append to bench/RESULTS.md`;

/** Options for which 0 means "none". */
const ZERO_ALLOWED = new Set(['warmup', 'warm-rounds']);

function positive(name: string, text: string, integer: boolean): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)) || (n === 0 && !ZERO_ALLOWED.has(name))) {
    throw new Error(`invalid --${name} ${JSON.stringify(text)}\n${USAGE}`);
  }
  return n;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    options: {
      scenario: { type: 'string', default: '' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      concurrency: { type: 'string' },
      sessions: { type: 'string', default: '10000' },
      steps: { type: 'string', default: '100' },
      'cpu-prof': { type: 'boolean', default: false },
      'perf-map': { type: 'boolean', default: false },
      'gateway-log': { type: 'string', default: 'silent' },
      against: { type: 'string' },
      'warm-rounds': { type: 'string', default: String(MAX_WARM_ROUNDS) },
      record: { type: 'boolean', default: true },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const settings: Partial<RunSettings> = {};
  if (values.duration !== undefined) settings.duration = positive('duration', values.duration, false);
  if (values.warmup !== undefined) settings.warmup = positive('warmup', values.warmup, false);
  if (values.rounds !== undefined) settings.rounds = positive('rounds', values.rounds, true);
  if (values.concurrency !== undefined) settings.concurrency = values.concurrency.split(',').map((c) => positive('concurrency', c.trim(), true));
  return {
    scenarios: values.scenario
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
    settings,
    sessions: positive('sessions', values.sessions, true),
    steps: positive('steps', values.steps, true),
    cpuProf: values['cpu-prof'],
    perfMap: values['perf-map'],
    gatewayLog: values['gateway-log'],
    record: values.record,
    against: values.against,
    warmRounds: positive('warm-rounds', values['warm-rounds'], true),
  };
}
