#!/usr/bin/env node
// Runs the TypeScript sources directly (Node 22.18+ strips types); see README "Runtime".
await import('../src/cli/main.ts');
