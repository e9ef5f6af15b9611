/**
 * node:http, taken as its CommonJS module object. An ESM `import … from 'node:http'` builds a
 * namespace of every export, which reads node:http's lazy `WebSocket`, `CloseEvent` and
 * `MessageEvent` getters and so loads Node's whole bundled fetch/WebSocket client, never used:
 * in a gateway 3.7 MiB of resident memory and 0.8 MiB of heap for the life of the process, in a
 * bare Node 13 and 2.3 MiB (bench/LOG.md). Type-only imports of node:http are erased: they stay.
 */
export const { createServer } = process.getBuiltinModule('node:http');
