import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gatewayRuntime } from './node-flags.ts';

describe('the gateway runtime flags', () => {
  it('are read from the launcher and accepted by Node', () => {
    const { env, flags } = gatewayRuntime();
    expect(flags).toContain('--max-semi-space-size=8');
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

  it('start the CLI through the launcher, which fills a compile cache in the temp directory', () => {
    const temp = mkdtempSync(join(tmpdir(), 'switchboard-launcher-'));
    try {
      const launcher = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));
      // The launcher's shebang finds `node` on PATH, as npm scripts and npx arrange.
      const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, TMPDIR: temp };
      const run = spawnSync(launcher, ['--help'], { encoding: 'utf8', env });
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/Usage: switchboard/);
      expect(readdirSync(join(temp, 'node-compile-cache')).length).toBeGreaterThan(0);
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  });
});
