/**
 * A probe for a process the runner did not start and cannot talk to (the stdio server a
 * gateway or mcp-proxy spawned): CPU time and memory read from /proc (Linux only). Clock
 * ticks are 10 ms, fine over runs of seconds and thousands of calls.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { registerDescendant } from './child.ts';
import type { CpuSample } from './proc-stats.ts';
import type { Probe } from './scenario.ts';

const conf = (name: string, fallback: number): number => {
  try {
    return Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim()) || fallback;
  } catch {
    return fallback;
  }
};
const TICK_US = 1e6 / conf('CLK_TCK', 100);
const PAGE_BYTES = conf('PAGESIZE', 4096);

export class ProcProbe implements Probe {
  readonly pid: number;
  readonly label: string;

  constructor(pid: number, label: string) {
    this.pid = pid;
    this.label = label;
  }

  async cpu(resetPeak = false): Promise<CpuSample> {
    // Fields after the parenthesised command name: state is [0], utime [11], stime [12].
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rss = Number(readFileSync(`/proc/${this.pid}/statm`, 'utf8').split(' ')[1]) * PAGE_BYTES;
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    const sample = { user: Number(fields[11]) * TICK_US, system: Number(fields[12]) * TICK_US, rss, peakRss: hwm ? Number(hwm[1]) * 1024 : rss };
    if (resetPeak) {
      try {
        writeFileSync(`/proc/${this.pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
      } catch {
        // not permitted: the peak then covers the process's whole life
      }
    }
    return sample;
  }

  /** No way to collect another process's garbage: the plain RSS. */
  async memory(): Promise<number> {
    return (await this.cpu()).rss;
  }
}

/**
 * The child of `parentPid` whose command line contains `marker`, waiting up to `timeoutMs`
 * for it to appear. It is registered so the bench kills it if its parent does not.
 */
export async function findChildProcess(parentPid: number, marker: string, label: string, timeoutMs = 10_000): Promise<ProcProbe> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== parentPid || !readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) continue;
        registerDescendant(Number(entry), marker);
        return new ProcProbe(Number(entry), label);
      } catch {
        // the process went away while we looked
      }
    }
    if (Date.now() > deadline) throw new Error(`no child process of ${parentPid} running ${marker} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
