/**
 * The gateway under test, alone in its process: either in front of one streamable-HTTP
 * upstream (`--upstream URL`), or running a whole config document (`--config JSON`, see
 * gateway-config.ts) that has a listener named "bench".
 *
 * Run: node bench/gateway-process.ts (--upstream http://127.0.0.1:PORT/mcp | --config JSON) [--log-level warn]
 * With `--prime` it only loads its modules and exits: that fills Node's compile cache, as the
 * launcher's first start does, so a gateway started next never loads the TypeScript stripper.
 * Prints `{"ready":true,"url":"http://127.0.0.1:PORT/mcp"}` on stdout once it listens, answers
 * CPU/memory probes over IPC, and stops cleanly on SIGTERM/SIGINT (so `--cpu-prof` can write
 * its profile on exit).
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfigObject } from '../src/config/load.ts';
import { Gateway } from '../src/gateway.ts';
import { createLogger, silentLogger, type LogLevel } from '../src/telemetry/logger.ts';
import { gatewayConfig, httpBackend, LISTENER } from './gateway-config.ts';
import { announce, serveProcessStats } from './proc-stats.ts';

const { values } = parseArgs({
  options: { upstream: { type: 'string' }, config: { type: 'string' }, 'log-level': { type: 'string', default: 'silent' }, prime: { type: 'boolean', default: false } },
});
if (values.prime) process.exit(0);
if (!values.upstream === !values.config) {
  process.stderr.write('usage: node bench/gateway-process.ts (--upstream URL | --config JSON) [--log-level warn]\n');
  process.exit(2);
}
const level = values['log-level'] as LogLevel;

const config = values.config ? (JSON.parse(values.config) as ReturnType<typeof gatewayConfig>) : gatewayConfig([httpBackend('echo', values.upstream!)]);
const ir = loadConfigObject({ ...config, logging: { level } }, 'bench');
// stdout is the ready line's; gateway logs, when asked for, go to stderr.
const logger = level === 'silent' ? silentLogger : createLogger(level, pino.destination(2));
const gateway = new Gateway(ir, logger);
await gateway.start();

let stopping: Promise<void> | undefined;
const stop = (): Promise<void> =>
  (stopping ??= gateway
    .stop()
    .catch((err: unknown) => process.stderr.write(`[gateway] stop failed: ${(err as Error).message}\n`))
    .then(() => process.exit(0)));
serveProcessStats(() => void stop());
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

const port = gateway.addresses().get(LISTENER)!.port;
announce({ url: `http://127.0.0.1:${port}/mcp` });
