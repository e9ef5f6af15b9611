import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gatewayNodeFlags } from './node-flags.ts';

describe('the gateway runtime flags', () => {
  it('are read from the launcher and accepted by Node', () => {
    const flags = gatewayNodeFlags();
    expect(flags).toContain('--max-semi-space-size=8');
    const run = spawnSync(process.execPath, [...flags, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('reach the gateway npm start runs: the start script executes the launcher', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    expect(pkg.scripts.start).toMatch(/^bin\/switchboard\.js /);
    expect(pkg.bin.switchboard).toBe('bin/switchboard.js');
  });
});
