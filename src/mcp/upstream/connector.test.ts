import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE, STDIO_FIXTURE } from '../../../test/helpers.ts';
import { loadConfigObject } from '../../config/load.ts';
import type { BackendIR, RemoteBackendIR } from '../../ir/types.ts';
import { silentLogger } from '../../telemetry/logger.ts';
import { ChannelRegistry } from './channel-registry.ts';
import { UpstreamConnector } from './connector.ts';
import { HttpPools } from './http-pools.ts';

const client = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } };

function backendOf(url: string): RemoteBackendIR {
  const ir = loadConfigObject({ backends: [{ name: 'b', transport: 'streamable-http', url }], listeners: [{ name: 'l', port: 0, routes: [{ name: 'r', path: '/mcp', backends: ['b'] }] }] }, 'test.yaml');
  return ir.backends.get('b') as RemoteBackendIR;
}

describe('UpstreamConnector.resume for streamable HTTP', () => {
  const connector = new UpstreamConnector(new HttpPools(), new ChannelRegistry(10), 1 << 20, silentLogger);
  const backend = backendOf('http://127.0.0.1:1/mcp');

  it('rebuilds an upstream session once per session reference and backend configuration', () => {
    const ref = { id: 'up-1', protocolVersion: '2025-11-25', features: [] };
    const first = connector.resume(backend, 'sid', ref, client);
    expect(connector.resume(backend, 'sid', ref, client)).toBe(first);
    expect(connector.resume(backend, 'sid', { ...ref }, client)).not.toBe(first);
    // A reload compiles the backend again: its session is built from the new configuration.
    const reloaded = backendOf('http://127.0.0.1:1/mcp');
    const rebuilt = connector.resume(reloaded, 'sid', ref, client);
    expect(rebuilt).not.toBe(first);
    expect(connector.resume(reloaded, 'sid', ref, client)).toBe(rebuilt);
  });

  it('builds it anew on every request that carries per-caller headers', () => {
    const ref = { id: 'up-2', protocolVersion: '2025-11-25', features: [] };
    const a = connector.resume(backend, 'sid', ref, client, { authorization: 'Bearer a' });
    expect(connector.resume(backend, 'sid', ref, client, { authorization: 'Bearer b' })).not.toBe(a);
    expect(connector.resume(backend, 'sid', ref, client)).not.toBe(a);
  });
});

describe('UpstreamConnector.open for a session-scoped stdio backend', () => {
  it('opens one process when a session opens it twice at once (a recovering request and its server stream)', async () => {
    const registry = new ChannelRegistry(10);
    const connector = new UpstreamConnector(new HttpPools(), registry, 1 << 20, silentLogger);
    const pids = join(mkdtempSync(join(tmpdir(), 'connector-')), 'pids');
    const ir = loadConfigObject(
      {
        backends: [{ name: 'echo', transport: 'stdio', command: NODE, args: [STDIO_FIXTURE], env: { FIXTURE_PID_FILE: pids } }],
        listeners: [{ name: 'l', port: 0, routes: [{ name: 'r', path: '/mcp', backends: ['echo'] }] }],
      },
      'test.yaml',
    );
    const backend = ir.backends.get('echo') as BackendIR;
    try {
      const [a, b] = await Promise.all([connector.open(backend, 'sid', client), connector.open(backend, 'sid', client)]);
      expect(a.session).toBe(b.session);
      expect(readFileSync(pids, 'utf8').trim().split('\n')).toHaveLength(1);
    } finally {
      await registry.closeAll();
    }
  });
});
