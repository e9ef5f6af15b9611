import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuardrailRequest } from './guardrail.ts';
import { DEFAULT_BUILTINS, ResultInspector, blockedResult, type ResultPolicy } from './results.ts';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  body: GuardrailRequest;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: GuardrailRequest) => void;

/** A real guardrail service on 127.0.0.1 whose answers each test scripts. */
class GuardrailServer {
  readonly seen: Seen[] = [];
  handler: Handler = (_req, res) => json(res, { action: 'allow' });
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as GuardrailRequest;
        this.seen.push({ url: req.url ?? '', headers: req.headers, body });
        this.handler(req, res, body);
      });
    });
  }

  async listen(): Promise<URL> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return new URL(`http://127.0.0.1:${port}/review?v=1`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function inspector(policy: Partial<ResultPolicy> = {}): ResultInspector {
  const created = new ResultInspector({ maxResultBytes: 1_000_000, redact: { builtins: [...DEFAULT_BUILTINS], patterns: [] }, ...policy });
  cleanups.push(() => created.close());
  return created;
}

async function withGuardrail(failMode: 'failOpen' | 'failClosed', timeoutMs = 2000): Promise<{ server: GuardrailServer; inspector: ResultInspector }> {
  const server = new GuardrailServer();
  const url = await server.listen();
  cleanups.push(() => server.close());
  return { server, inspector: inspector({ guardrail: { url, timeoutMs, failMode, headers: { authorization: 'Bearer guardrail-key' } } }) };
}

/** A URL nothing listens on: bind a port, then give it back. */
async function deadUrl(): Promise<URL> {
  const server = new GuardrailServer();
  const url = await server.listen();
  await server.close();
  return url;
}

const context = { backend: 'files', tool: 'read_file', argumentsDigest: 'sha256:abc' };

function result(text = 'hello'): Record<string, unknown> {
  return { content: [{ type: 'text', text }], structuredContent: { text } };
}

describe('ResultInspector without a guardrail', () => {
  it('returns the very same object when nothing matches (fast path)', async () => {
    const r = result();
    const outcome = await inspector().inspect(context, r);
    expect(outcome).toEqual({ action: 'pass', result: r, redactions: 0 });
    expect(outcome.action === 'pass' && outcome.result).toBe(r);
  });

  it('returns the same object with no patterns at all', async () => {
    const r = result('AKIAIOSFODNN7EXAMPLE');
    const outcome = await inspector({ redact: { builtins: [], patterns: [] } }).inspect(context, r);
    expect(outcome.action === 'pass' && outcome.result).toBe(r);
  });

  it('redacts and counts', async () => {
    const r = result('key AKIAIOSFODNN7EXAMPLE');
    const outcome = await inspector({ redact: { builtins: ['aws-access-key-id'], patterns: [{ name: 'greeting', regex: 'key' }] } }).inspect(context, r);
    expect(outcome).toEqual({
      action: 'pass',
      result: { content: [{ type: 'text', text: '[REDACTED:greeting] [REDACTED:aws-access-key-id]' }], structuredContent: { text: '[REDACTED:greeting] [REDACTED:aws-access-key-id]' } },
      redactions: 4,
    });
    expect(r).toEqual(result('key AKIAIOSFODNN7EXAMPLE'));
  });

  it('blocks a result larger than maxResultBytes', async () => {
    const r = result('x'.repeat(200));
    const size = Buffer.byteLength(JSON.stringify(r));
    expect((await inspector({ maxResultBytes: size }).inspect(context, r)).action).toBe('pass');
    expect(await inspector({ maxResultBytes: size - 1 }).inspect(context, r)).toEqual({
      action: 'block',
      reason: `result larger than ${size - 1} bytes`,
      cause: 'too-large',
    });
  });

  it('measures a result unless its message was too short to hold one over the cap', async () => {
    const r = result('x'.repeat(2000));
    const text = JSON.stringify({ jsonrpc: '2.0', id: 1, result: r });
    const capped = inspector({ maxResultBytes: 1024 });
    expect(await capped.inspect({ ...context, sourceChars: text.length }, r)).toMatchObject({ action: 'block', cause: 'too-large' });
    // 171 characters could parse to 1,026 bytes of JSON: measured. 170 could not (1,020): not
    // measured, which a result that does not come from such a text shows.
    expect(await capped.inspect({ ...context, sourceChars: 171 }, r)).toMatchObject({ action: 'block', cause: 'too-large' });
    expect(await capped.inspect({ ...context, sourceChars: 170 }, r)).toMatchObject({ action: 'pass' });
  });

  it('measures a redacted result again: a marker may be longer than what it replaced', async () => {
    const r = result(Array.from({ length: 40 }, () => 'AKIAIOSFODNN7EXAMPLE').join(' '));
    const size = Buffer.byteLength(JSON.stringify(r));
    const outcome = await inspector({ maxResultBytes: size + 10 }).inspect(context, r);
    expect(outcome).toEqual({ action: 'block', reason: `result larger than ${size + 10} bytes`, cause: 'too-large' });
  });

  it('blocks a result that is not an object, saying so', async () => {
    for (const odd of [null, 'text', 7, []]) {
      expect(await inspector({}).inspect(context, odd as unknown as Record<string, unknown>)).toEqual({ action: 'block', reason: 'result is not an object', cause: 'uninspectable' });
    }
  });

  it('blocks a result nested too deeply to inspect', async () => {
    let deep: unknown = 'AKIAIOSFODNN7EXAMPLE';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const outcome = await inspector({ maxResultBytes: 10_000_000 }).inspect(context, { content: [], structuredContent: deep });
    expect(outcome).toEqual({ action: 'block', reason: 'result nested too deeply to inspect', cause: 'uninspectable' });
    // Nowhere the redactor looks, from a message short enough for its size to be known: still walked.
    const text = `{"content":[],"_meta":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    const fromText = await inspector({ maxResultBytes: 100_000_000, redact: { builtins: [], patterns: [] } }).inspect({ ...context, sourceChars: text.length }, JSON.parse(text));
    expect(fromText).toEqual({ action: 'block', reason: 'result nested too deeply to inspect', cause: 'uninspectable' });
  });

  it('throws on an invalid pattern, naming it', () => {
    expect(() => new ResultInspector({ maxResultBytes: 1000, redact: { builtins: [], patterns: [{ name: 'bad-one', regex: '[z-a]' }] } })).toThrow(
      /redaction pattern "bad-one": invalid regex/,
    );
  });

  it('builds an isError result for a blocked call', () => {
    expect(blockedResult('result larger than 10 bytes')).toEqual({
      content: [{ type: 'text', text: 'Tool result withheld by the gateway: result larger than 10 bytes' }],
      isError: true,
    });
  });
});

describe('ResultInspector with a guardrail webhook', () => {
  it('allow: passes the result, after sending backend, tool, digest and the redacted result', async () => {
    const { server, inspector: i } = await withGuardrail('failClosed');
    const r = result('secret AKIAIOSFODNN7EXAMPLE');
    const outcome = await i.inspect(context, r);
    const redacted = result('secret [REDACTED:aws-access-key-id]');
    expect(outcome).toEqual({ action: 'pass', result: redacted, redactions: 2, guardrail: 'allowed' });
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]!.url).toBe('/review?v=1');
    expect(server.seen[0]!.headers['content-type']).toBe('application/json');
    expect(server.seen[0]!.headers.authorization).toBe('Bearer guardrail-key');
    expect(server.seen[0]!.body).toEqual({ backend: 'files', tool: 'read_file', argumentsDigest: 'sha256:abc', result: redacted });
  });

  it('allow keeps the object identity when nothing was redacted', async () => {
    const { inspector: i } = await withGuardrail('failClosed');
    const r = result();
    const outcome = await i.inspect({ backend: 'b', tool: 't' }, r);
    expect(outcome.action === 'pass' && outcome.result).toBe(r);
  });

  it('omits the digest when there is none', async () => {
    const { server, inspector: i } = await withGuardrail('failClosed');
    await i.inspect({ backend: 'b', tool: 't' }, result());
    expect(Object.keys(server.seen[0]!.body)).toEqual(['backend', 'tool', 'result']);
  });

  it('block: blocks with the service’s reason, made single-line', async () => {
    const { server, inspector: i } = await withGuardrail('failOpen');
    server.handler = (_req, res) => json(res, { action: 'block', reason: 'prompt injection\nin result' });
    expect(await i.inspect(context, result())).toEqual({ action: 'block', reason: 'prompt injection in result', cause: 'guardrail' });
    server.handler = (_req, res) => json(res, { action: 'block' });
    expect(await i.inspect(context, result())).toEqual({ action: 'block', reason: 'blocked by guardrail', cause: 'guardrail' });
  });

  it('redact: passes the service’s replacement result', async () => {
    const { server, inspector: i } = await withGuardrail('failClosed');
    const replacement = { content: [{ type: 'text', text: 'cleaned by guardrail' }] };
    server.handler = (_req, res) => json(res, { action: 'redact', result: replacement });
    expect(await i.inspect(context, result('AKIAIOSFODNN7EXAMPLE'))).toEqual({ action: 'pass', result: replacement, redactions: 2, guardrail: 'redacted' });
  });

  for (const failMode of ['failOpen', 'failClosed'] as const) {
    const expectUnavailable = async (i: ResultInspector, detail: string | RegExp): Promise<void> => {
      const r = result('x AKIAIOSFODNN7EXAMPLE');
      const outcome = await i.inspect(context, r);
      if (failMode === 'failOpen') {
        expect(outcome).toEqual({ action: 'pass', result: result('x [REDACTED:aws-access-key-id]'), redactions: 2, guardrail: 'unavailable' });
      } else {
        expect(outcome).toMatchObject({ action: 'block', cause: 'guardrail-unavailable' });
        const reason = (outcome as { reason: string }).reason;
        expect(reason.startsWith('guardrail unavailable: ')).toBe(true);
        if (typeof detail === 'string') expect(reason).toBe(`guardrail unavailable: ${detail}`);
        else expect(reason).toMatch(detail);
      }
    };

    describe(failMode, () => {
      it('on timeout', async () => {
        const { server, inspector: i } = await withGuardrail(failMode, 200);
        server.handler = () => undefined; // never answers
        await expectUnavailable(i, 'no answer within 200ms');
      });

      it('on a body that stalls after the headers', async () => {
        const { server, inspector: i } = await withGuardrail(failMode, 200);
        server.handler = (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"action":');
        };
        await expectUnavailable(i, 'no answer within 200ms');
      });

      it('on a 5xx', async () => {
        const { server, inspector: i } = await withGuardrail(failMode);
        server.handler = (_req, res) => json(res, { action: 'allow' }, 503);
        await expectUnavailable(i, 'status 503');
      });

      it('on a malformed answer', async () => {
        const { server, inspector: i } = await withGuardrail(failMode);
        server.handler = (_req, res) => res.writeHead(200).end('allow');
        await expectUnavailable(i, 'response is not JSON');
        server.handler = (_req, res) => json(res, { action: 'maybe' });
        await expectUnavailable(i, 'response has no known action');
        server.handler = (_req, res) => json(res, { action: 'redact' });
        await expectUnavailable(i, 'redact without a result object');
      });

      it('on a refused connection', async () => {
        const i = inspector({ guardrail: { url: await deadUrl(), timeoutMs: 2000, failMode } });
        await expectUnavailable(i, /^guardrail unavailable: [A-Z_]+$/);
      });
    });
  }

  it('treats an oversized answer as unavailable', async () => {
    const server = new GuardrailServer();
    const url = await server.listen();
    cleanups.push(() => server.close());
    const i = inspector({ maxResultBytes: 1000, guardrail: { url, timeoutMs: 2000, failMode: 'failClosed' } });
    server.handler = (_req, res) => json(res, { action: 'redact', result: { content: [{ type: 'text', text: 'x'.repeat(100_000) }] } });
    expect(await i.inspect(context, result())).toEqual({
      action: 'block',
      reason: `guardrail unavailable: response larger than ${1000 + 65_536} bytes`,
      cause: 'guardrail-unavailable',
    });
  });

  it('does not consult the guardrail about a result already blocked for size', async () => {
    const server = new GuardrailServer();
    const url = await server.listen();
    cleanups.push(() => server.close());
    const i = inspector({ maxResultBytes: 10, guardrail: { url, timeoutMs: 2000, failMode: 'failOpen' } });
    expect((await i.inspect(context, result('x'.repeat(100)))).action).toBe('block');
    expect(server.seen).toEqual([]);
  });

  it('reuses connections across calls', async () => {
    const { server, inspector: i } = await withGuardrail('failClosed');
    const ports = new Set<number>();
    server.handler = (req, res) => {
      ports.add(req.socket.remotePort!);
      json(res, { action: 'allow' });
    };
    for (let n = 0; n < 10; n++) await i.inspect(context, result());
    expect(server.seen).toHaveLength(10);
    // undici may open a second socket while the first is still settling; never one per call.
    expect(ports.size).toBeLessThanOrEqual(2);
  });

  it('rejects a non-http url and a non-positive timeout', () => {
    expect(() => new ResultInspector({ maxResultBytes: 10, redact: { builtins: [], patterns: [] }, guardrail: { url: new URL('file:///x'), timeoutMs: 10, failMode: 'failOpen' } })).toThrow(
      /http\(s\)/,
    );
    expect(
      () => new ResultInspector({ maxResultBytes: 10, redact: { builtins: [], patterns: [] }, guardrail: { url: new URL('http://127.0.0.1:1/'), timeoutMs: 0, failMode: 'failOpen' } }),
    ).toThrow(/timeoutMs/);
  });
});
