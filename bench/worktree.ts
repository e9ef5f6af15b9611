/**
 * Another commit's tree beside this one, for `--against`: a detached git worktree in the temp
 * directory sharing this checkout's node_modules (the dependencies it was measured with are
 * this tree's: a comparison of the project's own code), removed when the bench ends.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface Worktree {
  /** The commit, abbreviated. */
  commit: string;
  dir: string;
  remove(): void;
}

const git = (...args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

export function checkout(rev: string): Worktree {
  let commit: string;
  try {
    commit = git('rev-parse', '--short', '--verify', `${rev}^{commit}`);
  } catch {
    throw new Error(`--against ${JSON.stringify(rev)}: no such commit in ${ROOT}`);
  }
  const dir = mkdtempSync(join(tmpdir(), `switchboard-bench-${commit}-`));
  git('worktree', 'add', '--detach', '--force', dir, commit);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return {
    commit,
    dir,
    remove: () => {
      try {
        git('worktree', 'remove', '--force', dir);
      } catch {
        rmSync(dir, { recursive: true, force: true });
        git('worktree', 'prune');
      }
    },
  };
}
