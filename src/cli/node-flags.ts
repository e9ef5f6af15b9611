import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LAUNCHER = new URL('../../bin/switchboard.js', import.meta.url);
const SHEBANG = /^#!\/usr\/bin\/env -S((?: [A-Z_]+=\S+)*) node((?: --[a-z-]+(?:=\S+)?)*)\s*$/;

export interface GatewayRuntime {
  /** Environment variables the process starts with (read by the C library, before any JavaScript). */
  env: Record<string, string>;
  /** Node and V8 flags. */
  flags: string[];
}

/**
 * The environment and Node flags the gateway runs with. They are set in one place, the first
 * line of bin/switchboard.js (what `npm start` and `npx switchboard` execute); whatever starts
 * the gateway another way (the bench, a container command) takes them from here.
 */
export function gatewayRuntime(launcher: URL = LAUNCHER): GatewayRuntime {
  const first = readFileSync(launcher, 'utf8').split('\n', 1)[0] ?? '';
  const match = SHEBANG.exec(first);
  if (!match) throw new Error(`${launcher.pathname}: the first line must be "#!/usr/bin/env -S [NAME=value ...] node [--flag[=value] ...]", got ${JSON.stringify(first)}`);
  const words = (text: string): string[] => text.trim().split(' ').filter(Boolean);
  const env = Object.fromEntries(words(match[1]!).map((assignment) => assignment.split(/=(.*)/, 2)));
  return { env, flags: words(match[2]!) };
}

/**
 * Where the launcher's `module.enableCompileCache()` keeps stripped TypeScript and compiled
 * code (Node's default directory): something that starts the gateway without the launcher
 * shares the cache by setting NODE_COMPILE_CACHE to it.
 */
export const COMPILE_CACHE_DIR = join(tmpdir(), 'node-compile-cache');
