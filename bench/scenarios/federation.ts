/**
 * Scenario (c): a federation of 10 upstreams, each with its own 20 tools. All ten servers run
 * in ONE upstream process on ten ports (ten processes would swamp a 2-core machine). Member i
 * takes (i + 1) × LIST_LATENCY_MS to answer tools/list, so the members differ in speed as the
 * servers of a real federation do, and the fan-out's cost shows against the slowest of them.
 *
 * - tools/list through the gateway (merged, every name prefixed: 200 tools) against tools/list
 *   sent directly to one upstream (20 tools); the baseline is the slowest single upstream,
 *   picked by the runner's short screening runs of all ten at the same concurrency. At
 *   concurrency 1 this is the target's question (is the merged list as fast as the slowest
 *   member?); at 16 one process serving ten members' lists per gateway list is CPU-bound, and
 *   the row shows what the merge costs in CPU;
 * - tools/call of a random tool: through the gateway a random one of the 200 (so routed to a
 *   random backend), directly a random one of member 0's 20.
 */
import { SHORT_SETTINGS } from '../args.ts';
import { gatewayConfig, httpBackend } from '../gateway-config.ts';
import { Processes } from '../processes.ts';
import type { Scenario, Target } from '../scenario.ts';
import { memberToolNames, TOOLS_PER_MEMBER } from '../tools.ts';

const MEMBERS = 10;
/** Member i answers tools/list after (i + 1) × this: 1 ms to 10 ms. */
const LIST_LATENCY_MS = 1;
const backendName = (i: number): string => `m${i}`;

export function federation(): Scenario {
  const processes = new Processes();
  const scenario: Scenario = {
    id: 'c',
    name: `(c) federation of ${MEMBERS}`,
    targets: [],
    defaults: { ...SHORT_SETTINGS, concurrency: [1, 16] },
    async setup(ctx) {
      const upstream = await processes.upstream(`upstream ×${MEMBERS}`, ['--members', String(MEMBERS), '--list-latency-ms', String(LIST_LATENCY_MS)]);
      if (upstream.urls.length !== MEMBERS) throw new Error(`the upstream process announced ${upstream.urls.length} members, not ${MEMBERS}`);
      const gateway = await processes.gateway(ctx, gatewayConfig(upstream.urls.map((url, i) => httpBackend(backendName(i), url))));
      const directList = (i: number): Target => ({ name: `direct ${backendName(i)}`, url: upstream.urls[i]!, load: { mode: 'list', expectTools: TOOLS_PER_MEMBER }, server: upstream.child });
      const listDirect: Target = { ...directList(0), name: 'direct, slowest', slowestOf: upstream.urls.map((_, i) => directList(i)) };
      const callDirect: Target = { name: `direct ${backendName(0)}`, url: upstream.urls[0]!, load: { mode: 'call', tools: memberToolNames(0) }, server: upstream.child };
      callDirect.baseline = callDirect; // a baseline of its own, not compared with the list rows
      const allTools = upstream.urls.flatMap((_, i) => memberToolNames(i).map((t) => `${backendName(i)}__${t}`));
      scenario.targets = [
        listDirect,
        { name: 'gateway', url: gateway.url, load: { mode: 'list', expectTools: MEMBERS * TOOLS_PER_MEMBER }, server: gateway.child, behind: upstream.child, baseline: listDirect },
        callDirect,
        { name: 'gateway', url: gateway.url, load: { mode: 'call', tools: allTools }, server: gateway.child, behind: upstream.child, baseline: callDirect },
      ];
    },
    async teardown() {
      scenario.targets = [];
      await processes.stopAll();
    },
  };
  return scenario;
}
