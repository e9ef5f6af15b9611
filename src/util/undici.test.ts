import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as full from 'undici';
import { describe, expect, it } from 'vitest';
import { NODE } from '../../test/helpers.ts';
import { Agent, buildConnector, Pool } from './undici.ts';

describe('the parts of undici the gateway loads', () => {
  it('are the objects undici itself exports', () => {
    expect(Pool).toBe(full.Pool);
    expect(Agent).toBe(full.Agent);
    expect(buildConnector).toBe(full.buildConnector);
  });

  // In a process of its own: this file has loaded undici's index, which adds the request API itself.
  it('answer requests on a pool and an agent without undici index', async () => {
    const script = `
      import { createServer } from 'node:http';
      import { createRequire } from 'node:module';
      import { Agent, Pool } from ${JSON.stringify(new URL('./undici.ts', import.meta.url).href)};
      const server = createServer((req, res) => res.end(req.method + ' ' + req.url));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const origin = 'http://127.0.0.1:' + server.address().port;
      const pool = new Pool(origin);
      const agent = new Agent();
      const a = await (await pool.request({ method: 'GET', path: '/a?b=1' })).body.text();
      const b = await (await agent.request({ origin, method: 'POST', path: '/c', body: 'x' })).body.text();
      const index = Object.keys(createRequire(import.meta.url).cache).some((file) => file.endsWith('/undici/index.js'));
      await Promise.all([pool.close(), agent.close()]);
      server.close();
      console.log(JSON.stringify({ a, b, index }));
    `;
    const { stdout } = await promisify(execFile)(NODE, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ a: 'GET /a?b=1', b: 'POST /c', index: false });
  });
});
