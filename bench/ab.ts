/**
 * `npm run bench:ab -- --against REV`: this tree's gateway against commit REV's, both in front
 * of one upstream and both loaded at the same time in every round (tools/call echo, each by a
 * load generator of its own), so that whatever the machine does during a round (the other
 * tenants of its cores, frequency, the upstream's heap) hits the two alike. The bench's
 * `--against` measures them one after the other, and there two processes of one tree differ by
 * ±15 µs per call from round to round; measured together, a pair differs by a few µs. Rounds
 * are thrown away until both have warmed up (warm-up.ts). The two
 * share the cores, so the absolute figures are those of a busier machine than the bench's:
 * read the pairs, not the rates.
 *
 * With --policy both gateways run scenario (g)'s policy stack (JWT, 20 CEL rules, audit to a
 * file each) and the load sends its token.
 *
 * Run: node bench/ab.ts --against REV [--policy] [--concurrency 16] [--rounds 8] [--duration 5] [--warmup 1] [--warm-rounds 8]
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

const USAGE = 'usage: node bench/ab.ts --against REV [--policy] [--concurrency N] [--rounds N] [--duration S] [--warmup S] [--warm-rounds N]';
const { values } = parseArgs({
  options: {
    against: { type: 'string' },
    policy: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '8' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'warm-rounds': { type: 'string', default: String(MAX_WARM_ROUNDS) },
  },
});
const numbers = { concurrency: Number(values.concurrency), rounds: Number(values.rounds), duration: Number(values.duration), warmup: Number(values.warmup), warmRounds: Number(values['warm-rounds']) };
if (values.against === undefined || Object.entries(numbers).some(([name, n]) => !Number.isFinite(n) || n < 0 || (n === 0 && name !== 'warmRounds'))) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

const worktree = checkoutOrExit(values.against);

const ctx: ScenarioContext = { gatewayExecArgv: [], gatewayLogLevel: 'silent', idleSessions: 0, progressSteps: 0 };
const processes = new Processes();
const log = (text: string): void => void process.stdout.write(`${text}\n`);
let failed = false;
let issuer: Issuer | undefined;
const auditDir = values.policy ? mkdtempSync(join(os.tmpdir(), 'switchboard-ab-')) : undefined;
try {
  const upstream = await processes.upstream();
  const backends = [httpBackend('echo', upstream.url)];
  let config = (_auditFile: string) => gatewayConfig(backends);
  let headers: Record<string, string> | undefined;
  if (auditDir) {
    issuer = await startIssuer();
    const audience = 'https://switchboard.bench/mcp';
    const stack = { issuer: issuer.issuer, audience, subject: 'bench-client', jwksUrl: issuer.jwksUrl, allowedTool: 'echo' };
    config = (auditFile) => gatewayConfig(backends, policyStack({ ...stack, auditFile: join(auditDir, auditFile) }));
    headers = { authorization: `Bearer ${await issuer.token(stack.subject, audience)}` };
  }
  const load = { mode: 'call' as const, tool: 'echo__echo', ...(headers ? { headers } : {}) };
  const targets: Target[] = [];
  for (const [name, tree] of [['gateway', undefined], [`gateway @${worktree.commit}`, worktree.dir]] as const) {
    const gateway = await processes.gateway(ctx, config(`${targets.length}.jsonl`), name, [], tree);
    targets.push({ name, url: gateway.url, load, server: gateway.child });
  }
  const settings = { concurrency: numbers.concurrency, duration: numbers.duration, warmup: numbers.warmup };
  const settled = await warmUntilSettled(targets, settings, numbers.warmRounds, (round, cpu) =>
    log(`warm-up ${round}: ${cpu.map((us, i) => `${targets[i]!.name} ${us.toFixed(0)} µs/call`).join('; ')}`),
  );
  if (!settled && numbers.warmRounds > 0) log(`warm-up: CPU per call still moving after ${numbers.warmRounds} rounds; the pairs may carry it`);
  const runs: Measurement[][] = [[], []];
  for (let round = 1; round <= numbers.rounds; round++) {
    const measured = await Promise.all(targets.map((t) => measure(t, settings)));
    measured.forEach((m, i) => runs[i]!.push(m));
    failed ||= measured.some((m) => failedCalls(m.load) > 0 || m.load.ok === 0);
    log(`round ${round}: ${measured.map((m, i) => `${targets[i]!.name} ${m.serverCpuUs.toFixed(0)} µs/call, ${m.load.rps.toFixed(0)} calls/s`).join('; ')}`);
  }
  const [ours, theirs] = runs as [Measurement[], Measurement[]];
  const pairs = ours.map((m, i) => Math.round(m.serverCpuUs - theirs[i]!.serverCpuUs));
  const rps = ours.map((m, i) => m.load.rps / theirs[i]!.load.rps);
  log(`CPU per call at c=${numbers.concurrency}: gateway ${median(ours.map((m) => m.serverCpuUs)).toFixed(0)} µs, gateway @${worktree.commit} ${median(theirs.map((m) => m.serverCpuUs)).toFixed(0)} µs (medians)`);
  log(`pairs (gateway − gateway @${worktree.commit}): ${pairs.map((d) => (d > 0 ? `+${d}` : `${d}`)).join(', ')} µs; median ${Math.round(median(pairs))} µs; lower in ${pairs.filter((d) => d < 0).length} of ${pairs.length}`);
  log(`throughput: ${median(rps).toFixed(2)}× of gateway @${worktree.commit} (median of the rounds' ratios)`);
  if (failed) log('some calls failed: see the load generators\' output above');
} finally {
  await processes.stopAll();
  await stopAllChildren(3_000);
  await issuer?.close();
  if (auditDir) rmSync(auditDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
