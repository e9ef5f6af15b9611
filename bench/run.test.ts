import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const RUNNER = fileURLToPath(new URL('./run.ts', import.meta.url));
const AB = fileURLToPath(new URL('./ab.ts', import.meta.url));
const git = async (...args: string[]): Promise<string> => (await run('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)) })).stdout.trim();

/** The worktree a run said it checked out is gone, from disk and from git's list (other tests check out their own at the same time). */
async function expectRemoved(stderr: string, commit: string): Promise<void> {
  const dir = new RegExp(`against: ${commit} checked out in (\\S+)`).exec(stderr)?.[1];
  expect(dir).toContain(`switchboard-bench-`);
  expect(existsSync(dir!)).toBe(false);
  expect(await git('worktree', 'list')).not.toContain(dir);
}

describe('npm run bench', () => {
  it('measures another commit’s gateway beside this one’s, and cleans its worktree away', async () => {
    const commit = await git('rev-parse', '--short', 'HEAD');
    const { stdout, stderr } = await run(process.execPath, [RUNNER, '--scenario', 'a', '--duration', '1', '--warmup', '0.5', '--rounds', '1', '--concurrency', '2', '--warm-rounds', '2', '--no-record', '--against', 'HEAD'], { timeout: 90_000 });
    const rows = stdout.split('\n').filter((line) => /^\(a\) tools\/call, streamable HTTP {2,}/.test(line));
    expect(rows.map((line) => line.split(/\s{2,}/)[1])).toEqual(['direct', 'pass-through', `gateway @${commit}`, 'gateway']);
    // Every row measured calls, none failed.
    for (const row of rows) expect(Number(row.split(/\s{2,}/)[4])).toBeGreaterThan(0);
    expect(stdout).toContain(`/ gateway / c=2: against gateway @${commit}: ops/s`);
    // Each target was warmed up before its first run, two rounds at most here.
    for (const target of ['direct', 'pass-through', `gateway @${commit}`, 'gateway']) {
      expect(stderr).toMatch(new RegExp(`c=2 warm-up 1 ${target}: \\d+ µs CPU/op`));
      expect(stderr).not.toContain(`c=2 warm-up 3 ${target}:`);
    }
    await expectRemoved(stderr, commit);
  }, 120_000);

  it('refuses a commit that does not exist, saying so', async () => {
    await expect(run(process.execPath, [RUNNER, '--scenario', 'a', '--against', 'no-such-commit'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--against "no-such-commit": no such commit') });
  });

  it('loads this gateway and another commit’s at the same time, and says how their CPU per call differs', async () => {
    const commit = await git('rev-parse', '--short', 'HEAD');
    const { stdout, stderr } = await run(process.execPath, [AB, '--against', 'HEAD', '--trials', '2', '--rounds', '2', '--duration', '1', '--warmup', '0.5', '--concurrency', '2', '--warm-rounds', '3'], { timeout: 130_000 });
    for (const trial of [1, 2]) {
      // Each trial's fresh pair is thrown away until its CPU per call holds still: at least two rounds to compare.
      const warmUps = stdout.split('\n').filter((line) => line.startsWith(`trial ${trial} warm-up `) && !line.includes('still moving'));
      expect(warmUps.length).toBeGreaterThanOrEqual(2);
      expect(warmUps.length).toBeLessThanOrEqual(3);
      expect(warmUps[0]).toMatch(new RegExp(`^trial ${trial} warm-up 1: gateway \\d+ µs/call; gateway @${commit} \\d+ µs/call$`));
      const rounds = stdout.split('\n').filter((line) => line.startsWith(`trial ${trial} round `));
      expect(rounds).toHaveLength(2);
      for (const line of rounds) expect(line).toMatch(new RegExp(`^trial ${trial} round \\d: gateway \\d+ µs/call, [1-9]\\d* calls/s; gateway @${commit} \\d+ µs/call, [1-9]\\d* calls/s$`));
    }
    expect(stdout).toMatch(new RegExp(`trials \\(gateway − gateway @${commit}, mean of each trial's rounds\\): [-+]?\\d+, [-+]?\\d+ µs; median [-+]?\\d+ µs; lower in [0-2] of 2`));
    expect(stdout).toMatch(/^rounds: [-+]?\d+, [-+]?\d+, [-+]?\d+, [-+]?\d+ µs$/m);
    await expectRemoved(stderr, commit);
  }, 160_000);
});
