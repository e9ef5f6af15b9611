/**
 * `npm run bench:instructions -- [--against REV] [--pass-through]`: the user-space instructions
 * the gateway executes per forwarded tools/call (echo, one session), counted by valgrind's
 * callgrind; with --pass-through, those of scenario (a)'s blind pass-through too.
 * CPU time on these machines moves by ±15 µs per call between two processes of one tree;
 * an instruction count of a warmed-up gateway moves by far less. It counts work, not time: cache misses, which load makes
 * expensive, and the kernel's side of each system call are not in it. Judge a change by
 * both this and `npm run bench:ab`.
 *
 * Two kinds of V8's work fall among the counted calls by luck, and each can add 10-60k
 * instructions per call to a count: a major GC, and the optimizing compilers (under callgrind,
 * whose threads take turns on one core, TurboFan keeps recompiling long after it has settled in
 * a native run). Their shares, by function name, are printed apart, and the comparison leaves
 * them out.
 *
 * Each gateway runs under callgrind (20-50× slower) in front of one upstream that runs
 * natively; both gateways, with --against, at once, each with a load of its own. After
 * `--warmup-calls` calls (the JIT must have settled: 30,000 by default) the counters are
 * zeroed, `--calls` more are made, and the counters are read. With --policy both run
 * scenario (g)'s policy stack. With --top N the N functions with the most instructions of
 * their own are listed too, JavaScript ones by name (from the gateway's --perf-basic-prof map).
 *
 * Needs valgrind (Debian: apt-get install valgrind). Takes 5-8 minutes.
 *
 * Run: node bench/instructions.ts [--against REV] [--pass-through] [--policy] [--calls 5000] [--warmup-calls 30000] [--concurrency 8] [--top 0]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopAllChildren } from './child.ts';
import { gatewayConfig, httpBackend, policyStack } from './gateway-config.ts';
import { startIssuer, type Issuer } from './jwks.ts';
import { McpHttp } from './load-loop.ts';
import { Phase } from './load-phase.ts';
import { openSession, sessionHeaders } from './mcp-client.ts';
import { Processes, type Started } from './processes.ts';
import type { ScenarioContext } from './scenario.ts';
import { checkoutOrExit, type Worktree } from './worktree.ts';

const USAGE = 'usage: node bench/instructions.ts [--against REV] [--pass-through] [--policy] [--calls N] [--warmup-calls N] [--concurrency N] [--top N]';
const { values } = parseArgs({
  options: {
    against: { type: 'string' },
    'pass-through': { type: 'boolean', default: false },
    policy: { type: 'boolean', default: false },
    calls: { type: 'string', default: '5000' },
    'warmup-calls': { type: 'string', default: '30000' },
    concurrency: { type: 'string', default: '8' },
    top: { type: 'string', default: '0' },
  },
});
const numbers = { calls: Number(values.calls), warmupCalls: Number(values['warmup-calls']), concurrency: Number(values.concurrency), top: Number(values.top) };
if (Object.entries(numbers).some(([name, n]) => !Number.isInteger(n) || n < 0 || (n === 0 && (name === 'calls' || name === 'concurrency')))) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
if (spawnSync('valgrind', ['--version']).status !== 0) {
  process.stderr.write('bench:instructions needs valgrind on the PATH (Debian: apt-get install valgrind)\n');
  process.exit(2);
}

const log = (text: string): void => void process.stdout.write(`${text}\n`);

interface Counted {
  name: string;
  perCall: number;
  /** Of those, per kind of work in LUCK (same order): whether it falls into the counted calls is luck. */
  apartPerCall: number[];
  /** Instructions by function, of its own (without its callees'). */
  byFunction: Map<string, number>;
}

/** Calls `tool` `count` times on the session, `concurrency` at a time; any answer but the echo's fails. */
async function call(http: McpHttp, phase: Phase, tool: string, count: number, concurrency: number, nextId: () => number): Promise<void> {
  let left = count;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) {
        const id = nextId();
        const reply = await http.post(phase, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { text: 'hello' } } });
        if (reply.status !== 200 || !reply.text.includes(`"id":${id}`) || !reply.text.includes('hello')) throw new Error(`call ${id}: HTTP ${reply.status} ${reply.text.slice(0, 300)}`);
      }
    }),
  );
}

/**
 * V8's work that a count holds by luck, by the names of its functions: the major GC (marking,
 * concurrent or not, sweeping, compaction) and the optimizing compilers (TurboFan with
 * Turboshaft, and Maglev).
 */
const LUCK = [
  { whose: "the major GC's", pattern: /MarkCompact|ConcurrentMarking|MarkingVisitor|MarkingWorklist|IncrementalMarking|MarkingBarrier|Sweeper/ },
  { whose: "the optimizing compilers'", pattern: /^v8::internal::(?:compiler|maglev)::/ },
];

/** Instructions per call without the work set apart. */
function steady(c: Counted): number {
  return c.perCall - c.apartPerCall.reduce((sum, n) => sum + n, 0);
}

/** The functions of a callgrind dump with their own instruction counts; JIT code named through the perf map. */
function readDump(file: string, perfMap: string | undefined): { total: number; byFunction: Map<string, number> } {
  const jit = perfMap ? readPerfMap(perfMap) : [];
  const names = new Map<string, string>();
  const byFunction = new Map<string, number>();
  let fn = '';
  let afterCall = false;
  let total = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    // Names are compressed: "(12) name" defines id 12, "(12)" refers to it.
    const named = /^(c?fn)=\((\d+)\)(?: (.*))?$/.exec(line);
    if (named) {
      if (named[3] !== undefined) names.set(named[2]!, named[3]);
      if (named[1] === 'fn') fn = nameOf(names.get(named[2]!) ?? '?', jit);
      continue;
    }
    if (line.startsWith('calls=')) {
      afterCall = true;
      continue;
    }
    const cost = /^(?:[+-]?\d+|\*) (\d+)$/.exec(line);
    if (!cost) continue;
    // The line after calls= is the callee's inclusive cost, not the caller's own.
    if (afterCall) {
      afterCall = false;
      continue;
    }
    const n = Number(cost[1]);
    total += n;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + n);
  }
  return { total, byFunction };
}

type JitRange = readonly [start: number, size: number, name: string];

function readPerfMap(file: string): JitRange[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line): JitRange => {
      const [start, size, ...name] = line.split(' ');
      return [parseInt(start!, 16), parseInt(size!, 16), name.join(' ')];
    })
    .sort((a, b) => a[0] - b[0]);
}

function nameOf(fn: string, jit: readonly JitRange[]): string {
  if (!/^0x[0-9a-f]+$/.test(fn)) return fn;
  const address = parseInt(fn, 16);
  let lo = 0;
  let hi = jit.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [start, size, name] = jit[mid]!;
    if (address < start) hi = mid - 1;
    else if (address >= start + size) lo = mid + 1;
    else return `JS ${name}`;
  }
  return fn;
}

/** How a counted process is started, under the wrapper and Node flags it is given, and the tool its calls name. */
interface Subject {
  name: string;
  tool: string;
  start(wrapper: readonly string[], execArgv: string[]): Promise<Started>;
}

async function count(subject: Subject, dir: string, headers: Record<string, string>): Promise<Counted> {
  const { name } = subject;
  const out = join(dir, `${name.replace(/\W+/g, '-')}.out`);
  const started = await subject.start(['valgrind', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`], numbers.top > 0 ? ['--perf-basic-prof'] : []);
  const pid = String(started.child.pid);
  const session = await openSession(started.url, headers);
  const http = new McpHttp(started.url, sessionHeaders(session), numbers.concurrency);
  const phase = new Phase();
  let id = 0;
  try {
    await call(http, phase, subject.tool, numbers.warmupCalls, numbers.concurrency, () => ++id);
    execFileSync('callgrind_control', ['--zero', pid], { stdio: 'ignore' });
    await call(http, phase, subject.tool, numbers.calls, numbers.concurrency, () => ++id);
    execFileSync('callgrind_control', ['--dump', pid], { stdio: 'ignore' });
  } finally {
    await http.close();
  }
  const dumps = readdirSync(dir).filter((f) => f.startsWith(`${out.slice(dir.length + 1)}.`));
  if (dumps.length !== 1) throw new Error(`${name}: expected one callgrind dump, found ${dumps.length}`);
  const { total, byFunction } = readDump(join(dir, dumps[0]!), numbers.top > 0 ? `/tmp/perf-${pid}.map` : undefined);
  const apartPerCall = LUCK.map(() => 0);
  for (const [fn, n] of byFunction) {
    const kind = LUCK.findIndex((luck) => luck.pattern.test(fn));
    if (kind >= 0) apartPerCall[kind]! += n / numbers.calls;
  }
  return { name, perCall: total / numbers.calls, apartPerCall, byFunction };
}

let worktree: Worktree | undefined;
const processes = new Processes();
const dir = mkdtempSync(join(os.tmpdir(), 'switchboard-instructions-'));
let issuer: Issuer | undefined;
let failed = false;
try {
  worktree = values.against === undefined ? undefined : checkoutOrExit(values.against);
  const ctx: ScenarioContext = { gatewayExecArgv: [], gatewayLogLevel: 'silent', idleSessions: 0, progressSteps: 0 };
  const upstream = await processes.upstream();
  const backends = [httpBackend('echo', upstream.url)];
  let config = (_auditFile: string): ReturnType<typeof gatewayConfig> => gatewayConfig(backends);
  let headers: Record<string, string> = {};
  if (values.policy) {
    issuer = await startIssuer();
    const audience = 'https://switchboard.bench/mcp';
    const stack = { issuer: issuer.issuer, audience, subject: 'bench-client', jwksUrl: issuer.jwksUrl, allowedTool: 'echo' };
    config = (auditFile) => gatewayConfig(backends, policyStack({ ...stack, auditFile: join(dir, auditFile) }));
    headers = { authorization: `Bearer ${await issuer.token(stack.subject, audience)}` };
  }
  const gateway = (name: string, tree: string | undefined, auditFile: string): Subject => ({
    name,
    tool: 'echo__echo',
    start: (wrapper, execArgv) => processes.gateway(ctx, config(auditFile), name, execArgv, tree, wrapper),
  });
  const subjects = [gateway('gateway', undefined, '0.jsonl')];
  if (worktree) subjects.push(gateway(`gateway @${worktree.commit}`, worktree.dir, '1.jsonl'));
  if (values['pass-through']) subjects.push({ name: 'pass-through', tool: 'echo', start: (wrapper, execArgv) => processes.passThrough(upstream.url, 'pass-through', execArgv, wrapper) });
  log(`counting ${numbers.calls} calls after ${numbers.warmupCalls} to warm up, ${numbers.concurrency} at a time${values.policy ? ', policy stack on' : ''}: a few minutes`);
  const counted = await Promise.all(subjects.map((subject) => count(subject, dir, headers)));
  const thousands = (n: number): string => `${(n / 1000).toFixed(1)}k`;
  const apart = (c: Counted): string => LUCK.map((luck, i) => `${luck.whose} ${thousands(c.apartPerCall[i]!)}`).join(' and ');
  for (const c of counted) log(`${c.name}: ${thousands(c.perCall)} instructions per call, ${thousands(steady(c))} without ${apart(c)}`);
  for (const theirs of counted.slice(1)) {
    const [a, b] = [steady(counted[0]!), steady(theirs)];
    log(`gateway against ${theirs.name}, without them: ${a >= b ? '+' : '−'}${thousands(Math.abs(a - b))} per call (${((a / b - 1) * 100).toFixed(1)}%)`);
  }
  for (const c of numbers.top > 0 ? counted : []) {
    log(`\n${c.name}: the ${numbers.top} functions with the most instructions of their own, per call`);
    for (const [fn, n] of [...c.byFunction].sort((a, b) => b[1] - a[1]).slice(0, numbers.top)) {
      log(`${Math.round(n / numbers.calls).toString().padStart(8)}  ${fn.slice(0, 150)}`);
    }
  }
} catch (err) {
  failed = true;
  process.stderr.write(`bench:instructions failed: ${(err as Error).stack ?? String(err)}\n`);
} finally {
  await processes.stopAll();
  await stopAllChildren(3000);
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
