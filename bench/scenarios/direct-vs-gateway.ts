/**
 * Scenarios that compare the client talking to the upstream directly with the same client
 * going through the gateway, differing only in what the load generator does:
 * (a) tools/call, (d) session churn, (e) SSE progress streaming, (f) idle sessions' memory.
 * (a) also measures a blind pass-through (passthrough-process.ts) in front of the upstream.
 *
 * Upstream and gateway each run in their own process and stay up across rounds. For (f) both
 * run with --expose-gc (the runner collects garbage before every RSS sample), the direct
 * target gets an upstream of its own, so each process's growth comes from one target only,
 * and every round starts on fresh processes (RSS does not shrink back after a round).
 */
import { SHORT_SETTINGS } from '../args.ts';
import { gatewayConfig, httpBackend } from '../gateway-config.ts';
import { Processes } from '../processes.ts';
import type { LoadSpec, RunSettings, Scenario, ScenarioContext, Target } from '../scenario.ts';

const BACKEND = 'echo';

/** The same load through the gateway: tool names carry the backend's prefix. */
export function prefixed(spec: LoadSpec, backend: string): LoadSpec {
  const name = (tool: string): string => `${backend}__${tool}`;
  return { ...spec, ...(spec.tool ? { tool: name(spec.tool) } : {}), ...(spec.tools ? { tools: spec.tools.map(name) } : {}) };
}

interface Options {
  id: string;
  name: string;
  defaults?: Partial<RunSettings>;
  load(ctx: ScenarioContext): LoadSpec;
  /** Measure memory: --expose-gc, an upstream per target, fresh processes every round. */
  memory?: boolean;
  /** Also measure a blind HTTP pass-through in front of the same upstream (the floor for any proxy). */
  passThrough?: boolean;
}

function directVsGateway(options: Options): () => Scenario {
  return () => {
    const processes = new Processes();
    const scenario: Scenario = {
      id: options.id,
      name: options.name,
      targets: [],
      ...(options.defaults ? { defaults: options.defaults } : {}),
      // Memory is measured one target per process behind: another commit's gateway would share the upstream.
      ...(options.memory ? { freshEachRound: true } : { measuresAgainst: true }),
      async setup(ctx) {
        const gc = options.memory ? ['--expose-gc'] : [];
        const upstream = await processes.upstream('upstream', [], gc);
        const behind = options.memory ? await processes.upstream('upstream (behind gateway)', [], gc) : upstream;
        const config = gatewayConfig([httpBackend(BACKEND, behind.url)]);
        const gateway = await processes.gateway(ctx, config, 'gateway', gc);
        const load = options.load(ctx);
        const passThrough = options.passThrough ? await processes.passThrough(upstream.url) : undefined;
        const floor: Target | undefined = passThrough && { name: 'pass-through', url: passThrough.url, load, server: passThrough.child, behind: upstream.child };
        const earlier = scenario.measuresAgainst ? await processes.againstTarget(ctx, config, 'gateway', prefixed(load, BACKEND), behind.child, gc) : undefined;
        const references = [floor, earlier].filter((t): t is Target => t !== undefined);
        scenario.targets = [
          { name: 'direct', url: upstream.url, load, server: upstream.child },
          ...references,
          { name: 'gateway', url: gateway.url, load: prefixed(load, BACKEND), server: gateway.child, behind: behind.child, alsoAgainst: references },
        ];
      },
      async teardown() {
        scenario.targets = [];
        await processes.stopAll();
      },
    };
    return scenario;
  };
}

export const toolsCallOverHttp = directVsGateway({
  id: 'a',
  name: '(a) tools/call, streamable HTTP',
  load: () => ({ mode: 'call', tool: 'echo' }),
  passThrough: true,
});

export const sessionChurn = directVsGateway({
  id: 'd',
  name: '(d) session churn',
  defaults: SHORT_SETTINGS,
  load: () => ({ mode: 'churn', tool: 'echo' }),
});

export const sseStreaming = directVsGateway({
  id: 'e',
  name: '(e) SSE progress streaming',
  defaults: SHORT_SETTINGS,
  load: (ctx) => ({ mode: 'stream', tool: 'progress', steps: ctx.progressSteps }),
});

export const idleSessions = directVsGateway({
  id: 'f',
  name: '(f) idle sessions, memory',
  defaults: { ...SHORT_SETTINGS, concurrency: [50] },
  load: (ctx) => ({ mode: 'idle', sessions: ctx.idleSessions }),
  memory: true,
});
