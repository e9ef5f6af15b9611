/**
 * One measured run: a load-generator process against one target, with the target's server
 * (and whatever sits behind it) CPU-sampled exactly around the measured period and, for idle
 * sessions, RSS-sampled after a forced GC before the sessions are opened and while they are.
 */
import os from 'node:os';
import { Child } from './child.ts';
import type { LoadResult } from './load.ts';
import type { LoadSpec, Target } from './scenario.ts';
import { cpuPerCall } from './stats.ts';

export interface LoadSettings {
  concurrency: number;
  duration: number;
  warmup: number;
}

export interface Measurement {
  load: LoadResult;
  /** CPU µs per operation of the process the load hit. */
  serverCpuUs: number;
  /** Of that, µs per operation its main thread spent collecting garbage. */
  serverGcUs: number;
  /** CPU µs per operation of the process behind it, when there is one. */
  behindCpuUs: number | undefined;
  /** Peak RSS of the process the load hit during the measured period, in MiB. */
  serverPeakRssMiB: number;
  /** Idle sessions only: RSS growth (after GC) per session opened, in bytes, of the server and of the process behind it. */
  serverRssPerOp: number | undefined;
  behindRssPerOp: number | undefined;
  /**
   * CPU the rest of the machine used during the measured period (everything but the server,
   * the process behind it and the load generator), in % of one core. High values mean other
   * work competed with the bench and the numbers are not trustworthy.
   */
  foreignCpuPct: number;
}

/** Busy CPU time of the whole machine, all cores, in µs. */
function machineBusyUs(): number {
  let ms = 0;
  for (const { times } of os.cpus()) ms += times.user + times.nice + times.sys + times.irq;
  return ms * 1000;
}

const cpuUs = (before: { user: number; system: number }, after: { user: number; system: number }): number => after.user - before.user + after.system - before.system;

function loadArgs(url: string, spec: LoadSpec, settings: LoadSettings): string[] {
  const args = ['--url', url, '--mode', spec.mode, '--concurrency', String(settings.concurrency), '--duration', String(settings.duration), '--warmup', String(settings.warmup)];
  if (spec.tool !== undefined) args.push('--tool', spec.tool);
  if (spec.tools !== undefined) args.push('--tools', spec.tools.join(','));
  if (spec.expectTools !== undefined) args.push('--expect-tools', String(spec.expectTools));
  if (spec.steps !== undefined) args.push('--steps', String(spec.steps));
  if (spec.sessions !== undefined) args.push('--sessions', String(spec.sessions));
  for (const [name, value] of Object.entries(spec.headers ?? {})) args.push('--header', `${name}: ${value}`);
  return args;
}

/** Calls of a run that got no good answer: failed statuses and errors, and dropped connections. */
export function failedCalls(load: LoadResult): number {
  return load.responses - load.ok + load.socketErrors;
}

export async function measure(target: Target, settings: LoadSettings): Promise<Measurement> {
  const memory = target.load.mode === 'idle';
  // Opening 10,000 sessions takes its own time, not `duration`; closing them again too.
  const measuredS = memory ? (target.load.sessions ?? 10_000) / 50 : settings.duration;
  const load = new Child('./load.ts', loadArgs(target.url, target.load, settings), { label: `load→${target.name}` });
  try {
    await load.waitMessage('warmed', (settings.warmup + 30) * 1000);
    const [rss0, behindRss0] = memory ? await Promise.all([target.server.memory(), target.behind?.memory()]) : [];
    const [server0, behind0] = await Promise.all([target.server.cpu(true), target.behind?.cpu()]);
    const busy0 = machineBusyUs();
    const t0 = process.hrtime.bigint();
    load.send({ type: 'go' });
    const result = (await load.nextLine((measuredS + 60) * 1000)) as unknown as LoadResult;
    const [server1, behind1] = await Promise.all([target.server.cpu(), target.behind?.cpu()]);
    const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
    const busy1 = machineBusyUs();
    const [rss1, behindRss1] = memory ? await Promise.all([target.server.memory(), target.behind?.memory()]) : [];
    // The load generator closes its sessions now; wait for it rather than kill it mid-way.
    load.send({ type: 'finish' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([load.exited, new Promise((resolve) => (timer = setTimeout(resolve, (measuredS + 30) * 1000)))]);
    clearTimeout(timer);
    const ours = cpuUs(server0, server1) + (behind0 && behind1 ? cpuUs(behind0, behind1) : 0) + (result.loaderCpuPct / 100) * result.durationS * 1e6;
    const foreignUs = Math.max(0, busy1 - busy0 - ours);
    const perOp = (before: number | undefined, after: number | undefined): number | undefined =>
      before !== undefined && after !== undefined && result.ok > 0 ? (after - before) / result.ok : undefined;
    return {
      foreignCpuPct: (foreignUs / 1e6 / elapsedS) * 100,
      load: result,
      serverCpuUs: cpuPerCall(server0, server1, result.responses),
      serverGcUs: server0.gc !== undefined && server1.gc !== undefined && result.responses > 0 ? (server1.gc - server0.gc) / result.responses : Number.NaN,
      behindCpuUs: behind0 && behind1 ? cpuPerCall(behind0, behind1, result.responses) : undefined,
      serverPeakRssMiB: server1.peakRss / 2 ** 20,
      serverRssPerOp: perOp(rss0, rss1),
      behindRssPerOp: perOp(behindRss0, behindRss1),
    };
  } finally {
    await load.stop();
  }
}
