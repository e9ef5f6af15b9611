import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stopChild, untilEndpoint } from '../../test/helpers.ts';
import { gatewayRuntime } from './node-flags.ts';

describe('the gateway runtime flags', () => {
  it('are read from the launcher and accepted by Node', () => {
    const { env, flags } = gatewayRuntime();
    expect(flags).toEqual(expect.arrayContaining(['--max-semi-space-size=8', '--no-parallel-scavenge', '--max-inlined-bytecode-size-cumulative=9200', '--max-inlined-bytecode-size-absolute=9200']));
    expect(env).toEqual({ MALLOC_ARENA_MAX: '2' });
    const run = spawnSync(process.execPath, [...flags, '-e', 'console.log(process.env.MALLOC_ARENA_MAX)'], { encoding: 'utf8', env: { ...process.env, ...env } });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('2');
    expect(run.status).toBe(0);
  });

  it('reach the gateway npm start runs: the start script executes the launcher', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    expect(pkg.scripts.start).toMatch(/^bin\/switchboard\.js /);
    expect(pkg.bin.switchboard).toBe('bin/switchboard.js');
  });

  it('start the CLI through the launcher, whose process never strips TypeScript: a throwaway one fills the compile cache first', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'switchboard-launcher-'));
    try {
      const launcher = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));
      // The launcher's shebang finds `node` on PATH, as npm scripts and npx arrange.
      const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, TMPDIR: temp, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' };
      const first = spawnSync(launcher, ['--help'], { encoding: 'utf8', env });
      expect(first.status).toBe(0);
      expect(first.stdout).toMatch(/Usage: switchboard/);
      // Node logs its compile cache on stderr: on an empty cache, the launcher's own process still found every module stripped.
      expect(first.stderr).toMatch(/retrieving transpile cache for StrippedTypeScript \S+\/src\/cli\/main\.ts\.\.\.success/);
      expect(first.stderr).not.toMatch(/no transpile cache for StrippedTypeScript/);
      const cacheDir = join(temp, 'node-compile-cache');
      const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      expect(readdirSync(cacheDir)).toContain(`switchboard-${version}-primed`);
      // Primed once per release: the next start goes straight to the CLI, and still finds everything.
      const second = spawnSync(launcher, ['--help'], { encoding: 'utf8', env });
      expect(second.status).toBe(0);
      expect(second.stderr).not.toMatch(/no transpile cache for StrippedTypeScript/);
      // The embedded demo, which the CLI imports only when it runs, was primed too.
      const child = spawn(launcher, ['demo', '--port', '0', '--admin-port', '0'], { env });
      const started = await untilEndpoint(child).finally(() => stopChild(child));
      const demo = started.output();
      expect(demo).toMatch(/MCP endpoint/);
      expect(demo).toMatch(/retrieving transpile cache for StrippedTypeScript \S+\/src\/demo\/embedded\.ts\.\.\.success/);
      expect(demo).not.toMatch(/no transpile cache for StrippedTypeScript/);
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  });
});
