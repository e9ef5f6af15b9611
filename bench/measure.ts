/**
 * One measured run: a load-generator process against one target, with the target's server
 * (and whatever sits behind it) CPU-sampled exactly around the measured period.
 */
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
}

export async function measure(target: Target, settings: LoadSettings): Promise<Measurement> {
  const load = new Child(
    './load.ts',
    ['--url', target.url, '--tool', target.tool, '--concurrency', String(settings.concurrency), '--duration', String(settings.duration), '--warmup', String(settings.warmup)],
    { label: `load→${target.name}` },
  );
  try {
    await load.waitMessage('warmed', (settings.warmup + 30) * 1000);
    const [server0, behind0] = await Promise.all([target.server.cpu(true), target.behind?.cpu()]);
    load.send({ type: 'go' });
    const result = (await load.nextLine((settings.duration + 60) * 1000)) as unknown as LoadResult;
    const [server1, behind1] = await Promise.all([target.server.cpu(), target.behind?.cpu()]);
    return {
      load: result,
      serverCpuUs: cpuPerCall(server0, server1, result.responses),
      behindCpuUs: behind0 && behind1 ? cpuPerCall(behind0, behind1, result.responses) : undefined,
      serverPeakRssMiB: server1.peakRss / 2 ** 20,
    };
  } finally {
    await load.stop();
  }
}
