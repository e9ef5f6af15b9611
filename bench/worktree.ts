/**
 * Another commit's tree beside this one, for `--against`: a detached git worktree in the temp
 * directory sharing this checkout's node_modules (the dependencies it was measured with are
 * this tree's: a comparison of the project's own code), removed when the bench ends. Each
 * checkout has a directory of its own (named after the commit), so two runs against the same
 * commit at once (the bench's tests do that) never remove each other's tree.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The first commit whose bench can start its gateway for another tree (gateway-process.ts --prime). */
const FIRST_SUPPORTED = '2b96e63';

export interface Worktree {
  /** The commit, abbreviated. */
  commit: string;
  dir: string;
  remove(): void;
}

const git = (...args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function remove(dir: string): void {
  try {
    git('worktree', 'remove', '--force', dir);
  } catch {
    // Not (or no longer) a registered worktree: the directory goes, and git forgets it.
    rmSync(dir, { recursive: true, force: true });
    git('worktree', 'prune');
  }
}

export function checkout(rev: string): Worktree {
  let full: string;
  try {
    full = git('rev-parse', '--verify', `${rev}^{commit}`);
  } catch {
    throw new Error(`--against ${JSON.stringify(rev)}: no such commit in ${ROOT}`);
  }
  const commit = full.slice(0, 7);
  const dir = mkdtempSync(join(tmpdir(), `switchboard-bench-${full}-`));
  try {
    git('worktree', 'add', '--detach', '--force', dir, full);
    const script = join(dir, 'bench', 'gateway-process.ts');
    if (!existsSync(script) || !readFileSync(script, 'utf8').includes('--prime')) {
      throw new Error(`--against ${JSON.stringify(rev)}: commit ${commit} predates measuring its gateway beside another (its bench/gateway-process.ts has no --prime; ${FIRST_SUPPORTED} or later has)`);
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  } catch (err) {
    remove(dir);
    throw err;
  }
  return { commit, dir, remove: () => remove(dir) };
}

/**
 * `checkout` for a command's `--against`: a commit that cannot be measured ends the process
 * with status 2 and the reason; the worktree goes on every way out, interrupted ones included
 * (the handler is synchronous), and stderr says where it is.
 */
export function checkoutOrExit(rev: string): Worktree {
  let worktree: Worktree;
  try {
    worktree = checkout(rev);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  process.on('exit', () => worktree.remove());
  process.stderr.write(`against: ${worktree.commit} checked out in ${worktree.dir}\n`);
  return worktree;
}
