import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { NODE, ROOT, startCli, stopChild } from './helpers.ts';

const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(NODE, [`${ROOT}src/cli/main.ts`, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err: any) {
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('switchboard CLI', () => {
  it('validate accepts every example config', async () => {
    for (const example of ['examples/federation.yaml', 'examples/stdio-servers.yaml', 'examples/secured.yaml']) {
      const r = await cli(['validate', `${ROOT}${example}`]);
      expect(r.stderr, example).toBe('');
      expect(r.code, example).toBe(0);
      expect(r.stdout).toContain('valid');
    }
  });

  it('validate exits 1 and lists every error with its location', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'listeners:\n  - name: x\n    port: -1\n    routes:\n      - name: r\n        path: mcp\n        backends: [ghost]\nextra: true\n');
    const r = await cli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:3:11: listeners[0].port:`);
    expect(r.stderr).toContain(`${file}:6:15: listeners[0].routes[0].path: expected an absolute URL path`);
    expect(r.stderr).toContain(`${file}:8:1: extra: unknown field "extra"`);
    // References are checked once the document has the right shape.
    writeFileSync(file, 'listeners:\n  - name: x\n    routes:\n      - name: r\n        path: /mcp\n        backends: [ghost]\n');
    const refs = await cli(['validate', file]);
    expect(refs.code).toBe(1);
    expect(refs.stderr).toContain(`${file}:6:20: listeners[0].routes[0].backends[0]: unknown backend "ghost" (expected one of: none defined)`);
  });

  it('policy explain prints the decision and the rule that made it', async () => {
    const denied = await cli(['policy', 'explain', '--config', `${ROOT}examples/secured.yaml`, '--request', `${ROOT}examples/explain-request.json`]);
    expect(denied.code).toBe(2);
    expect(denied.stdout).toMatch(/^DENY {2}rule: no-deletes-unless-admin /);
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-explain-'));
    const admin = join(dir, 'admin.json');
    writeFileSync(admin, JSON.stringify({ identity: { subject: 'root', claims: { groups: ['admin', 'staff'] } }, mcp: { method: 'tools/call', tool: 'notes__delete_note', arguments: {} } }));
    const allowed = await cli(['policy', 'explain', '--config', `${ROOT}examples/secured.yaml`, '--request', admin]);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/^ALLOW {2}rule: rules\/notes-for-staff /);
  });

  it('run with a missing config file says which file', async () => {
    const r = await cli(['run', '--config', '/nonexistent/switchboard.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/nonexistent/switchboard.yaml');
    expect(r.stderr).toContain('ENOENT');
  });

  it('the embedded default answers the MCP Inspector CLI, and stops cleanly on SIGTERM', async () => {
    const demo = await startCli(['demo', '--port', '0', '--admin-port', '0']);
    try {
      const inspector = `${ROOT}node_modules/@modelcontextprotocol/inspector/cli/build/cli.js`;
      const { stdout } = await run(NODE, [inspector, '--cli', demo.url, '--transport', 'http', '--method', 'tools/list'], { timeout: 60_000 });
      const names = (JSON.parse(stdout) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
      expect(names).toContain('utility__echo');
      expect(names).toContain('notes__list_notes');
      const call = await run(NODE, [inspector, '--cli', demo.url, '--transport', 'http', '--method', 'tools/call', '--tool-name', 'utility__echo', '--tool-arg', 'text=hi'], {
        timeout: 60_000,
      });
      expect(JSON.parse(call.stdout).content[0].text).toBe('hi');
    } finally {
      expect(await stopChild(demo.child)).toBe(0);
    }
  });
});
