/**
 * The child side of the bench's process probes: answers `{ type: 'cpu' }` over IPC with this
 * process's CPU time, garbage-collection time and memory (after a forced GC when asked and
 * --expose-gc allows), and tracks peak RSS by sampling every 100 ms.
 *
 * Also ties the child's life to the bench: when the IPC channel closes (the runner exited or
 * died) the child exits instead of lingering.
 */

import { PerformanceObserver } from 'node:perf_hooks';

/** What a probe answers; CPU times are cumulative microseconds since the process started. */
export interface CpuSample {
  user: number;
  system: number;
  /** Time the main thread spent in garbage collection (V8's pauses), cumulative µs; unknown from /proc. */
  gc?: number;
  rss: number;
  /** Highest RSS seen since the last `reset-peak` (or since start). */
  peakRss: number;
}

/** `gc`: collect garbage first (when the process runs with --expose-gc), for an RSS that means something. */
export type ProbeRequest = { type: 'cpu'; id: number; resetPeak?: boolean; gc?: boolean };
export type ProbeReply = { type: 'cpu'; id: number; sample: CpuSample };

const SAMPLE_MS = 100;

export function serveProcessStats(onDisconnect: () => void = () => process.exit(0)): void {
  let peakRss = process.memoryUsage.rss();
  let gcUs = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcUs += entry.duration * 1000;
  }).observe({ entryTypes: ['gc'] });
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, SAMPLE_MS);
  sampler.unref();

  if (!process.send) return;
  process.on('message', (message: unknown) => {
    if (!isProbeRequest(message)) return;
    if (message.gc) collectGarbage();
    const { user, system } = process.cpuUsage();
    const rss = process.memoryUsage().rss;
    peakRss = Math.max(peakRss, rss);
    const reply: ProbeReply = { type: 'cpu', id: message.id, sample: { user, system, gc: gcUs, rss, peakRss } };
    if (message.resetPeak) peakRss = rss;
    process.send?.(reply);
  });
  process.on('disconnect', onDisconnect);
}

/** A full collection, twice (the first can leave finalizer work for the second); a no-op without --expose-gc. */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

function isProbeRequest(message: unknown): message is ProbeRequest {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'cpu' && typeof (message as { id?: unknown }).id === 'number';
}

/** Prints the one line a parent waits for: the child is ready and serving at `url`. */
export function announce(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ready: true, ...fields })}\n`);
}
