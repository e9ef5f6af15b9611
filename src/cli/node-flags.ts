import { readFileSync } from 'node:fs';

const LAUNCHER = new URL('../../bin/switchboard.js', import.meta.url);
const SHEBANG = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+(?:=\S+)?)*)\s*$/;

/**
 * The Node flags the gateway runs with. They are set in one place, the first line of
 * bin/switchboard.js (what `npm start` and `npx switchboard` execute); whatever starts the
 * gateway another way (the bench, a container command) takes them from here.
 */
export function gatewayNodeFlags(): string[] {
  const first = readFileSync(LAUNCHER, 'utf8').split('\n', 1)[0] ?? '';
  const match = SHEBANG.exec(first);
  if (!match) throw new Error(`${LAUNCHER.pathname}: the first line must be "#!/usr/bin/env -S node [--flag[=value] ...]", got ${JSON.stringify(first)}`);
  return match[1]!.trim().split(' ').filter(Boolean);
}
