import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HttpFramingError, ResponseParser } from './response-parser.ts';

interface Parsed {
  status?: number;
  headers?: IncomingHttpHeaders;
  body: Buffer[];
  ends: number;
}

function parserFor(maxHeadBytes = 16 * 1024): { parser: ResponseParser; out: Parsed } {
  const out: Parsed = { body: [], ends: 0 };
  const parser = new ResponseParser(
    {
      head: (status, headers) => {
        out.status = status;
        out.headers = headers;
      },
      data: (chunk) => out.body.push(Buffer.from(chunk)),
      end: () => out.ends++,
    },
    { maxHeadBytes },
  );
  parser.expectResponse();
  return { parser, out };
}

/** Feeds `wire` in pieces cut at `cuts` (offsets), as a socket might deliver it. */
function feedCut(parser: ResponseParser, wire: Buffer, cuts: readonly number[]): void {
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (cut <= from || cut >= wire.length) continue;
    parser.feed(wire.subarray(from, cut));
    from = cut;
  }
  parser.feed(wire.subarray(from));
}

function parse(wire: string | Buffer): Parsed {
  const { parser, out } = parserFor();
  parser.feed(Buffer.isBuffer(wire) ? wire : Buffer.from(wire, 'latin1'));
  return out;
}

const refusal = (wire: string, pattern: RegExp): void => {
  const { parser } = parserFor();
  let thrown: unknown;
  try {
    parser.feed(Buffer.from(wire, 'latin1'));
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(HttpFramingError);
  expect((thrown as Error).message).toMatch(pattern);
};

const chunked = (pieces: readonly Buffer[], extension = '', trailers = ''): Buffer =>
  Buffer.concat([...pieces.map((p) => Buffer.concat([Buffer.from(`${p.length.toString(16)}${extension}\r\n`), p, Buffer.from('\r\n')])), Buffer.from(`0\r\n${trailers}\r\n`)]);

describe('ResponseParser', () => {
  it('reads a Content-Length response the same however the socket cuts it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 12 }), (bytes, cuts) => {
        const body = Buffer.from(bytes);
        const wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`), body]);
        const { parser, out } = parserFor();
        feedCut(parser, wire, cuts);
        expect(out.status).toBe(200);
        expect(out.headers!['content-type']).toBe('application/json');
        expect(Buffer.concat(out.body).equals(body)).toBe(true);
        expect(out.ends).toBe(1);
        expect(parser.keepAlive).toBe(true);
        expect(parser.expecting).toBe(false);
      }),
    );
  });

  it('de-chunks a chunked response, with extensions and trailers, however the socket cuts it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 70 }), { maxLength: 6 }),
        fc.constantFrom('', ';name=value', ' ;x'),
        fc.constantFrom('', 'X-Checksum: abc\r\n'),
        fc.array(fc.nat(600), { maxLength: 16 }),
        (pieces, extension, trailers, cuts) => {
          const chunks = pieces.map((p) => Buffer.from(p));
          const wire = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), chunked(chunks, extension, trailers)]);
          const { parser, out } = parserFor();
          feedCut(parser, wire, cuts);
          expect(Buffer.concat(out.body).equals(Buffer.concat(chunks))).toBe(true);
          expect(out.ends).toBe(1);
          expect(parser.keepAlive).toBe(true);
        },
      ),
    );
  });

  it('reads every cut of a response into the same events, one byte at a time included', () => {
    const wire = Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nkeep-alive: timeout=5\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 'latin1');
    for (let cut = 1; cut < wire.length; cut++) {
      const { parser, out } = parserFor();
      feedCut(parser, wire, [cut]);
      expect(Buffer.concat(out.body).toString()).toBe('abc');
      expect(out.ends).toBe(1);
    }
    const { parser, out } = parserFor();
    for (let i = 0; i < wire.length; i++) parser.feed(wire.subarray(i, i + 1));
    expect([out.status, Buffer.concat(out.body).toString(), out.ends, parser.keepAliveHintMs]).toEqual([200, 'abc', 1, 5000]);
  });

  it('skips interim responses and ends bodiless ones at the head', () => {
    const early = parse('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
    expect([early.status, early.ends, early.body.length]).toEqual([204, 1, 0]);
    expect(parse('HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n').ends).toBe(1);
  });

  it('reads a body delimited by the close to the close, and does not keep the connection', () => {
    const { parser, out } = parserFor();
    parser.feed(Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: 1\n\n'));
    parser.feed(Buffer.from('data: 2\n\n'));
    expect(out.ends).toBe(0);
    parser.closed();
    expect([Buffer.concat(out.body).toString(), out.ends, parser.keepAlive]).toEqual(['data: 1\n\ndata: 2\n\n', 1, false]);
  });

  it('follows Connection: close, HTTP/1.0 keep-alive and the Keep-Alive timeout hint', () => {
    const close = parserFor();
    close.parser.feed(Buffer.from('HTTP/1.1 200 OK\r\nConnection: Close\r\ncontent-length: 0\r\n\r\n'));
    expect(close.parser.keepAlive).toBe(false);
    const old = parserFor();
    old.parser.feed(Buffer.from('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=2, max=100\r\ncontent-length: 0\r\n\r\n'));
    expect([old.parser.keepAlive, old.parser.keepAliveHintMs]).toEqual([true, 2000]);
    const plain10 = parserFor();
    plain10.parser.feed(Buffer.from('HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n'));
    expect(plain10.parser.keepAlive).toBe(false);
  });

  it('merges repeated fields, keeping set-cookie apart', () => {
    const out = parse('HTTP/1.1 200 OK\r\nVary: a\r\nvary: b\r\nSet-Cookie: x=1\r\nset-cookie: y=2\r\ncontent-length: 0\r\n\r\n');
    expect(out.headers).toMatchObject({ vary: 'a, b', 'set-cookie': ['x=1', 'y=2'] });
  });

  describe('refuses what could be read two ways', () => {
    it('conflicting or malformed Content-Length', () => {
      refusal('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!', /bad content-length/);
      refusal('HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello!', /bad content-length/);
      refusal('HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello', /bad content-length/);
      refusal('HTTP/1.1 200 OK\r\ncontent-length: 0x5\r\n\r\nhello', /bad content-length/);
      expect(Buffer.concat(parse('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello').body).toString()).toBe('hello');
    });

    it('a bare LF, a folded field, a nameless field or a control character in a value', () => {
      refusal('HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', /bad status line/);
      // A head whose lines all end in bare LFs is refused as it comes, not waited on until the timeout.
      refusal('HTTP/1.1 200 OK\nContent-Length: 1\n\nx', /bare LF/);
      const split = parserFor();
      split.parser.feed(Buffer.from('HTTP/1.1 200 OK\r'));
      split.parser.feed(Buffer.from('\ncontent-length: 0\r\n'));
      split.parser.feed(Buffer.from('\r\n'));
      expect(split.out.ends).toBe(1);
      refusal('HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 5\r\n\r\n', /bad value of header "X-A"/);
      refusal('HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\ncontent-length: 0\r\n\r\n', /bad header/);
      refusal('HTTP/1.1 200 OK\r\n: empty\r\n\r\n', /bad header line/);
      refusal('HTTP/1.1 200 OK\r\nContent Length: 0\r\n\r\n', /bad header name/);
      refusal('HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n', /bad value/);
    });

    it('bytes after the response: a second response nobody asked for', () => {
      refusal('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', /bytes followed the end of the response/);
      refusal('HTTP/1.1 204 No Content\r\n\r\nx', /bytes followed/);
      const { parser } = parserFor();
      parser.feed(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
      expect(() => parser.feed(Buffer.from('HTTP/1.1 200 OK\r\n'))).toThrow(/no request waiting/);
    });

    it('Transfer-Encoding with Content-Length: read as chunked, and the connection not kept', () => {
      const { parser, out } = parserFor();
      parser.feed(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'));
      expect([Buffer.concat(out.body).toString(), out.ends, parser.keepAlive]).toEqual(['ok', 1, false]);
    });

    it('reads the framing headers as lists, in any case, and decodes no transfer-coding but chunked', () => {
      const spaced = parserFor();
      spaced.parser.feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding:  CHUNKED \r\n\r\nA\t;ext=1\r\n0123456789\r\n0\r\n\r\n'));
      expect([Buffer.concat(spaced.out.body).toString(), spaced.out.ends, spaced.parser.keepAlive]).toEqual(['0123456789', 1, true]);
      // Never asked for: a body still gzipped after de-chunking would be read as the message.
      refusal('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', /unsupported Transfer-Encoding "gzip, chunked"/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\nraw', /unsupported Transfer-Encoding/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', /unsupported Transfer-Encoding/);
      refusal('HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', /HTTP\/1\.0/);
      const listed = parserFor();
      listed.parser.feed(Buffer.from('HTTP/1.1 200 OK\r\nconnection: keep-alive, cLoSe\r\ncontent-length: 0\r\n\r\n'));
      expect(listed.parser.keepAlive).toBe(false);
      const kept = parserFor();
      kept.parser.feed(Buffer.from('HTTP/1.1 200 OK\r\nCONNECTION: closed, keep-alive\r\ncontent-length: 0\r\n\r\n'));
      expect(kept.parser.keepAlive).toBe(true);
    });

    it('bad chunk framing', () => {
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nok\r\n', /does not end in CRLF/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokX\r\n', /not followed by CRLF/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000\r\n', /bad chunk size/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2 x\r\nok\r\n', /bad chunk size/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a\rb\r\nok\r\n', /bad chunk size/);
      refusal('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n;x\r\nok\r\n', /bad chunk size/);
      refusal(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${'1'.repeat(5000)}`, /chunk-size line is too long/);
    });

    it('a switch of protocols, an HTTP/2 status line, a head past the limit', () => {
      refusal('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /switched protocols/);
      refusal('HTTP/2 200\r\n\r\n', /bad status line/);
      refusal('HTTP/1.1 099 Odd\r\n\r\n', /bad status line/);
      const { parser } = parserFor(64);
      expect(() => parser.feed(Buffer.from(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(100)}`))).toThrow(/head is larger than 64 bytes/);
      const trailers = parserFor(64);
      expect(() => trailers.parser.feed(Buffer.from(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nX-T: ${'a'.repeat(100)}\r\n`))).toThrow(/trailers are larger/);
    });

    it('a close before the response ends', () => {
      const before = parserFor();
      expect(() => before.parser.closed()).toThrow(/closed before a response/);
      const during = parserFor();
      during.parser.feed(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf'));
      expect(() => during.parser.closed()).toThrow(/closed in the middle of the response/);
      const idle = parserFor();
      idle.parser.feed(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
      expect(() => idle.parser.closed()).not.toThrow();
    });
  });
});
