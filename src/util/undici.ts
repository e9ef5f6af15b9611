/**
 * The parts of undici the gateway uses: its dispatchers, their connector and their request API.
 * undici's index loads every other part too (fetch, WebSocket, EventSource, caches, cookies,
 * mocks, proxy agents), which costs ~2.4 MiB of heap and ~5 MiB of resident memory for the
 * life of the process (bench/LOG.md). undici's package does not close its files off (it has no
 * "exports" map); package.json takes undici's patch releases only, and undici.test.ts checks
 * that each one here is the very object undici's index exports, so an undici that moves them
 * fails the tests, not a gateway.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

// What undici's index does to make `request`, `stream`, `pipeline`, `connect` and `upgrade`
// methods of every dispatcher.
Object.assign((load('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher).prototype, load('undici/lib/api/index.js'));

export const Pool = load('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;
export const buildConnector = load('undici/lib/core/connect.js') as typeof Undici.buildConnector;
export type ConnectorOptions = Undici.buildConnector.Options;
export type Connector = Undici.buildConnector.connector;
