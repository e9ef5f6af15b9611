import { ConfigError } from '../config/errors.ts';
import { loadConfigFile, loadConfigObject } from '../config/load.ts';
import { ConfigWatcher } from '../config/watch.ts';
import { Gateway } from '../gateway.ts';
import { createLogger } from '../telemetry/logger.ts';

/** Starts the gateway, prints where to reach it, and stops it in order on SIGTERM or SIGINT. */
export async function runGateway(opts: { config?: string; port?: number; adminPort?: number }): Promise<void> {
  // The demo, and the MCP SDK server it runs in this process, are loaded only when asked for:
  // the SDK's server loads Node's bundled fetch client, which a gateway would carry for nothing.
  const demo = opts.config ? undefined : await (await import('../demo/embedded.ts')).embeddedDefault({ port: opts.port, adminPort: opts.adminPort });
  let ir;
  try {
    ir = opts.config ? loadConfigFile(opts.config) : loadConfigObject(demo!.config, 'embedded default');
  } catch (err) {
    await demo?.close();
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(1);
  }
  const logger = createLogger(ir.logLevel);
  if (ir.session.generated) logger.info('no session.key configured: generated one for this process; sessions end when it stops');
  const gateway = new Gateway(ir, logger);
  try {
    await gateway.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'could not start');
    await gateway.stop();
    await demo?.close();
    process.exit(1);
  }
  const watcher = opts.config ? new ConfigWatcher(opts.config, (next) => gateway.reload(next), logger) : undefined;
  watcher?.start();
  printBanner(gateway, demo !== undefined);

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    watcher?.stop();
    await gateway.stop();
    await demo?.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function printBanner(gateway: Gateway, isDemo: boolean): void {
  const lines = ['', isDemo ? 'Switchboard is running with the bundled demo MCP servers (utility over HTTP, notes over stdio).' : 'Switchboard is running.'];
  const addresses = gateway.addresses();
  for (const l of gateway.config.listeners) {
    const a = addresses.get(l.name);
    if (!a) continue;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    for (const r of l.routes) lines.push(`  MCP endpoint  http://${host}:${a.port}${r.path}   (${r.backends.map((b) => b.name).join(', ')})`);
  }
  const admin = gateway.adminAddress;
  if (admin) lines.push(`  Health        http://${admin.address}:${admin.port}/healthz`);
  const first = lines.find((l) => l.includes('MCP endpoint'))?.split(/\s+/)[3];
  if (first) {
    lines.push('', 'Try it:', `  npx @modelcontextprotocol/inspector --cli ${first} --transport http --method tools/list`);
    lines.push(`  npx @modelcontextprotocol/inspector --cli ${first} --transport http --method tools/call --tool-name utility__echo --tool-arg text=hello`);
  }
  console.log(`${lines.join('\n')}\n`);
}
