#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=8 --no-parallel-scavenge --max-inlined-bytecode-size-cumulative=9200 --max-inlined-bytecode-size-absolute=9200
// Runs the TypeScript sources directly (Node 22.18+ strips types); see README "Runtime".
// The first line is the gateway's runtime (read by src/cli/node-flags.ts): a young generation
// of 2 × 8 MiB instead of V8's default of up to 2 × 64 MiB, which under load halves peak
// memory at no cost in throughput; scavenges of that young generation on the main thread
// alone (a few hundred KiB survive each one: helper threads cost more in waiting for a core
// than they save, a quarter of the scavenge time on 2 cores); and two malloc arenas instead
// of up to eight per core, so the memory V8's compiler threads free goes back to one place
// (about 7 MiB less peak memory under load); and TurboFan allowed to inline up to 9,200 bytes
// of bytecode into one optimized function instead of V8's 920 (and 4,600 at most): a forwarded
// call passes through a dozen small layers, whose calls and property loads through their
// interfaces cost ~6 µs less per call (5%) once inlined, for ~4 MiB more peak memory.
// bench/LOG.md has the measurements.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Stripped TypeScript and compiled code are cached on disk (in the OS temp directory, keyed
// by content and Node version), so the TypeScript stripper, about 25 MiB of resident memory
// for the life of the process, is loaded only where the cache lacks a module. On the first
// start of a release (no marker yet), a throwaway process loads every module once and fills
// the cache: even that first gateway never carries the stripper. Where the directory cannot
// be written the gateway runs without it.
const cache = module.enableCompileCache?.();
if (cache?.directory && process.env.SWITCHBOARD_PRIMING === undefined) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const marker = join(cache.directory, `switchboard-${version}-primed`);
  if (!existsSync(marker)) {
    const primed = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--version'], { stdio: 'ignore', env: { ...process.env, SWITCHBOARD_PRIMING: '1' } });
    if (primed.status === 0) writeFileSync(marker, '');
  }
}
// The priming process also loads what the CLI imports only on demand (the embedded demo).
if (process.env.SWITCHBOARD_PRIMING !== undefined) await import('../src/demo/embedded.ts');
await import('../src/cli/main.ts');
