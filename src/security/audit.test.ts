import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../util/canonical-json.ts';
import { argumentsDigest, AuditLog, MAX_BATCH_RECORDS, type AuditRecord } from './audit.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-audit-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function record(n: number, extra: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(),
    traceId: `trace-${n}`,
    session: 'sid-1',
    identity: { subject: 'alice', method: 'jwt', issuer: 'https://issuer.example' },
    route: 'main',
    backend: 'notes',
    method: 'tools/call',
    tool: 'search',
    decision: 'allow',
    rule: 'allow-search',
    latencyMs: 3,
    outcome: 'ok',
    argumentsDigest: argumentsDigest({ q: n }),
    ...extra,
  };
}

async function lines(file: string): Promise<unknown[]> {
  const text = await readFile(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
}

describe('AuditLog to a file', () => {
  it('writes one valid JSON record per line, in order', async () => {
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 100 });
    for (let i = 0; i < 50; i++) log.write(record(i));
    await log.close();

    const parsed = await lines(file);
    expect(parsed).toHaveLength(50);
    expect(parsed[0]).toEqual(record(0));
    expect(parsed.map((r) => (r as AuditRecord).traceId)).toEqual(Array.from({ length: 50 }, (_, i) => `trace-${i}`));
    expect(log.dropped).toBe(0);
  });

  it('writes records on its own, without a flush, within its batch window', async () => {
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 100 });
    try {
      for (let i = 0; i < 3; i++) log.write(record(i));
      let seen: unknown[] = [];
      for (let tries = 0; seen.length < 3 && tries < 500; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        seen = (await readFile(file, 'utf8').catch(() => '')).trimEnd().split('\n').filter(Boolean);
      }
      expect(seen).toHaveLength(3);
    } finally {
      await log.close();
    }
  });

  it('appends to an existing file rather than truncating it', async () => {
    const file = join(dir, 'audit.log');
    for (const n of [1, 2]) {
      const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 });
      log.write(record(n));
      await log.close();
    }
    expect(await lines(file)).toEqual([record(1), record(2)]);
  });

  it('goes on through a stream, in order and losing nothing, once a synchronous write of the file was slow', async () => {
    const file = join(dir, 'audit.log');
    // Every write counts as slow: the first batch is written synchronously, the rest through the stream.
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 100, slowWriteMs: -1 });
    log.write(record(1));
    await log.flush();
    expect(await lines(file)).toEqual([record(1)]);
    for (let i = 2; i <= 40; i++) {
      log.write(record(i));
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 15));
    }
    await log.close();
    expect(await lines(file)).toEqual(Array.from({ length: 40 }, (_, i) => record(i + 1)));
    expect(log.dropped).toBe(0);
  });

  it('flush() resolves once accepted records are on disk, without closing', async () => {
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 });
    log.write(record(1));
    await log.flush();
    expect(await lines(file)).toEqual([record(1)]);
    log.write(record(2));
    await log.close();
    expect(await lines(file)).toEqual([record(1), record(2)]);
  });

  it('strips secret-looking fields at any depth but keeps the API key name', async () => {
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 });
    const tainted = {
      ...record(1),
      identity: { subject: 'svc', method: 'apiKey', apiKey: 'ci-bot', token: 'eyJ.secret.jwt' },
      token: 'session-token-value',
      authorization: 'Bearer s3cr3t-bearer',
      Authorization: 'Bearer s3cr3t-bearer',
      password: 'hunter2-password',
      clientSecret: 'client-secret-value',
      api_key: 'sk-live-value',
      apiKey: 'sk-live-top-level',
      arguments: { path: '/etc/shadow', password: 'arg-password' },
      upstream: { headers: { 'x-api-key': 'sk-nested', cookie: 'sid=cookie-value', accept: 'application/json' } },
    } as AuditRecord;
    log.write(tainted);
    await log.close();

    const text = await readFile(file, 'utf8');
    for (const secret of ['eyJ.secret.jwt', 'session-token-value', 's3cr3t-bearer', 'hunter2-password', 'client-secret-value', 'sk-live-value', 'sk-live-top-level', 'arg-password', '/etc/shadow', 'sk-nested', 'cookie-value']) {
      expect(text).not.toContain(secret);
    }
    const [parsed] = (await lines(file)) as Array<Record<string, unknown>>;
    expect(parsed!.identity).toEqual({ subject: 'svc', method: 'apiKey', apiKey: 'ci-bot' });
    // Non-secret extras survive: the guard removes secrets, not information.
    expect(parsed!.upstream).toEqual({ headers: { accept: 'application/json' } });
    expect(parsed!.argumentsDigest).toBe(record(1).argumentsDigest);
  });

  it('strips secrets from objects found where a plain value belongs, and writes plain records whole', async () => {
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 });
    const plain = record(1, { identity: { subject: 'svc', method: 'apiKey', apiKey: 'ci-bot' } });
    log.write(plain);
    log.write({ ...record(2), reason: { detail: 'x', token: 'reason-token-value' } } as unknown as AuditRecord);
    log.write({ ...record(3), identity: { method: 'jwt', subject: { name: 'svc', password: 'nested-password' } } } as unknown as AuditRecord);
    await log.close();

    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('reason-token-value');
    expect(text).not.toContain('nested-password');
    const parsed = (await lines(file)) as Array<Record<string, unknown>>;
    expect(parsed[0]).toEqual(plain);
    expect(parsed[1]!.reason).toEqual({ detail: 'x' });
    expect(parsed[2]!.identity).toEqual({ method: 'jwt', subject: { name: 'svc' } });
  });

  it('makes a record handed over as a function when its batch is written, and drops only the ones that fail', async () => {
    const file = join(dir, 'audit.log');
    const dropped: number[] = [];
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 }, (n) => dropped.push(n));
    let made = 0;
    log.write(() => (made++, record(1)));
    log.write(() => {
      throw new Error('no record');
    });
    log.write(record(2));
    log.write(() => (made++, record(3)));
    // Not yet: the batch is made when its window ends.
    expect(made).toBe(0);
    await log.close();
    expect(made).toBe(2);
    expect(await lines(file)).toEqual([record(1), record(2), record(3)]);
    expect(log.dropped).toBe(1);
    expect(dropped).toEqual([1]);
  });

  it('drops an unserializable record instead of throwing', async () => {
    const file = join(dir, 'audit.log');
    const dropped: number[] = [];
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 }, (n) => dropped.push(n));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => log.write({ ...record(1), extra: cyclic } as AuditRecord)).not.toThrow();
    expect(() => log.write({ ...record(2), big: 1n } as AuditRecord)).not.toThrow();
    log.write(record(3));
    await log.close();
    expect(await lines(file)).toEqual([record(3)]);
    expect(log.dropped).toBe(2);
    expect(dropped).toEqual([1, 1]);
  });

  it('counts records written after close as dropped', async () => {
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 });
    await log.close();
    expect(() => log.write(record(1))).not.toThrow();
    expect(log.dropped).toBe(1);
  });

  it('survives a destination that cannot be opened, counting every record as dropped', async () => {
    const file = join(dir, 'missing-dir', 'audit.log');
    let reported = 0;
    const log = new AuditLog({ destination: { file }, maxBufferedRecords: 10 }, (n) => (reported += n));
    for (let i = 0; i < 5; i++) log.write(record(i));
    await log.close();
    expect(log.dropped).toBe(5);
    expect(reported).toBe(5);
  });
});

/** Closes a log whose FIFO had no reader, reading it now: the records that come out. */
async function closeWithReader(log: AuditLog, fifo: string): Promise<AuditRecord[]> {
  const reader = createReadStream(fifo, { encoding: 'utf8' });
  const received = (async () => {
    let text = '';
    for await (const chunk of reader) text += chunk as string;
    return text;
  })();
  await log.close();
  return (await received).trimEnd().split('\n').map((line) => JSON.parse(line) as AuditRecord);
}

describe('AuditLog under a stalled destination', () => {
  // A FIFO with no reader is a real stalled stream: the open (and so every write)
  // waits until someone reads, exactly like a wedged disk or pipe.
  it('bounds memory: queues up to maxBufferedRecords, then drops and counts', async () => {
    const fifo = join(dir, 'audit.fifo');
    execFileSync('mkfifo', [fifo]);
    let reported = 0;
    const log = new AuditLog({ destination: { file: fifo }, maxBufferedRecords: 25 }, (n) => (reported += n));

    // Enough records to overrun the stream's own high-water mark several times over.
    const total = 5_000;
    for (let i = 0; i < total; i++) log.write(record(i, { reason: 'x'.repeat(100) }));

    expect(log.dropped).toBeGreaterThan(0);
    expect(reported).toBe(log.dropped);
    const accepted = total - log.dropped;
    // Accepted = what the stream took before signalling backpressure + our bounded queue.
    expect(accepted).toBeLessThan(total / 2);

    // Un-stall: a reader appears; everything accepted (and nothing else) comes out.
    const out = await closeWithReader(log, fifo);
    expect(out).toHaveLength(accepted);
    // Drops are of the newest records: what got through is a gap-free prefix.
    expect(out.map((r) => r.traceId)).toEqual(Array.from({ length: accepted }, (_, i) => `trace-${i}`));
    expect(log.dropped).toBe(reported);
  });

  it('keeps what waits as text: a record handed over as a function is made at once, so what it reads is let go', async () => {
    const fifo = join(dir, 'audit.fifo');
    execFileSync('mkfifo', [fifo]);
    const log = new AuditLog({ destination: { file: fifo }, maxBufferedRecords: 25 });
    // A full batch goes to the stream, which cannot write it yet: the log now waits for it to drain.
    const batch = MAX_BATCH_RECORDS;
    for (let i = 0; i < batch; i++) log.write(record(i, { reason: 'x'.repeat(100) }));
    let made = false;
    log.write(() => ((made = true), record(batch)));
    expect(made).toBe(true);
    const out = await closeWithReader(log, fifo);
    expect(out.map((r) => r.traceId)).toEqual(Array.from({ length: batch + 1 }, (_, i) => `trace-${i}`));
    expect(log.dropped).toBe(0);
  });
});

describe('argumentsDigest', () => {
  it('is stable across key order at every depth', () => {
    const a = { b: 1, a: { y: [1, { q: true, p: null }], x: 'text' } };
    const b = { a: { x: 'text', y: [1, { p: null, q: true }] }, b: 1 };
    expect(argumentsDigest(a)).toBe(argumentsDigest(b));
    expect(argumentsDigest(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('distinguishes different arguments, including array order and types', () => {
    expect(argumentsDigest({ a: [1, 2] })).not.toBe(argumentsDigest({ a: [2, 1] }));
    expect(argumentsDigest({ a: 1 })).not.toBe(argumentsDigest({ a: '1' }));
    expect(argumentsDigest({})).not.toBe(argumentsDigest([]));
  });

  it('hashes the canonical text (sorted keys, no whitespace, JSON number form)', () => {
    expect(canonicalJson({ z: 1e21, a: [1.5, 'é', undefined], m: { d: undefined, c: -0 } })).toBe('{"a":[1.5,"é",null],"m":{"c":0},"z":1e+21}');
    // Keys sort by UTF-16 code units, as RFC 8785 specifies.
    expect(canonicalJson({ '\u{1F600}': 1, '\uFB33': 2, b: 3, B: 4 })).toBe('{"B":4,"b":3,"\u{1F600}":1,"\uFB33":2}');
    // sha256("{}")
    expect(argumentsDigest({})).toBe('44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    expect(argumentsDigest(undefined)).toBe(argumentsDigest(null));
  });

  it('refuses cycles rather than looping', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => argumentsDigest(cyclic)).toThrow();
  });
});
