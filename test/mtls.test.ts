import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch } from 'undici';
import { loadConfigObject } from '../src/config/load.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { Gateway } from '../src/gateway.ts';
import { silentLogger } from '../src/telemetry/logger.ts';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { INITIALIZE } from './helpers.ts';
import { createTestCa, type KeyPair, type TestCa } from './support/certs.ts';
import { replyMessages } from './support/sse.ts';

/**
 * A real HTTPS listener verifying client certificates: the caller is the SPIFFE id in its
 * certificate's URI SAN, and an XAccessPolicy-shaped rule for one ServiceAccount decides
 * what it may do, down to the single tool.
 */

const ALLOWED_ID = 'spiffe://cluster.local/ns/agents/sa/allowed';
const OTHER_ID = 'spiffe://cluster.local/ns/agents/sa/other';
const VERSION = '2025-11-25';
const FORBIDDEN = { code: 403, message: 'Access to this tool is forbidden.' };

const ROUTE = {
  name: 'mcp',
  path: '/mcp',
  backends: ['up'],
  authentication: { mtls: { required: true } },
  authorization: {
    policies: [
      {
        name: 'agents',
        rules: [
          {
            name: 'allowed-sa',
            source: { serviceAccounts: [{ namespace: 'agents', name: 'allowed' }] },
            mcp: { methods: [{ name: 'tools/call', params: ['echo'] }], baseProtocol: 'match' as const },
          },
        ],
      },
    ],
  },
};

interface RpcResult {
  status: number;
  headers: Headers;
  text: string;
  /** The JSON-RPC response carrying the request's id (plain JSON or the SSE event). */
  response: any;
}

describe('mTLS: SPIFFE identity from client certificates, tool-level authorization', () => {
  let ca: TestCa;
  let rogueCa: TestCa;
  let upstream: Fixture;
  let gateway: Gateway;
  /** Client certificate optional at the TLS layer; the route refuses requests without one. */
  let url: string;
  /** requireClientCert: the TLS handshake itself refuses a client without a valid certificate. */
  let strictUrl: string;
  let allowed: Agent;
  let other: Agent;
  let anonymous: Agent;
  let rogue: Agent;
  const agents: Agent[] = [];

  function agent(client: KeyPair | undefined): Agent {
    const a = new Agent({ connect: { ca: ca.cert, ...(client ? { cert: client.cert, key: client.key } : {}) } });
    agents.push(a);
    return a;
  }

  beforeAll(async () => {
    ca = createTestCa();
    const server = ca.server('server', ['IP:127.0.0.1']);
    const allowedCert = ca.client('allowed', [`URI:${ALLOWED_ID}`]);
    const otherCert = ca.client('other', [`URI:${OTHER_ID}`]);
    // The same SPIFFE id, signed by a CA the gateway does not trust.
    rogueCa = createTestCa('rogue CA');
    const rogueCert = rogueCa.client('rogue', [`URI:${ALLOWED_ID}`]);

    upstream = await startFixtureServer({ name: 'up', tools: ['echo', 'secret'] });
    const tls = { certFile: server.certFile, keyFile: server.keyFile, clientCaFile: ca.certFile };
    const config: ConfigInput = {
      listeners: [
        { name: 'tls', host: '127.0.0.1', port: 0, tls, routes: [ROUTE] },
        { name: 'strict', host: '127.0.0.1', port: 0, tls: { ...tls, requireClientCert: true }, routes: [ROUTE] },
      ],
      backends: [{ name: 'up', transport: 'streamable-http', url: upstream.url }],
      admin: { enabled: false },
      limits: { shutdownGrace: 500 },
    };
    gateway = new Gateway(loadConfigObject(config, 'mtls-test'), silentLogger);
    await gateway.start();
    url = `https://127.0.0.1:${gateway.addresses().get('tls')!.port}/mcp`;
    strictUrl = `https://127.0.0.1:${gateway.addresses().get('strict')!.port}/mcp`;

    allowed = agent(allowedCert);
    other = agent(otherCert);
    anonymous = agent(undefined);
    rogue = agent(rogueCert);
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.destroy()));
    await gateway?.stop();
    await upstream?.close();
    ca?.remove();
    rogueCa?.remove();
  });

  async function rpc(dispatcher: Agent, body: Record<string, unknown>, headers: Record<string, string> = {}, target = url): Promise<RpcResult> {
    const res = await fetch(target, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let response: any;
    if ('id' in body && res.status === 200) {
      response = replyMessages(text).find((m) => m.id === body.id && ('result' in m || 'error' in m));
    }
    return { status: res.status, headers: res.headers as unknown as Headers, text, response };
  }

  /** Opens a session as this caller; returns the headers that go with every later request. */
  async function open(dispatcher: Agent, target = url): Promise<Record<string, string>> {
    const init = await rpc(dispatcher, INITIALIZE, {}, target);
    expect(init.status, init.text).toBe(200);
    expect(init.response.result).toBeDefined();
    const sid = init.headers.get('mcp-session-id');
    expect(sid).toBeTruthy();
    const headers = { 'mcp-session-id': sid!, 'mcp-protocol-version': VERSION };
    const initialized = await rpc(dispatcher, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers, target);
    expect(initialized.status).toBe(202);
    return headers;
  }

  /**
   * Refused by authentication, before any MCP handling. A missing credential should be a
   * 401, with a bare challenge.
   */
  function expectUnauthenticated(res: RpcResult): void {
    expect(res.status, res.text).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(res.response).toBeUndefined();
  }

  const callTool = (dispatcher: Agent, headers: Record<string, string>, name: string, id = 10) =>
    rpc(dispatcher, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { text: 'hi' } } }, headers);

  const callsTo = (tool: string) => upstream.received.filter((m) => m.method === 'tools/call' && (m.params as { name?: unknown } | undefined)?.name === tool).length;

  it('the allowed ServiceAccount initializes, sees only the tool it may call, and calls it', async () => {
    const before = upstream.received.filter((m) => m.method === 'initialize').length;
    const init = await rpc(allowed, INITIALIZE);
    expect(init.status).toBe(200);
    expect(init.response.result.protocolVersion).toBe(VERSION);
    expect(init.response.result.capabilities.tools).toBeDefined();
    // The gateway opened its upstream session for this caller.
    expect(upstream.received.filter((m) => m.method === 'initialize').length).toBe(before + 1);

    const headers = await open(allowed);
    const list = await rpc(allowed, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, headers);
    expect(list.status).toBe(200);
    expect(list.response.result.tools.map((t: { name: string }) => t.name)).toEqual(['up__echo']);

    const ping = await rpc(allowed, { jsonrpc: '2.0', id: 3, method: 'ping' }, headers);
    expect(ping.response).toMatchObject({ id: 3, result: {} });

    const echoes = callsTo('echo');
    const call = await callTool(allowed, headers, 'up__echo', 4);
    expect(call.status).toBe(200);
    expect(call.response).toMatchObject({ id: 4, result: { content: [{ type: 'text', text: 'up:echo:{"text":"hi"}' }] } });
    expect(callsTo('echo')).toBe(echoes + 1);
  });

  it('a tool the rule does not name is forbidden and never reaches the upstream', async () => {
    const headers = await open(allowed);
    const before = upstream.received.length;
    const call = await callTool(allowed, headers, 'up__secret', 5);
    expect(call.status).toBe(200);
    expect(call.response).toEqual({ jsonrpc: '2.0', id: 5, error: FORBIDDEN });
    expect(callsTo('secret')).toBe(0);
    expect(upstream.received.length).toBe(before);
    // The session is unharmed.
    const echo = await callTool(allowed, headers, 'up__echo', 6);
    expect(echo.response.result.content[0].text).toBe('up:echo:{"text":"hi"}');
  });

  it('another ServiceAccount of the same CA is denied at initialize and reaches no upstream', async () => {
    const before = upstream.received.length;
    const init = await rpc(other, INITIALIZE);
    expect(init.status).toBe(200);
    expect(init.response).toEqual({ jsonrpc: '2.0', id: INITIALIZE.id, error: FORBIDDEN });
    expect(init.headers.get('mcp-session-id')).toBeNull();
    expect(upstream.received.length).toBe(before);
  });

  it('without a client certificate the route refuses the request and reaches no upstream', async () => {
    const before = upstream.received.length;
    const res = await rpc(anonymous, INITIALIZE);
    expectUnauthenticated(res);
    expect(upstream.received.length).toBe(before);
  });

  // RFC 6750 section 3.1: a request without any credential gets 401 and no error code.
  it('without a client certificate the status is 401', async () => {
    const res = await rpc(anonymous, INITIALIZE);
    expect(res.status).toBe(401);
  });

  it('a certificate from an untrusted CA counts as none, even with the right SPIFFE id', async () => {
    const before = upstream.received.length;
    const res = await rpc(rogue, INITIALIZE);
    expectUnauthenticated(res);
    expect(upstream.received.length).toBe(before);
  });

  it('with requireClientCert the TLS handshake refuses a client without a trusted certificate', async () => {
    const before = upstream.received.length;
    await expect(rpc(anonymous, INITIALIZE, {}, strictUrl)).rejects.toThrow();
    await expect(rpc(rogue, INITIALIZE, {}, strictUrl)).rejects.toThrow();
    expect(upstream.received.length).toBe(before);
    // The same listener serves a trusted certificate as usual, policies included.
    const headers = await open(allowed, strictUrl);
    const list = await rpc(allowed, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, headers, strictUrl);
    expect(list.response.result.tools.map((t: { name: string }) => t.name)).toEqual(['up__echo']);
    const denied = await rpc(other, INITIALIZE, {}, strictUrl);
    expect(denied.response.error).toEqual(FORBIDDEN);
  });

  it("a session presented with another caller's certificate is unknown (404) and reaches no upstream", async () => {
    const headers = await open(allowed);
    const before = upstream.received.length;
    for (const method of ['tools/list', 'ping']) {
      const stolen = await rpc(other, { jsonrpc: '2.0', id: 7, method }, headers);
      expect(stolen.status, method).toBe(404);
    }
    const stolenCall = await callTool(other, headers, 'up__echo', 8);
    expect(stolenCall.status).toBe(404);
    const stolenDelete = await fetch(url, { method: 'DELETE', dispatcher: other, headers });
    expect(stolenDelete.status).toBe(404);
    await stolenDelete.body?.cancel();
    // Without any certificate the request is refused before the session is even looked at.
    expectUnauthenticated(await rpc(anonymous, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, headers));
    expect(upstream.received.length).toBe(before);

    // The owner still has the session, and may end it.
    const echo = await callTool(allowed, headers, 'up__echo', 11);
    expect(echo.response.result.content[0].text).toBe('up:echo:{"text":"hi"}');
    const ended = await fetch(url, { method: 'DELETE', dispatcher: allowed, headers });
    expect(ended.status).toBeLessThan(300);
    await ended.body?.cancel();
    const after = await rpc(allowed, { jsonrpc: '2.0', id: 12, method: 'ping' }, headers);
    expect(after.status).toBe(404);
  });
});
