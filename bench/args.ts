/** Command-line options of `npm run bench`. */
import { parseArgs } from 'node:util';

export interface BenchArgs {
  duration: number;
  warmup: number;
  rounds: number;
  concurrency: number[];
  cpuProf: boolean;
  gatewayLog: string;
  record: boolean;
}

export const USAGE = `usage: npm run bench -- [options]
  --duration S        measured seconds per run (default 10)
  --warmup S          warm-up seconds per run, discarded (default 2)
  --rounds N          interleaved rounds per concurrency, medians reported (default 3)
  --concurrency LIST  comma-separated connection counts (default 16,64)
  --cpu-prof          run the gateway under --cpu-prof, profiles in bench/profiles/
  --gateway-log LVL   gateway log level, shown on stderr (default silent)
  --no-record         do not append to bench/RESULTS.md`;

function positive(name: string, text: string, integer: boolean): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)) || (name !== 'warmup' && n === 0)) {
    throw new Error(`invalid --${name} ${JSON.stringify(text)}\n${USAGE}`);
  }
  return n;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '16,64' },
      'cpu-prof': { type: 'boolean', default: false },
      'gateway-log': { type: 'string', default: 'silent' },
      record: { type: 'boolean', default: true },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  return {
    duration: positive('duration', values.duration, false),
    warmup: positive('warmup', values.warmup, false),
    rounds: positive('rounds', values.rounds, true),
    concurrency: values.concurrency.split(',').map((c) => positive('concurrency', c.trim(), true)),
    cpuProf: values['cpu-prof'],
    gatewayLog: values['gateway-log'],
    record: values.record,
  };
}
