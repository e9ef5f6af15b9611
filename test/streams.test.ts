import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startUtilityServer } from '../src/demo/utility-server.ts';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { connectClient, startGateway, waitFor, type RunningGateway } from './helpers.ts';

describe('streams through the gateway', () => {
  let utility: { url: string; close(): Promise<void> };
  let fixture: Fixture;
  let gw: RunningGateway;

  beforeAll(async () => {
    utility = await startUtilityServer({ port: 0 });
    fixture = await startFixtureServer({ name: 'fx', tools: ['echo'] });
    gw = await startGateway([
      { name: 'utility', transport: 'streamable-http', url: utility.url },
      { name: 'fx', transport: 'streamable-http', url: fixture.url },
    ]);
  });

  afterAll(async () => {
    await gw?.stop();
    await fixture?.close();
    await utility?.close();
  });

  it('progress notifications stream to the client before the result (SSE reply)', async () => {
    const { client } = await connectClient(gw.url);
    const progress: number[] = [];
    const result = await client.callTool({ name: 'utility__countdown', arguments: { from: 5, delayMs: 10 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress.length).toBe(5);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(result.isError).not.toBe(true);
    await client.close();
  });

  it('list_changed from an upstream reaches the client on the GET stream', async () => {
    const { client } = await connectClient(gw.url);
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    // Give the client's GET stream time to open through the gateway to both upstreams.
    await waitFor(() => fixture.received.length > 0, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    await fixture.sendToolListChanged();
    await waitFor(() => changed > 0, 5_000, 'list_changed on the client');
    await client.close();
  });
});
