import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type Fixture } from './fixtures/fixture-server.ts';
import { INITIALIZE, post, startGateway, waitFor, within, type RunningGateway } from './helpers.ts';
import { startIssuer, type TestIssuer } from './support/jwt-issuer.ts';
import { finalMessage, readEvents, replyMessages, type Event } from './support/sse.ts';

const AUD = 'https://gateway.test/mcp';
/** The test issuer serves its keys on loopback over http: the SSRF guard must be told. */
const LOCAL_JWKS = { schemes: ['http' as const], allowedRanges: ['127.0.0.1/32'] };

const AUTHORIZATION = {
  rules: [
    // Every caller may do the base protocol (initialize, ping, tools/list, ...).
    { name: 'base', mcp: { baseProtocol: 'match' as const } },
    { name: 'search', mcp: { methods: [{ name: 'tools/call', params: ['search'] }] } },
    { name: 'tmp-fetch', mcp: { methods: [{ name: 'tools/call', params: ['fetch'] }] }, when: 'mcp.tool.arguments.path.startsWith("/tmp/")' },
    { name: 'admins-delete', mcp: { methods: [{ name: 'tools/call', params: ['delete'] }] }, when: '"admin" in jwt.groups' },
    { name: 'admins-broken', mcp: { methods: [{ name: 'tools/call', params: ['broken'] }] }, when: '"admin" in jwt.groups' },
  ],
};

describe('authentication and tool-level authorization at the gateway', () => {
  let issuer: TestIssuer;
  let up: Fixture;
  let gw: RunningGateway;
  let auditFile: string;
  let user: string;
  let admin: string;

  beforeAll(async () => {
    issuer = await startIssuer();
    up = await startFixtureServer({ name: 'up', tools: ['search', 'fetch', 'delete', 'secret', 'broken'], failTool: 'broken' });
    auditFile = join(mkdtempSync(join(tmpdir(), 'switchboard-audit-')), 'audit.jsonl');
    gw = await startGateway(
      [{ name: 'up', transport: 'streamable-http', url: up.url }],
      {
        authentication: { jwt: { issuers: [{ issuer: issuer.issuer, audiences: [AUD], jwksUrl: issuer.jwksUrl, algorithms: ['RS256'] }] } },
        oauth: { resource: AUD, authorizationServers: [issuer.issuer], scopesSupported: ['mcp'], requiredScopes: ['mcp'] },
        authorization: AUTHORIZATION,
      },
      { audit: { destination: { file: auditFile } }, outbound: LOCAL_JWKS },
    );
    user = await issuer.sign({ sub: 'alice', scope: 'mcp', groups: ['dev'] });
    admin = await issuer.sign({ sub: 'root', scope: 'mcp', groups: ['admin'] });
  });

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
    await issuer?.close();
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  async function session(token: string): Promise<Record<string, string>> {
    const res = await post(gw.url, INITIALIZE, bearer(token));
    expect(res.status).toBe(200);
    return { ...bearer(token), 'mcp-session-id': res.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
  }

  const callsTo = (tool: string) => up.received.filter((m) => m.method === 'tools/call' && (m.params as any).name === tool).length;

  async function call(headers: Record<string, string>, name: string, args: object = {}): Promise<any> {
    const res = await post(gw.url, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } }, headers);
    expect(res.status).toBe(200);
    return finalMessage(res.text);
  }

  it('no token: 401 with a challenge pointing at the protected resource metadata, which is served', async () => {
    const before = up.received.length;
    const res = await post(gw.url, INITIALIZE);
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate')!;
    expect(challenge).toContain('Bearer resource_metadata="https://gateway.test/.well-known/oauth-protected-resource/mcp"');
    expect(challenge).toContain('scope="mcp"');
    const meta = await fetch(gw.url.replace('/mcp', '/.well-known/oauth-protected-resource/mcp'));
    expect(await meta.json()).toEqual({ resource: AUD, authorization_servers: [issuer.issuer], scopes_supported: ['mcp'], bearer_methods_supported: ['header'] });
    expect(up.received.length).toBe(before);
  });

  it('bad tokens get 401 invalid_token and reach no upstream; every request is authenticated', async () => {
    const before = up.received.length;
    const expired = await issuer.sign({ sub: 'alice', scope: 'mcp' }, { expiresIn: Math.floor(Date.now() / 1000) - 3600 });
    const wrongAudience = await issuer.sign({ sub: 'alice', scope: 'mcp' }, { audience: 'https://elsewhere/mcp' });
    const none = `${Buffer.from('{"alg":"NoNe","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: issuer.issuer, aud: AUD, sub: 'x', exp: 9e9 })).toString('base64url')}.`;
    for (const token of [expired, wrongAudience, none, 'garbage', `${user}x`]) {
      const res = await post(gw.url, INITIALIZE, bearer(token));
      expect(res.status, token.slice(0, 20)).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(res.text).not.toContain(token);
    }
    // A valid session, then a request on it without the token.
    const h = await session(user);
    const { authorization: _, ...withoutToken } = h;
    expect((await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, withoutToken)).status).toBe(401);
    expect(up.received.length).toBe(before + 2); // the valid session's initialize + initialized
  });

  it('a token in the query string is refused; a token without the required scope gets 403 insufficient_scope', async () => {
    expect((await post(`${gw.url}?access_token=${user}`, INITIALIZE)).status).toBe(400);
    const noScope = await issuer.sign({ sub: 'alice', scope: 'other' });
    const res = await post(gw.url, INITIALIZE, bearer(noScope));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  it('lists show only what the caller may call; a forbidden call is JSON-RPC 403 and never reaches the upstream', async () => {
    const h = await session(user);
    const list = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, h);
    // fetch depends on its arguments, so it is listed; delete needs admin, secret is never allowed.
    expect(list.json.result.tools.map((t: any) => t.name).sort()).toEqual(['up__fetch', 'up__search']);
    expect((await call(h, 'up__search', { text: 'q' })).result.content[0].text).toBe('up:search:{"text":"q"}');
    const denied = await call(h, 'up__secret');
    expect(denied.error).toEqual({ code: 403, message: 'Access to this tool is forbidden.' });
    expect(callsTo('secret')).toBe(0);
  });

  it('argument-level and claim-level rules', async () => {
    const h = await session(user);
    expect((await call(h, 'up__fetch', { path: '/tmp/a.txt' })).result).toBeDefined();
    expect((await call(h, 'up__fetch', { path: '/etc/passwd' })).error.code).toBe(403);
    expect((await call(h, 'up__fetch', {})).error.code).toBe(403);
    expect((await call(h, 'up__delete')).error.code).toBe(403);
    expect(callsTo('delete')).toBe(0);
    const a = await session(admin);
    expect((await call(a, 'up__delete')).result).toBeDefined();
    expect(callsTo('delete')).toBe(1);
    const fetched = up.received.filter((m) => m.method === 'tools/call' && (m.params as any).name === 'fetch');
    expect(fetched.map((m) => (m.params as any).arguments.path)).toEqual(['/tmp/a.txt']);
  });

  it('name tricks do not reach a forbidden tool: case, prefixes, look-alikes, encodings', async () => {
    const h = await session(user);
    const before = up.received.filter((m) => m.method === 'tools/call').length;
    for (const name of ['UP__secret', 'up__Secret', 'up__secret\u200b', 'up__s\u0435cret', 'up%5F%5Fsecret', 'up__up__secret', '__secret', 'up__', 'secret']) {
      const r = await call(h, name);
      expect(r.error, name).toBeDefined();
      expect([403, -32602]).toContain(r.error.code);
    }
    expect(up.received.filter((m) => m.method === 'tools/call').length).toBe(before);
  });

  it('batches, duplicate keys and spoofed methods cannot smuggle a forbidden call', async () => {
    const h = await session(user);
    const batch = await post(gw.url, JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'up__search' } }, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'up__secret' } }]), h);
    expect(batch.status).toBe(400);
    expect(batch.json.error.code).toBe(-32600);
    // On 2025-03-26, which allows batches, each member is decided on alone.
    const old = await post(gw.url, { ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion: '2025-03-26' } }, bearer(user));
    const h0326 = { ...bearer(user), 'mcp-session-id': old.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-03-26' };
    const allowedAndNot = await post(gw.url, JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'up__search', arguments: {} } }, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'up__secret', arguments: {} } }]), h0326);
    const answers = replyMessages(allowedAndNot.text);
    expect(answers.find((m) => m.id === 1).result).toBeDefined();
    expect(answers.find((m) => m.id === 2).error.code).toBe(403);
    // Duplicate keys: the gateway decides on the value it forwards, so the two cannot differ.
    const dup = await post(gw.url, '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__search","name":"up__secret","arguments":{}}}', h);
    expect(dup.json.error.code).toBe(403);
    const dupOk = await post(gw.url, '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"up__secret","name":"up__search","arguments":{"text":"d"}}}', h);
    expect(dupOk.text).toContain('up:search:');
    for (const method of ['tools/call ', 'TOOLS/CALL', 'tools//call', 'tools/call\u0000']) {
      const r = await post(gw.url, { jsonrpc: '2.0', id: 5, method, params: { name: 'up__secret' } }, h);
      expect(r.json.error.code, JSON.stringify(method)).toBe(-32601);
    }
    expect(callsTo('secret')).toBe(0);
  });

  it('a request sent without its id is refused, not forwarded unchecked: only notifications go without one', async () => {
    const h = await session(user);
    for (const method of ['tools/call', 'resources/read', 'admin/anything']) {
      const r = await post(gw.url, { jsonrpc: '2.0', method, params: { name: 'secret', uri: 'file:///etc/passwd', arguments: {} } }, h);
      expect(r.status, method).toBe(400);
      expect(r.json.error.code).toBe(-32600);
    }
    expect(callsTo('secret')).toBe(0);
    expect(up.received.filter((m) => m.method === 'resources/read' || m.method === 'admin/anything')).toEqual([]);
    expect((await post(gw.url, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, h)).status).toBe(202);
  });

  it("a session presented with another caller's token is unknown, and reaches no upstream", async () => {
    const alice = await session(user);
    const before = up.received.length;
    const stolen = { ...alice, ...bearer(admin) };
    const res = await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'up__delete', arguments: {} } }, stolen);
    expect(res.status).toBe(404);
    expect(up.received.length).toBe(before);
  });

  it('oversized headers are refused before any work', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(gw.url);
      const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'x-big': 'a'.repeat(64 * 1024) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end('{}');
    });
    expect(status).toBe(431);
  });

  it('writes one audit record per decision, a tool call\'s with its outcome, without tokens or arguments', async () => {
    expect((await call(await session(admin), 'up__broken')).error.message).toBe('up failed');
    // The call's record is written after its reply has gone (records of one turn go out together).
    await waitFor(() => {
      try {
        return /"tool":"up__broken"[^\n]*"outcome":"error"/.test(readFileSync(auditFile, 'utf8'));
      } catch {
        return false;
      }
    });
    const text = readFileSync(auditFile, 'utf8');
    const records = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(records.some((r) => r.decision === 'deny' && r.tool === 'up__secret' && r.identity.subject === 'alice' && r.outcome === 'denied')).toBe(true);
    expect(records.some((r) => r.method === 'tools/call' && r.outcome === 'ok' && typeof r.latencyMs === 'number' && /^[0-9a-f]{64}$/.test(r.argumentsDigest))).toBe(true);
    // An allowed call has one record: who, which session, backend and tool, which arguments, what allowed it, how it ended.
    const broken = records.filter((r) => r.tool === 'up__broken');
    expect(broken).toHaveLength(1);
    const [ended] = broken;
    expect(ended).toMatchObject({ decision: 'allow', outcome: 'error', session: expect.any(String), backend: 'up', method: 'tools/call' });
    expect(ended.rule).toEqual(expect.any(String));
    expect(ended.reason).toEqual(expect.any(String));
    expect(Object.keys(ended).sort()).toEqual(['argumentsDigest', 'backend', 'decision', 'identity', 'latencyMs', 'method', 'outcome', 'reason', 'route', 'rule', 'session', 'time', 'tool']);
    // A method authorized as a whole gets its decision's record, with no outcome.
    expect(records.some((r) => r.method === 'tools/list' && r.decision === 'allow' && r.outcome === undefined)).toBe(true);
    expect(text).not.toContain(user);
    expect(text).not.toContain('/tmp/a.txt');
  });
});

describe('verified tokens are remembered only until they expire', () => {
  it('a token accepted a moment ago is refused once its exp has passed, and the server stream it opened ends then', async () => {
    const issuer = await startIssuer();
    const up = await startFixtureServer({ name: 'up', tools: ['echo'] });
    const gw = await startGateway(
      [{ name: 'up', transport: 'streamable-http', url: up.url }],
      { authentication: { jwt: { issuers: [{ issuer: issuer.issuer, audiences: [AUD], jwksUrl: issuer.jwksUrl, clockTolerance: '0s' }] } } },
      { outbound: LOCAL_JWKS },
    );
    try {
      const token = await issuer.sign({ sub: 'brief' }, { expiresIn: Math.floor(Date.now() / 1000) + 2 });
      const init = await post(gw.url, INITIALIZE, { authorization: `Bearer ${token}` });
      expect(init.status).toBe(200);
      const h = { authorization: `Bearer ${token}`, 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
      expect((await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, h)).status).toBe(200);
      // The session's server stream ends with the token it was opened with.
      const stream = await fetch(gw.url, { headers: { ...h, accept: 'text/event-stream' } });
      expect(stream.status).toBe(200);
      const streamEnded = within(5_000, stream.text(), 'the server stream to end at the token expiry');
      await new Promise((r) => setTimeout(r, 2_200));
      expect((await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'ping' }, h)).status).toBe(401);
      await streamEnded;
    } finally {
      await gw.stop();
      await up.close();
      await issuer.close();
    }
  });
});

describe('legacy SSE sessions', () => {
  it('each message is authorized as its own sender is, not as whoever opened the stream', async () => {
    const issuer = await startIssuer();
    const up = await startFixtureServer({ name: 'up', tools: ['delete'] });
    const gw = await startGateway(
      [{ name: 'up', transport: 'streamable-http', url: up.url }],
      { legacySse: true, authentication: { jwt: { issuers: [{ issuer: issuer.issuer, audiences: [AUD], jwksUrl: issuer.jwksUrl }] } }, authorization: AUTHORIZATION },
      { outbound: LOCAL_JWKS },
    );
    const abort = new AbortController();
    try {
      // The same principal: an admin when the stream opened, no longer one in the token it sends later.
      const admin = { authorization: `Bearer ${await issuer.sign({ sub: 'root', groups: ['admin'] })}` };
      const demoted = { authorization: `Bearer ${await issuer.sign({ sub: 'root', groups: ['dev'] })}` };
      const res = await fetch(`${gw.url}/sse`, { headers: { accept: 'text/event-stream', ...admin }, signal: abort.signal });
      let seen: Event[] = [];
      const reading = readEvents(res, (events) => ((seen = events), events.length >= 3), abort);
      await waitFor(() => seen.length >= 1, 5_000, 'the endpoint event');
      const messages = new URL(seen[0]!.data, gw.url).href;
      expect((await post(messages, INITIALIZE, admin)).status).toBe(202);
      await waitFor(() => seen.length >= 2, 5_000, 'the initialize result');
      expect((await post(messages, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'up__delete', arguments: {} } }, demoted)).status).toBe(202);
      await reading;
      expect(JSON.parse(seen[2]!.data)).toMatchObject({ id: 2, error: { code: 403 } });
      expect(up.received.filter((m) => m.method === 'tools/call')).toEqual([]);
    } finally {
      abort.abort();
      await gw.stop();
      await up.close();
      await issuer.close();
    }
  });
});

describe('the SSRF guard on fetched keys', () => {
  /** A token of `issuer`, at a gateway that takes keys from `jwksUrl`: refused, with no key fetched and no upstream reached. */
  async function expectFailsClosed(issuer: TestIssuer, jwksUrl: string, extra: Parameters<typeof startGateway>[2] = {}): Promise<void> {
    const up = await startFixtureServer({ name: 'up', tools: ['echo'] });
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }], { authentication: { jwt: { issuers: [{ issuer: issuer.issuer, audiences: [AUD], jwksUrl }] } } }, extra);
    try {
      const res = await post(gw.url, INITIALIZE, { authorization: `Bearer ${await issuer.sign({ sub: 'mallory' })}` });
      expect(res.status).toBe(401);
      expect(issuer.fetches()).toBe(0);
      expect(up.received).toEqual([]);
    } finally {
      await gw.stop();
      await up.close();
    }
  }

  it('a JWKS URL that redirects is not followed: tokens fail closed', async () => {
    const issuer = await startIssuer();
    // An open redirect on the key set's host, pointing at keys an attacker would serve.
    const redirector = createServer((_req, res) => res.writeHead(302, { location: issuer.jwksUrl }).end());
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      await expectFailsClosed(issuer, `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/jwks.json`, { outbound: LOCAL_JWKS });
    } finally {
      await issuer.close();
      await new Promise((resolve) => redirector.close(resolve));
    }
  });

  it('a JWKS URL on a loopback address is not fetched unless allowed: tokens fail closed', async () => {
    const issuer = await startIssuer();
    try {
      await expectFailsClosed(issuer, issuer.jwksUrl);
    } finally {
      await issuer.close();
    }
  });
});

describe('API keys, external authorization, credentials upstream', () => {
  let up: Fixture;

  beforeAll(async () => {
    up = await startFixtureServer({ name: 'up', tools: ['echo'] });
  });

  afterAll(async () => {
    await up?.close();
  });

  it('API keys: the right key opens a session; a wrong one is 401', async () => {
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }], {
      authentication: { apiKeys: { keys: [{ name: 'ci-bot', key: 'k-0123456789abcdef-ci', attributes: { team: 'platform' } }] } },
      authorization: { rules: [{ name: 'platform', when: 'apiKey.team == "platform"' }] },
    });
    try {
      expect((await post(gw.url, INITIALIZE, { 'x-api-key': 'k-0123456789abcdef-ci' })).status).toBe(200);
      expect((await post(gw.url, INITIALIZE, { 'x-api-key': 'k-0123456789abcdef-cX' })).status).toBe(401);
      expect((await post(gw.url, INITIALIZE)).status).toBe(401);
    } finally {
      await gw.stop();
    }
  });

  it('policies tell which credential named the caller: an API key "ops" is not a JWT subject "ops"', async () => {
    const issuer = await startIssuer();
    const gw = await startGateway(
      [{ name: 'up', transport: 'streamable-http', url: up.url }],
      {
        authentication: {
          jwt: { issuers: [{ issuer: issuer.issuer, audiences: [AUD], jwksUrl: issuer.jwksUrl, algorithms: ['RS256'] }] },
          apiKeys: { keys: [{ name: 'ops', key: 'k-0123456789abcdef-ops' }] },
        },
        authorization: { rules: [{ name: 'ops-key', when: 'source.identity == "ops" && source.method == "apiKey"' }] },
      },
      { outbound: LOCAL_JWKS },
    );
    try {
      const byKey = await post(gw.url, INITIALIZE, { 'x-api-key': 'k-0123456789abcdef-ops' });
      expect(byKey.status).toBe(200);
      expect(byKey.headers.get('mcp-session-id')).toBeTruthy();
      const byToken = await post(gw.url, INITIALIZE, { authorization: `Bearer ${await issuer.sign({ sub: 'ops' })}` });
      expect(byToken.headers.get('mcp-session-id')).toBeNull();
      expect(JSON.stringify(byToken.json ?? byToken.text)).toMatch(/denied|forbidden|not allowed/i);
    } finally {
      await gw.stop();
      await issuer.close();
    }
  });

  it('a JWT without a subject owns its sessions alone, not with every such token of its issuer', async () => {
    const issuer = await startIssuer();
    const gw = await startGateway(
      [{ name: 'up', transport: 'streamable-http', url: up.url }],
      { authentication: { jwt: { issuers: [{ issuer: issuer.issuer, audiences: [AUD], jwksUrl: issuer.jwksUrl, algorithms: ['RS256'] }] } } },
      { outbound: LOCAL_JWKS },
    );
    try {
      // No sub at all, and an empty one: neither names anybody.
      for (const sub of [{}, { sub: '' }]) {
        const [first, second] = [await issuer.sign({ client: 'one', ...sub }), await issuer.sign({ client: 'two', ...sub })];
        const opened = await post(gw.url, INITIALIZE, { authorization: `Bearer ${first}` });
        expect(opened.status).toBe(200);
        const sid = opened.headers.get('mcp-session-id')!;
        const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
        const withSession = (token: string) => ({ authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
        const before = up.received.length;
        expect((await post(gw.url, list, withSession(second))).status, JSON.stringify(sub)).toBe(404);
        expect(up.received.length).toBe(before);
        expect((await post(gw.url, list, withSession(first))).status).toBe(200);
      }
    } finally {
      await gw.stop();
      await issuer.close();
    }
  });

  it('external authorization: consulted first, fails closed when unreachable', async () => {
    const { createServer } = await import('node:http');
    const seen: any[] = [];
    const authz = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const check = JSON.parse(body);
        seen.push(check);
        const ok = check.mcp.method !== 'tools/call' || check.mcp.tool === 'up__echo';
        res.writeHead(ok ? 200 : 403, { 'content-type': 'application/json', 'x-authz-user': 'checked', 'x-not-allowed': 'nope' }).end(JSON.stringify({ reason: ok ? 'fine' : 'not on my watch' }));
      });
    });
    await new Promise<void>((r) => authz.listen(0, '127.0.0.1', r));
    const port = (authz.address() as { port: number }).port;
    const gw = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }], {
      authorization: { externalAuth: { url: `http://127.0.0.1:${port}/check`, allowedResponseHeaders: ['x-authz-user'] }, rules: [{ name: 'all' }] },
    });
    const down = await startGateway([{ name: 'up', transport: 'streamable-http', url: up.url }], { authorization: { externalAuth: { url: 'http://127.0.0.1:9/check', timeout: '300ms' }, rules: [{ name: 'all' }] } });
    try {
      const init = await post(gw.url, INITIALIZE, { authorization: 'Bearer secret-client-token' });
      const h = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25', authorization: 'Bearer secret-client-token' };
      const ok = await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'up__echo', arguments: {} } }, h);
      expect(ok.text).toContain('up:echo');
      // Headers the authorizer adds reach the upstream with the call; others do not.
      const forwarded = up.received.filter((m) => m.method === 'tools/call').at(-1)!;
      expect(forwarded.headers['x-authz-user']).toBe('checked');
      expect(forwarded.headers['x-not-allowed']).toBeUndefined();
      expect(JSON.stringify(seen)).not.toContain('secret-client-token');
      const refused = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'up__other', arguments: {} } }, h);
      expect(refused.json.error.code).toBe(403);
      const closed = await post(down.url, INITIALIZE);
      expect(closed.json.error).toEqual({ code: 403, message: 'Access to this tool is forbidden.' });
    } finally {
      await gw.stop();
      await down.stop();
      authz.close();
    }
  });

  it("the client's token reaches an upstream only with passthrough; backends get their own credentials", async () => {
    const issuer = await startIssuer();
    const other = await startFixtureServer({ name: 'pt', tools: ['echo'] });
    const gw = await startGateway(
      [
        { name: 'up', transport: 'streamable-http', url: up.url, headers: { authorization: 'Bearer backend-own-credential' } },
        { name: 'pt', transport: 'streamable-http', url: other.url, passthrough: true },
      ],
      { authentication: { jwt: { issuers: [{ issuer: issuer.issuer, audiences: [AUD], jwksUrl: issuer.jwksUrl }] } } },
      { outbound: LOCAL_JWKS },
    );
    try {
      const token = await issuer.sign({ sub: 'carol' });
      const res = await post(gw.url, INITIALIZE, { authorization: `Bearer ${token}` });
      expect(res.status).toBe(200);
      const upInit = up.received.filter((m) => m.method === 'initialize').at(-1)!;
      expect(upInit.headers.authorization).toBe('Bearer backend-own-credential');
      const ptInit = other.received.filter((m) => m.method === 'initialize').at(-1)!;
      expect(ptInit.headers.authorization).toBe(`Bearer ${token}`);
    } finally {
      await gw.stop();
      await other.close();
      await issuer.close();
    }
  });
});
