import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { rawSession, startGateway, type RunningGateway } from './helpers.ts';

/** Bodies a hostile or broken client might send. */
const hostileBody = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.string({ maxLength: 512 }).map((s) => new TextEncoder().encode(s)),
  fc.nat({ max: 20_000 }).map((n) => new TextEncoder().encode(`${'['.repeat(n)}${']'.repeat(n)}`)),
  fc.nat({ max: 5_000 }).map((n) => new TextEncoder().encode(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`)),
  fc.constantFrom('1e999999', '-0', '123456789012345678901234567890', '{"jsonrpc":"2.0","id":1e400,"method":"ping"}').map((s) => new TextEncoder().encode(s)),
  fc.constant(Uint8Array.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0xff, 0xfe, 0x7d])),
  fc
    .record({
      jsonrpc: fc.constantFrom('2.0', '1.0', 2),
      id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.object()),
      method: fc.oneof(fc.constantFrom('tools/call', 'tools/list', 'resources/read', 'prompts/get', 'initialize', 'completion/complete', 'tasks/get', 'notifications/cancelled'), fc.string()),
      params: fc.oneof(fc.jsonValue(), fc.record({ name: fc.string(), uri: fc.string(), cursor: fc.string(), taskId: fc.string(), arguments: fc.jsonValue() })),
    })
    .map((m) => new TextEncoder().encode(JSON.stringify(m))),
);

describe('bounded fuzz of the HTTP endpoint', () => {
  let up: Fixture;
  let gw: RunningGateway;
  let headers: Record<string, string>;

  beforeAll(async () => {
    up = await startFixtureServer({ name: 'up', tools: ['echo'], resources: ['file:///a'], prompts: ['p'] });
    gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }], {}, { limits: { maxBodyBytes: 65_536, shutdownGrace: 200 } });
    const sid = await rawSession(gw.url);
    headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  });

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('after every hostile body the gateway still answers a probe on the same session', async () => {
    await fc.assert(
      fc.asyncProperty(hostileBody, async (body) => {
        const res = await fetch(gw.url, { method: 'POST', headers, body });
        await res.arrayBuffer();
        expect(res.status).toBeLessThan(500);
        const probe = await fetch(gw.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 'probe', method: 'ping' }) });
        expect(probe.status).toBe(200);
        expect(await probe.json()).toEqual({ jsonrpc: '2.0', id: 'probe', result: {} });
      }),
      { numRuns: 300 },
    );
  });
});
