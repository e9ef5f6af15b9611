import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseDecoder, type SseEvent } from './sse-reader.ts';

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out;
}

async function collect(parts: Buffer[], max = 1 << 20): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  const decoder = new SseDecoder(max, (e) => out.push(e));
  for (const part of parts) decoder.feed(part);
  decoder.end();
  return out;
}

const encode = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('SSE reading (property-based)', () => {
  it('however a stream is cut into chunks (even inside multi-byte characters or a CRLF), its events come out whole', async () => {
    // Events with empty data carry no message and are dropped on the way: their lines are not empty here.
    const line = fc.string({ unit: 'grapheme', minLength: 1 }).filter((s) => !/[\r\n]/.test(s));
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            id: fc.option(fc.stringMatching(/^[a-z0-9.]{1,8}$/), { nil: undefined }),
            event: fc.option(fc.stringMatching(/^[a-z/]{1,12}$/), { nil: undefined }),
            data: fc.array(line, { minLength: 1, maxLength: 3 }),
            comment: fc.boolean(),
          }),
          { maxLength: 8 },
        ),
        fc.constantFrom('\n', '\r\n', '\r'),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (events, eol, cuts) => {
          const text = events
            .map((e) =>
              [
                ...(e.comment ? [': keep-alive'] : []),
                ...(e.event === undefined ? [] : [`event: ${e.event}`]),
                ...(e.id === undefined ? [] : [`id:${e.id}`]),
                ...e.data.map((d) => `data: ${d}`),
                '',
              ].join(eol) + eol,
            )
            .join('');
          const got = await collect(split(encode(text), cuts));
          expect(got).toEqual(events.map((e) => ({ event: e.event, id: e.id, data: e.data.join('\n') })));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads fields as the standard says: one space after the colon is dropped, a BOM opens the stream only, no data no event', async () => {
    const text = '\ufeffdata:x\n\ndata:  two spaces\ndata\n\nevent: ping\nid: 1\n\nretry: 10\nunknown: y\ndata: \ufeffkept\n\ndata: never ended';
    const expected = [
      { event: undefined, id: undefined, data: 'x' },
      { event: undefined, id: undefined, data: ' two spaces\n' },
      { event: undefined, id: undefined, data: '\ufeffkept' },
    ];
    expect(await collect([encode(text)])).toEqual(expected);
    // The mark's three bytes cut apart, or alone in the first chunk.
    for (const cut of [1, 2, 3]) expect(await collect(split(encode(text), [cut]))).toEqual(expected);
  });

  it('an event larger than the bound fails the stream instead of growing memory', async () => {
    const big = encode(`data: ${'x'.repeat(10_000)}`);
    await expect(collect(split(big, [100, 2000, 5000]), 4096)).rejects.toThrow(/larger than 4096/);
    const manyLines = encode(`${'data: xxxxxxxxxx\n'.repeat(1000)}\n`);
    await expect(collect([manyLines], 4096)).rejects.toThrow(/larger than 4096/);
    // The bound is in bytes: 3,000 two-byte characters are 6,000 bytes.
    await expect(collect([encode(`data: ${'é'.repeat(3000)}\n\n`)], 4096)).rejects.toThrow(/larger than 4096/);
    expect(await collect([encode(`data: ${'é'.repeat(2000)}\n\n`)], 4096)).toHaveLength(1);
  });

  it('keep-alive comments and events without data, between events, count toward no event', async () => {
    const text = `${': keep-alive\n'.repeat(1000)}data: after\n\n`;
    expect(await collect([encode(text)], 4096)).toEqual([{ event: undefined, id: undefined, data: 'after' }]);
    const heartbeats = Array.from({ length: 1000 }, (_, i) => encode(`event: ping\nid: ${i}\n\n`));
    expect(await collect([...heartbeats, encode('data: after\n\n')], 4096)).toEqual([{ event: undefined, id: undefined, data: 'after' }]);
  });
});
