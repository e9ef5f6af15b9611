#!/usr/bin/env -S node --max-semi-space-size=8
// Runs the TypeScript sources directly (Node 22.18+ strips types); see README "Runtime".
// The flags above are the gateway's runtime flags (read by src/cli/node-flags.ts): a young
// generation of 2 × 8 MiB instead of V8's default of up to 2 × 64 MiB, which under load
// halves peak memory and promotes less garbage to the old generation, at no cost in throughput
// (bench/RESULTS.md).
await import('../src/cli/main.ts');
