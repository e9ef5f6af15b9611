/**
 * node:http, taken as its CommonJS module object. An ESM `import … from 'node:http'` builds a
 * namespace of every export, which reads node:http's lazy `WebSocket`, `CloseEvent` and
 * `MessageEvent` getters and so loads Node's whole bundled fetch/WebSocket client: about 13 MiB
 * of resident memory and 2.3 MiB of heap for the life of the process, none of it ever used
 * (bench/LOG.md). Type-only imports of node:http stay as they are: they are erased.
 */
export const { createServer } = process.getBuiltinModule('node:http');
