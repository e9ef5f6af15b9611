import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from './gateway-config.ts';
import { Processes } from './processes.ts';
import type { ScenarioContext } from './scenario.ts';
import { checkout } from './worktree.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const stub = mkdtempSync(join(tmpdir(), 'bench-stub-tree-'));
afterAll(() => rmSync(stub, { recursive: true, force: true }));

describe("another commit's tree for --against", () => {
  it('is a worktree of that commit sharing node_modules, and goes without taking node_modules along', () => {
    const tree = checkout('HEAD');
    expect(existsSync(join(tree.dir, 'bench', 'gateway-process.ts'))).toBe(true);
    expect(lstatSync(join(tree.dir, 'node_modules')).isSymbolicLink()).toBe(true);
    tree.remove();
    expect(existsSync(tree.dir)).toBe(false);
    expect(existsSync(join(ROOT, 'node_modules', 'undici', 'package.json'))).toBe(true);
  });

  it("starts that tree's own gateway script with that tree's own launcher flags", async () => {
    // A stand-in tree: its launcher sets a variable and a flag, its gateway announces what it got.
    mkdirSync(join(stub, 'bin'));
    mkdirSync(join(stub, 'bench'));
    writeFileSync(join(stub, 'bin', 'switchboard.js'), '#!/usr/bin/env -S STUB_MARK=from-stub-launcher node --stack-size=900\n');
    writeFileSync(
      join(stub, 'bench', 'gateway-process.ts'),
      [
        "if (process.argv.includes('--prime')) process.exit(0);",
        "const url = `http://127.0.0.1:9/${process.env.STUB_MARK}/${process.execArgv.join(',')}/${encodeURIComponent(process.argv[1]!)}`;",
        "process.stdout.write(JSON.stringify({ ready: true, url }) + '\\n');",
        "process.on('SIGTERM', () => process.exit(0));",
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const processes = new Processes();
    const ctx: ScenarioContext = { gatewayExecArgv: [], gatewayLogLevel: 'silent', idleSessions: 1, progressSteps: 1 };
    try {
      const started = await processes.gateway(ctx, gatewayConfig([]), 'stub', [], stub);
      expect(started.url).toContain('/from-stub-launcher/');
      expect(started.url).toContain('--stack-size=900');
      expect(decodeURIComponent(started.url.split('/').at(-1)!)).toBe(join(stub, 'bench', 'gateway-process.ts'));
    } finally {
      await processes.stopAll();
    }
  });
});
