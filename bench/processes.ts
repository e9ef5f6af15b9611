/**
 * The processes a scenario runs, started with the bench's conventions (each announces its URL,
 * answers probes over IPC) and stopped together, the last started first: gateways and proxies
 * before the upstreams they stand in front of, gently enough for --cpu-prof to write its profile.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { COMPILE_CACHE_DIR, gatewayRuntime } from '../src/cli/node-flags.ts';
import { Child } from './child.ts';
import type { LoadSpec, Probe, ScenarioContext, Target } from './scenario.ts';
import type { gatewayConfig } from './gateway-config.ts';

export interface Started {
  child: Child;
  url: string;
  /** Every member's URL, for an upstream started with --members. */
  urls: string[];
}

/** Gateway scripts whose modules are in the compile cache already. */
const primed = new Set<string>();

/**
 * Fills the compile cache with the gateway process's modules, once per bench run, in a
 * throwaway process, as the launcher does on a release's first start: otherwise the first
 * gateway after a source change strips TypeScript itself and carries the stripper (17–30 MiB
 * of peak RSS) through its measurements.
 */
function primeCompileCache(script: string, flags: string[], env: Record<string, string>): void {
  if (primed.has(script)) return;
  primed.add(script);
  const run = spawnSync(process.execPath, [...flags, script, '--prime'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`priming the compile cache with ${script} failed (exit ${run.status ?? run.signal}): ${run.stderr.trim().split('\n').slice(-3).join(' / ')}`);
}

export class Processes {
  private readonly started: Array<{ child: Child; graceMs: number }> = [];

  private async start(script: string, args: string[], label: string, execArgv: string[], graceMs: number, env?: Record<string, string>, wrapper?: readonly string[]): Promise<Started> {
    const child = new Child(script, args, { label, execArgv, ...(env ? { env } : {}), ...(wrapper ? { wrapper } : {}) });
    this.started.push({ child, graceMs });
    // Under a wrapper such as valgrind, starting takes many times longer.
    const line = await child.readyLine(wrapper ? 180_000 : undefined);
    return { child, url: line.url, urls: Array.isArray(line.urls) ? (line.urls as string[]) : [line.url] };
  }

  /** bench/upstream.ts with the given arguments (e.g. --members 10). */
  upstream(label = 'upstream', args: string[] = [], execArgv: string[] = []): Promise<Started> {
    return this.start('./upstream.ts', args, label, execArgv, 5_000);
  }

  /**
   * bench/gateway-process.ts running `config` as the launcher runs the gateway (its environment,
   * Node flags and compile cache), with the context's log level and Node flags; `tree`: the
   * gateway of another checkout (its own script and launcher), instead of this one's;
   * `wrapper`: a command Node runs under (valgrind).
   */
  gateway(ctx: ScenarioContext, config: ReturnType<typeof gatewayConfig>, label = 'gateway', execArgv: string[] = [], tree?: string, wrapper?: readonly string[]): Promise<Started> {
    const root = tree ? pathToFileURL(`${tree}/`) : new URL('../', import.meta.url);
    const runtime = gatewayRuntime(new URL('bin/switchboard.js', root));
    const script = fileURLToPath(new URL('bench/gateway-process.ts', root));
    const env = { ...runtime.env, NODE_COMPILE_CACHE: COMPILE_CACHE_DIR };
    primeCompileCache(script, runtime.flags, env);
    const flags = [...runtime.flags, ...execArgv, ...ctx.gatewayExecArgv];
    const args = ['--config', JSON.stringify(config), '--log-level', ctx.gatewayLogLevel];
    return this.start(script, args, label, flags, 10_000, env, wrapper);
  }

  /**
   * With `--against`, the other commit's gateway running `config`, as a target named
   * `<name> @<commit>` taking `load`, with `behind` behind it; without, none.
   */
  async againstTarget(ctx: ScenarioContext, config: ReturnType<typeof gatewayConfig>, name: string, load: LoadSpec, behind: Probe, execArgv: string[] = []): Promise<Target | undefined> {
    if (!ctx.against) return undefined;
    const label = `${name} @${ctx.against.commit}`;
    const started = await this.gateway(ctx, config, label, execArgv, ctx.against.dir);
    return { name: label, url: started.url, load, server: started.child, behind };
  }

  /** bench/passthrough-process.ts: a blind HTTP pass-through in front of `upstreamUrl`. */
  passThrough(upstreamUrl: string, label = 'pass-through', execArgv: string[] = [], wrapper?: readonly string[]): Promise<Started> {
    return this.start('./passthrough-process.ts', ['--upstream', upstreamUrl], label, execArgv, 5_000, undefined, wrapper);
  }

  /** bench/mcp-proxy-process.ts: mcp-proxy in front of bench/stdio-echo.ts. */
  mcpProxy(label = 'mcp-proxy'): Promise<Started> {
    return this.start('./mcp-proxy-process.ts', [], label, [], 10_000);
  }

  async stopAll(): Promise<void> {
    for (const { child, graceMs } of this.started.splice(0).reverse()) await child.stop(graceMs);
  }
}
