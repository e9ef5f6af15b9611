import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReverseServer, type ReverseServer } from './fixtures/reverse-server.ts';
import { post, rawSession, startCli, stopChild } from './helpers.ts';
import { startRedisServer } from './support/redis-server.ts';
import { checkResumed, dropAndResume } from './support/sse.ts';

describe('replicas sharing Redis', () => {
  let redis: { url: string; stop(): Promise<void> };
  let slow: ReverseServer;
  let config: string;

  beforeAll(async () => {
    redis = await startRedisServer();
    slow = await startReverseServer('slow');
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-replicas-'));
    config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `listeners:
  - name: main
    port: 0
    routes: [{ name: mcp, path: /mcp, backends: [slow] }]
backends:
  - { name: slow, transport: streamable-http, url: "${slow.url}" }
session:
  key: replicas-share-this-key-of-enough-length-0123456789
state:
  redis: { url: "${redis.url}" }
admin: { enabled: false }
limits: { shutdownGrace: 1s }
`,
    );
  });

  afterAll(async () => {
    await slow?.close();
    await redis?.stop();
  });

  it('a stream dropped on one replica is resumed with Last-Event-ID on another', async () => {
    const one = await startCli(['run', '--config', config]);
    const two = await startCli(['run', '--config', config]);
    try {
      const sid = await rawSession(one.url);
      const { before, after } = await dropAndResume(one.url, two.url, sid, 8, 2);
      checkResumed(before, after, 8);
    } finally {
      await stopChild(one.child);
      await stopChild(two.child);
    }
  });

  it('a session ended on one replica is gone on the other', async () => {
    const one = await startCli(['run', '--config', config]);
    const two = await startCli(['run', '--config', config]);
    try {
      const sid = await rawSession(one.url);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      expect((await post(two.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, h)).status).toBe(200);
      expect((await fetch(one.url, { method: 'DELETE', headers: h })).status).toBe(200);
      expect((await post(two.url, { jsonrpc: '2.0', id: 2, method: 'ping' }, h)).status).toBe(404);
    } finally {
      await stopChild(one.child);
      await stopChild(two.child);
    }
  });

  it('refuses to start with Redis but no session key', async () => {
    const bad = config.replace('gateway.yaml', 'nokey.yaml');
    writeFileSync(
      bad,
      `listeners: [{ name: m, port: 0, routes: [{ name: r, path: /mcp, backends: [s] }] }]\nbackends: [{ name: s, transport: streamable-http, url: "${slow.url}" }]\nstate: { redis: { url: "${redis.url}" } }\n`,
    );
    await expect(startCli(['run', '--config', bad])).rejects.toThrow(/session\.key: replicas sharing Redis need the same session\.key/);
  });
});
