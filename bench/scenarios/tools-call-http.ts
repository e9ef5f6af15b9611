/**
 * Scenario (a): tools/call over streamable HTTP, the client calling the upstream directly
 * versus the same upstream through the gateway. Upstream and gateway each run in their own
 * process and stay up across rounds; the load generator opens a fresh session per run.
 */
import { Child } from '../child.ts';
import type { Scenario, ScenarioContext } from '../scenario.ts';

export function toolsCallOverHttp(): Scenario {
  let upstream: Child | undefined;
  let gateway: Child | undefined;
  const scenario: Scenario = {
    name: '(a) tools/call, streamable HTTP',
    targets: [],
    async setup(ctx: ScenarioContext) {
      upstream = new Child('./upstream.ts', [], { label: 'upstream' });
      const upstreamUrl = await upstream.ready();
      gateway = new Child('./gateway-process.ts', ['--upstream', upstreamUrl, '--log-level', ctx.gatewayLogLevel], {
        label: 'gateway',
        execArgv: ctx.gatewayExecArgv,
      });
      const gatewayUrl = await gateway.ready();
      scenario.targets = [
        { name: 'direct', url: upstreamUrl, tool: 'echo', server: upstream },
        { name: 'gateway', url: gatewayUrl, tool: 'echo__echo', server: gateway, behind: upstream },
      ];
    },
    async teardown() {
      scenario.targets = [];
      // Gateway first and gently: with --cpu-prof it writes its profile on a clean exit.
      await gateway?.stop(10_000);
      await upstream?.stop();
    },
  };
  return scenario;
}
