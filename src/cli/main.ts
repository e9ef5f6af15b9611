#!/usr/bin/env node
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { loadConfigFile } from '../config/load.ts';
import { configJsonSchema } from '../config/schema.ts';
import { explain, type ExplainInput } from '../security/authz/explain.ts';
import { runGateway } from './run.ts';

const program = new Command('switchboard').description('An agentic gateway: many MCP servers behind one governed endpoint').version('0.1.0');

const portNumber = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number');
  return n;
};

program
  .command('run')
  .description('run the gateway from a config file (hot-reloaded on change), or the embedded demo without one')
  .option('-c, --config <file>', 'YAML or JSON config file')
  .option('-p, --port <port>', 'data-plane port for the embedded demo', portNumber)
  .option('--admin-port <port>', 'admin port for the embedded demo', portNumber)
  .action(async (opts: { config?: string; port?: number; adminPort?: number }) => runGateway(opts));

program
  .command('demo')
  .description('run the gateway in front of the bundled demo MCP servers (what `npm start` does)')
  .option('-p, --port <port>', 'data-plane port (0 picks a free one)', portNumber)
  .option('--admin-port <port>', 'admin port (0 picks a free one)', portNumber)
  .action(async (opts: { port?: number; adminPort?: number }) => runGateway(opts));

program
  .command('validate')
  .description('check a config file; prints every problem with its location and exits 1 if there is any')
  .argument('<file>')
  .action((file: string) => {
    try {
      const ir = loadConfigFile(file);
      const routes = ir.listeners.reduce((n, l) => n + l.routes.length, 0);
      console.log(`${file}: valid (${ir.listeners.length} listener(s), ${routes} route(s), ${ir.backends.size} backend(s))`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(err.message);
      process.exitCode = 1;
    }
  });

const policy = program.command('policy').description('inspect authorization policies');
policy
  .command('explain')
  .description('print whether a request would be allowed, and the rule that decides (the external authorizer is not called)')
  .requiredOption('-c, --config <file>', 'config file')
  .requiredOption('-r, --request <file>', 'JSON request: {"identity": {...}, "http": {...}, "mcp": {"method", "tool", "arguments"}}')
  .action((opts: { config: string; request: string }) => {
    try {
      const result = explain(loadConfigFile(opts.config), JSON.parse(readFileSync(opts.request, 'utf8')) as ExplainInput);
      console.log(`${result.decision.allowed ? 'ALLOW' : 'DENY'}  rule: ${result.decision.rule}  (${result.decision.reason})`);
      for (const step of result.steps) console.log(`  ${step.level}: ${step.decision.allowed ? 'allow' : 'deny'} by ${step.decision.rule} — ${step.decision.reason}`);
      if (result.externalAuth) console.log('  note: an external authorizer is configured; it is consulted first at run time');
      process.exitCode = result.decision.allowed ? 0 : 2;
    } catch (err) {
      console.error(err instanceof ConfigError ? err.message : `policy explain: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  });

program
  .command('schema')
  .description('print the JSON Schema of the config file (for editors)')
  .option('-o, --out <file>', 'write it to a file instead')
  .action((opts: { out?: string }) => {
    const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
    if (opts.out) writeFileSync(opts.out, text);
    else process.stdout.write(text);
  });

await program.parseAsync();
