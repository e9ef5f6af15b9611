/**
 * Warming targets up until their JIT has settled. V8 goes on optimizing a Node server for
 * 10–15 s of load (`--trace-opt` on a gateway under c16: ~900 optimizations in its first 5 s,
 * ~100 in its third, a handful after), and its compiler threads' CPU counts in the process's:
 * a round measured before that carries 10–40 µs per call of compiling, more for the server with
 * more code to compile. A fixed warm-up of a second or two leaves most of it in the first round.
 */
import { measure, type LoadSettings } from './measure.ts';
import type { Target } from './scenario.ts';

/** A round within this share of the one before it, for every target: settled. */
const SETTLED_SHARE = 0.05;
/** The default bound on warm-up rounds: settling takes 2–4 when the JIT is done, more while it is not. */
export const MAX_WARM_ROUNDS = 8;

/**
 * Loads the targets (all at the same time) round after round, every round thrown away, until
 * each one's CPU per operation is within 5% of its previous round; at most `maxRounds`.
 * `onRound` hears each round's CPU per operation, by target. Resolves to whether they settled.
 */
export async function warmUntilSettled(targets: readonly Target[], settings: LoadSettings, maxRounds: number, onRound: (round: number, cpuUs: number[]) => void): Promise<boolean> {
  let previous: number[] | undefined;
  for (let round = 1; round <= maxRounds; round++) {
    const cpu = (await Promise.all(targets.map((t) => measure(t, settings)))).map((m) => m.serverCpuUs);
    onRound(round, cpu);
    if (previous && cpu.every((us, i) => Math.abs(us - previous![i]!) <= SETTLED_SHARE * previous![i]!)) return true;
    previous = cpu;
  }
  return false;
}
