/**
 * Scenario (b): a stdio MCP server exposed over streamable HTTP. The baseline is the
 * `mcp-proxy` npm package doing that job; the other target is Switchboard with a stdio
 * backend (scope shared: one process for every session). Both run bench/stdio-echo.ts with
 * the same Node; the stdio server's CPU is read from /proc as "upstream CPU".
 */
import { fileURLToPath } from 'node:url';
import { SHORT_SETTINGS } from '../args.ts';
import { gatewayConfig, stdioBackend } from '../gateway-config.ts';
import { findChildProcess } from '../proc-probe.ts';
import { Processes } from '../processes.ts';
import type { Scenario } from '../scenario.ts';
import { prefixed } from './direct-vs-gateway.ts';

const STDIO_SERVER = fileURLToPath(new URL('../stdio-echo.ts', import.meta.url));

export function stdioVsMcpProxy(): Scenario {
  const processes = new Processes();
  const scenario: Scenario = {
    id: 'b',
    name: '(b) stdio server over HTTP',
    targets: [],
    defaults: SHORT_SETTINGS,
    async setup(ctx) {
      const proxy = await processes.mcpProxy();
      const gateway = await processes.gateway(ctx, gatewayConfig([stdioBackend('echo', process.execPath, [STDIO_SERVER])]));
      const load = { mode: 'call', tool: 'echo' } as const;
      scenario.targets = [
        { name: 'mcp-proxy', url: proxy.url, load, server: proxy.child, behind: await findChildProcess(proxy.child.pid!, 'stdio-echo.ts', 'stdio server (mcp-proxy)') },
        { name: 'switchboard', url: gateway.url, load: prefixed(load, 'echo'), server: gateway.child, behind: await findChildProcess(gateway.child.pid!, 'stdio-echo.ts', 'stdio server (switchboard)') },
      ];
    },
    async teardown() {
      scenario.targets = [];
      await processes.stopAll();
    },
  };
  return scenario;
}
