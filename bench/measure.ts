/**
 * One measured run: a load-generator process against one target, with the target's server
 * (and whatever sits behind it) CPU-sampled exactly around the measured period.
 */
import os from 'node:os';
import { Child } from './child.ts';
import type { LoadResult } from './load.ts';
import type { Target } from './scenario.ts';
import { cpuPerCall } from './stats.ts';

export interface LoadSettings {
  concurrency: number;
  duration: number;
  warmup: number;
}

export interface Measurement {
  load: LoadResult;
  /** CPU µs per response of the process the load hit. */
  serverCpuUs: number;
  /** CPU µs per response of the process behind it, when there is one. */
  behindCpuUs: number | undefined;
  /** Peak RSS of the process the load hit during the measured period, in MiB. */
  serverPeakRssMiB: number;
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

export async function measure(target: Target, settings: LoadSettings): Promise<Measurement> {
  const load = new Child(
    './load.ts',
    ['--url', target.url, '--tool', target.tool, '--concurrency', String(settings.concurrency), '--duration', String(settings.duration), '--warmup', String(settings.warmup)],
    { label: `load→${target.name}` },
  );
  try {
    await load.waitMessage('warmed', (settings.warmup + 30) * 1000);
    const [server0, behind0] = await Promise.all([target.server.cpu(true), target.behind?.cpu()]);
    const busy0 = machineBusyUs();
    const t0 = process.hrtime.bigint();
    load.send({ type: 'go' });
    const result = (await load.nextLine((settings.duration + 60) * 1000)) as unknown as LoadResult;
    const [server1, behind1] = await Promise.all([target.server.cpu(), target.behind?.cpu()]);
    const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
    const ours = cpuUs(server0, server1) + (behind0 && behind1 ? cpuUs(behind0, behind1) : 0) + (result.loaderCpuPct / 100) * result.durationS * 1e6;
    const foreignUs = Math.max(0, machineBusyUs() - busy0 - ours);
    return {
      foreignCpuPct: (foreignUs / 1e6 / elapsedS) * 100,
      load: result,
      serverCpuUs: cpuPerCall(server0, server1, result.responses),
      behindCpuUs: behind0 && behind1 ? cpuPerCall(behind0, behind1, result.responses) : undefined,
      serverPeakRssMiB: server1.peakRss / 2 ** 20,
    };
  } finally {
    await load.stop();
  }
}
