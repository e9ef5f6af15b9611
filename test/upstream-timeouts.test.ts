import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/jsonrpc/errors.ts';
import { startReverseServer, type ReverseServer } from './fixtures/reverse-server.ts';
import { post, rawSession, startGateway, waitFor, type RunningGateway } from './helpers.ts';
import { replyMessages } from './support/sse.ts';

describe('upstream timeouts (streamable HTTP backend, timeout 300ms)', () => {
  let upstream: ReverseServer;
  let gw: RunningGateway;
  let headers: Record<string, string>;

  beforeAll(async () => {
    upstream = await startReverseServer('slow');
    gw = await startGateway([{ name: 'slow', transport: 'streamable-http', url: upstream.url, timeout: '300ms' }]);
    headers = { 'mcp-session-id': await rawSession(gw.url), 'mcp-protocol-version': '2025-11-25' };
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('answers a call whose response does not start in time with a timeout error, and tells the upstream to stop', async () => {
    const started = Date.now();
    const res = await post(gw.url, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow__wait', arguments: { ms: 10_000 } } }, headers);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(res.status).toBe(200);
    expect(res.json.id).toBe(7);
    expect(res.json.error.code).toBe(ErrorCode.RequestTimeout);
    expect(res.json.error.message).toMatch(/timed out/);
    // notifications/cancelled reached the upstream: its tool saw the abort.
    await waitFor(() => upstream.cancelled.includes('wait'), 5_000, 'the upstream to cancel the call');
  });

  it('times out a reply that stalls after it started, passing on what came before', async () => {
    const res = await post(
      gw.url,
      { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'slow__progress', arguments: { steps: 3, delayMs: 2_000 }, _meta: { progressToken: 'p' } } },
      headers,
    );
    expect(res.status).toBe(200);
    const messages = replyMessages(res.text);
    expect(messages[0]).toMatchObject({ method: 'notifications/progress', params: { progressToken: 'p', progress: 1 } });
    const last = messages.at(-1)!;
    expect(last.id).toBe(8);
    expect(last.error.code).toBe(ErrorCode.RequestTimeout);
    expect(messages.filter((m) => m.method === 'notifications/progress')).toHaveLength(1);
  });

  it('keeps serving calls that answer in time on the same session', async () => {
    const res = await post(gw.url, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'slow__progress', arguments: { steps: 1, delayMs: 0 } } }, headers);
    expect(res.json.result.content[0].text).toBe('slow done 1');
  });
});
