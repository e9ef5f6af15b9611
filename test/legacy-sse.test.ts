import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLegacySseServer } from './fixtures/legacy-sse-server.ts';
import { connectClient, startGateway, type RunningGateway } from './helpers.ts';

describe('legacy HTTP+SSE upstream', () => {
  let upstream: { url: string; close(): Promise<void> };
  let gw: RunningGateway;

  beforeAll(async () => {
    upstream = await startLegacySseServer('old');
    gw = await startGateway([{ name: 'old', transport: 'sse', url: upstream.url }]);
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('is federated behind the streamable HTTP endpoint', async () => {
    const { client } = await connectClient(gw.url);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['old__shout']);
    const r = await client.callTool({ name: 'old__shout', arguments: { text: 'hello' } });
    expect((r.content as any)[0].text).toBe('old:HELLO');
    await client.close();
  });

  it('two sessions get two upstream connections that do not mix', async () => {
    const a = await connectClient(gw.url);
    const b = await connectClient(gw.url);
    const [ra, rb] = await Promise.all([
      a.client.callTool({ name: 'old__shout', arguments: { text: 'a' } }),
      b.client.callTool({ name: 'old__shout', arguments: { text: 'b' } }),
    ]);
    expect((ra.content as any)[0].text).toBe('old:A');
    expect((rb.content as any)[0].text).toBe('old:B');
    await a.transport.terminateSession();
    await b.client.close();
  });

  it('a client listens while its upstream goes away for good: the gateway keeps trying, and keeps serving', async () => {
    const gone = await startLegacySseServer('gone');
    const gateway = await startGateway([{ name: 'gone', transport: 'sse', url: gone.url }]);
    const { client } = await connectClient(gateway.url);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['gone__shout']);
      await gone.close();
      // The server stream is opened again after 0.5 s, then 1 s: each time the upstream refuses the connection.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await client.ping();
    } finally {
      await client.close();
      await gateway.stop();
    }
  });
});
