import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readSseEvents } from './sse-reader.ts';

async function* chunks(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out;
}

async function collect(parts: Uint8Array[], max = 1 << 20) {
  const out = [];
  for await (const e of readSseEvents(chunks(parts), max)) out.push(e);
  return out;
}

describe('SSE reading (property-based)', () => {
  it('however a stream is cut into chunks (even inside multi-byte characters), the same events come out', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ id: fc.option(fc.stringMatching(/^[a-z0-9.]{1,8}$/), { nil: undefined }), data: fc.string({ unit: 'grapheme' }).filter((s) => !/[\r\n]/.test(s)) }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (events, cuts) => {
          const text = events.map((e) => `${e.id === undefined ? '' : `id: ${e.id}\n`}data: ${e.data}\n\n`).join('');
          const bytes = new TextEncoder().encode(text);
          const whole = await collect([bytes]);
          const pieces = await collect(split(bytes, cuts));
          expect(pieces).toEqual(whole);
          expect(whole.map((e) => e.data)).toEqual(events.map((e) => e.data));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an event larger than the bound fails the stream instead of growing memory', async () => {
    const big = new TextEncoder().encode(`data: ${'x'.repeat(10_000)}`);
    await expect(collect(split(big, [100, 2000, 5000]), 4096)).rejects.toThrow(/larger than 4096/);
  });
});
