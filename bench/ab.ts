/**
 * `npm run bench:ab -- --against REV`: this tree's gateway against commit REV's, both in front
 * of one upstream and both loaded at the same time in every round (tools/call echo, each by a
 * load generator of its own), so that whatever the machine does during a round (the other
 * tenants of its cores, frequency, the upstream's heap) hits the two alike. The bench's
 * `--against` measures them one after the other, and there two processes of one tree differ by
 * ±15 µs per call from round to round; measured together, a pair differs by a few µs.
 *
 * Two processes also keep a bias of their own for as long as they live (where their memory
 * landed, which core they share with whom): one pair measured over many rounds has shown the
 * same flag at −15 µs per call in every round where fresh pairs gave −6. So the measurement is
 * made in trials: each starts a fresh upstream and a fresh pair (which one starts first
 * alternates), warms both until they settle (warm-up.ts) and measures `--rounds` rounds; a
 * trial's figure is the mean of its rounds' differences, and the result is the median over
 * trials. The two share the cores, so the absolute figures are those of a busier machine than
 * the bench's: read the differences, not the rates.
 *
 * With --policy both gateways run scenario (g)'s policy stack (JWT, 20 CEL rules, audit to a
 * file each) and the load sends its token.
 *
 * Run: node bench/ab.ts --against REV [--policy] [--concurrency 16] [--trials 4] [--rounds 2] [--duration 5] [--warmup 1] [--warm-rounds 8]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopAllChildren } from './child.ts';
import { gatewayConfig, httpBackend, policyStack } from './gateway-config.ts';
import { startIssuer, type Issuer } from './jwks.ts';
import { failedCalls, measure, type Measurement } from './measure.ts';
import { Processes } from './processes.ts';
import type { ScenarioContext, Target } from './scenario.ts';
import { median } from './stats.ts';
import { MAX_WARM_ROUNDS, warmUntilSettled } from './warm-up.ts';
import { checkoutOrExit } from './worktree.ts';

const USAGE = 'usage: node bench/ab.ts --against REV [--policy] [--concurrency N] [--trials N] [--rounds N] [--duration S] [--warmup S] [--warm-rounds N]';
const { values } = parseArgs({
  options: {
    against: { type: 'string' },
    policy: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '16' },
    trials: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'warm-rounds': { type: 'string', default: String(MAX_WARM_ROUNDS) },
  },
});
const numbers = { concurrency: Number(values.concurrency), trials: Number(values.trials), rounds: Number(values.rounds), duration: Number(values.duration), warmup: Number(values.warmup), warmRounds: Number(values['warm-rounds']) };
if (values.against === undefined || Object.entries(numbers).some(([name, n]) => !Number.isFinite(n) || n < 0 || (n === 0 && name !== 'warmRounds'))) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

const worktree = checkoutOrExit(values.against);

const ctx: ScenarioContext = { gatewayExecArgv: [], gatewayLogLevel: 'silent', idleSessions: 0, progressSteps: 0 };
const log = (text: string): void => void process.stdout.write(`${text}\n`);
const signed = (d: number): string => (d > 0 ? `+${d}` : `${d}`);
const trees = [['gateway', undefined], [`gateway @${worktree.commit}`, worktree.dir]] as const;
const settings = { concurrency: numbers.concurrency, duration: numbers.duration, warmup: numbers.warmup };
let failed = false;
let issuer: Issuer | undefined;
const auditDir = values.policy ? mkdtempSync(join(os.tmpdir(), 'switchboard-ab-')) : undefined;

/** With --policy: the load's token, and each gateway's config behind (g)'s policy stack. */
interface PolicyRun {
  headers: Record<string, string>;
  config: (upstreamUrl: string, auditFile: string) => ReturnType<typeof gatewayConfig>;
}

/** One trial: a fresh upstream and pair, warmed, then its rounds; what each gateway measured, ours first. */
async function trial(index: number, policy: PolicyRun | undefined): Promise<[Measurement[], Measurement[]]> {
  const processes = new Processes();
  try {
    const upstream = await processes.upstream();
    const config = (auditFile: string) => (policy ? policy.config(upstream.url, auditFile) : gatewayConfig([httpBackend('echo', upstream.url)]));
    const load = { mode: 'call' as const, tool: 'echo__echo', ...(policy ? { headers: policy.headers } : {}) };
    const targets: Target[] = [];
    // Which one starts first alternates: where a process lands must not favour one side.
    const order = index % 2 === 0 ? [0, 1] : [1, 0];
    for (const at of order) {
      const [name, tree] = trees[at]!;
      const gateway = await processes.gateway(ctx, config(`${index}-${at}.jsonl`), name, [], tree);
      targets[at] = { name, url: gateway.url, load, server: gateway.child };
    }
    const settled = await warmUntilSettled(targets, settings, numbers.warmRounds, (round, cpu) =>
      log(`trial ${index + 1} warm-up ${round}: ${cpu.map((us, i) => `${targets[i]!.name} ${us.toFixed(0)} µs/call`).join('; ')}`),
    );
    if (!settled && numbers.warmRounds > 0) log(`trial ${index + 1} warm-up: CPU per call still moving after ${numbers.warmRounds} rounds; its rounds may carry it`);
    const runs: [Measurement[], Measurement[]] = [[], []];
    for (let round = 1; round <= numbers.rounds; round++) {
      const measured = await Promise.all(targets.map((t) => measure(t, settings)));
      measured.forEach((m, i) => runs[i]!.push(m));
      failed ||= measured.some((m) => failedCalls(m.load) > 0 || m.load.ok === 0);
      log(`trial ${index + 1} round ${round}: ${measured.map((m, i) => `${targets[i]!.name} ${m.serverCpuUs.toFixed(0)} µs/call, ${m.load.rps.toFixed(0)} calls/s`).join('; ')}`);
    }
    return runs;
  } finally {
    await processes.stopAll();
  }
}

try {
  let policy: PolicyRun | undefined;
  if (auditDir) {
    issuer = await startIssuer();
    const audience = 'https://switchboard.bench/mcp';
    const stack = { issuer: issuer.issuer, audience, subject: 'bench-client', jwksUrl: issuer.jwksUrl, allowedTool: 'echo' };
    policy = {
      headers: { authorization: `Bearer ${await issuer.token(stack.subject, audience)}` },
      config: (upstreamUrl, auditFile) => gatewayConfig([httpBackend('echo', upstreamUrl)], policyStack({ ...stack, auditFile: join(auditDir, auditFile) })),
    };
  }
  const ours: Measurement[] = [];
  const theirs: Measurement[] = [];
  const byTrial: number[] = [];
  for (let index = 0; index < numbers.trials; index++) {
    const [a, b] = await trial(index, policy);
    ours.push(...a);
    theirs.push(...b);
    byTrial.push(Math.round(a.reduce((sum, m, i) => sum + m.serverCpuUs - b[i]!.serverCpuUs, 0) / a.length));
  }
  const pairs = ours.map((m, i) => Math.round(m.serverCpuUs - theirs[i]!.serverCpuUs));
  const rps = ours.map((m, i) => m.load.rps / theirs[i]!.load.rps);
  log(`CPU per call at c=${numbers.concurrency}: gateway ${median(ours.map((m) => m.serverCpuUs)).toFixed(0)} µs, gateway @${worktree.commit} ${median(theirs.map((m) => m.serverCpuUs)).toFixed(0)} µs (medians of all rounds)`);
  log(`trials (gateway − gateway @${worktree.commit}, mean of each trial's rounds): ${byTrial.map(signed).join(', ')} µs; median ${Math.round(median(byTrial))} µs; lower in ${byTrial.filter((d) => d < 0).length} of ${byTrial.length}`);
  log(`rounds: ${pairs.map(signed).join(', ')} µs`);
  log(`throughput: ${median(rps).toFixed(2)}× of gateway @${worktree.commit} (median of the rounds' ratios)`);
  if (failed) log('some calls failed: see the load generators\' output above');
} finally {
  await stopAllChildren(3_000);
  await issuer?.close();
  if (auditDir) rmSync(auditDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
