import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { connectClient, ROOT, startCli, stopChild } from './helpers.ts';

// Parts of undici and of Node that a gateway never uses, and that would stay in its memory
// for its whole life once loaded (bench/LOG.md has what each costs).
describe('a gateway process', () => {
  let upstream: Fixture;
  let temp: string;
  beforeAll(async () => {
    upstream = await startFixtureServer({ name: 'up', tools: ['echo'] });
    temp = mkdtempSync(join(tmpdir(), 'switchboard-footprint-'));
  });
  afterAll(async () => {
    await upstream.close();
    rmSync(temp, { recursive: true, force: true });
  });

  it("forwards a tools/call without loading undici's index or Node's bundled fetch client", async () => {
    const config = join(temp, 'config.json');
    const report = join(temp, 'loaded.json');
    writeFileSync(
      config,
      JSON.stringify({
        listeners: [{ name: 'main', host: '127.0.0.1', port: 0, routes: [{ name: 'mcp', path: '/mcp', backends: ['up'] }] }],
        backends: [{ name: 'up', transport: 'streamable-http', url: upstream.url }],
        admin: { host: '127.0.0.1', port: 0 },
      }),
    );
    const gateway = await startCli(['run', '--config', config], {
      NODE_OPTIONS: `--import ${JSON.stringify(`${ROOT}test/support/loaded-modules.ts`)}`,
      SWITCHBOARD_LOADED_MODULES: report,
    });
    let exitCode: number | null;
    try {
      const { client } = await connectClient(gateway.url);
      const result = await client.callTool({ name: 'up__echo', arguments: { text: 'hi' } });
      expect(result.structuredContent).toEqual({ server: 'up', tool: 'echo', args: { text: 'hi' } });
      await client.close();
    } finally {
      exitCode = await stopChild(gateway.child);
    }
    expect(exitCode).toBe(0);
    const loaded = JSON.parse(readFileSync(report, 'utf8')) as { builtins: string[]; files: string[] };
    expect(loaded.files.some((file) => file.includes('/undici/lib/dispatcher/pool.js'))).toBe(true);
    expect(loaded.files.filter((file) => file.endsWith('/undici/index.js') || file.includes('/undici/lib/web/'))).toEqual([]);
    expect(loaded.builtins.filter((name) => name.includes('deps/undici'))).toEqual([]);
  });
});
