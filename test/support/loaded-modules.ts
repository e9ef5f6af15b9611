// Preloaded into a gateway process by footprint.test.ts: when the process exits, writes the
// Node built-ins and the CommonJS files it loaded to the file SWITCHBOARD_LOADED_MODULES names.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const out = process.env.SWITCHBOARD_LOADED_MODULES!;
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  writeFileSync(out, JSON.stringify({ builtins: (process as unknown as { moduleLoadList: string[] }).moduleLoadList, files: Object.keys(cache) }));
});
