import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ArgumentValidator } from './arguments.ts';

const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';
const DRAFT_2020 = 'https://json-schema.org/draft/2020-12/schema';

function tool(inputSchema: unknown, name = 'read_file'): Record<string, unknown> {
  return { name, inputSchema };
}

const readFile = tool({
  type: 'object',
  properties: {
    path: { type: 'string', minLength: 1 },
    mode: { type: 'string', enum: ['text', 'binary'] },
    ranges: { type: 'array', items: { type: 'object', properties: { start: { type: 'integer' } }, required: ['start'] } },
    'odd key': { type: 'number' },
  },
  required: ['path'],
  additionalProperties: false,
});

describe('ArgumentValidator', () => {
  const validator = new ArgumentValidator();

  it('accepts valid arguments', () => {
    expect(validator.validate('files', readFile, { path: 'a.txt', mode: 'text', ranges: [{ start: 1 }] })).toEqual({ ok: true });
  });

  it('summarizes errors in one readable line', () => {
    expect(validator.validate('files', readFile, { path: 7 })).toEqual({ ok: false, message: 'arguments.path: must be string' });
    expect(validator.validate('files', readFile, {})).toEqual({ ok: false, message: "arguments: must have required property 'path'" });
    expect(validator.validate('files', readFile, { path: 'a', ranges: [{ start: 1 }, { start: 'x' }] })).toEqual({
      ok: false,
      message: 'arguments.ranges[1].start: must be integer',
    });
    expect(validator.validate('files', readFile, { path: 'a', mode: 'hex' })).toEqual({
      ok: false,
      message: 'arguments.mode: must be equal to one of the allowed values: ["text","binary"]',
    });
    expect(validator.validate('files', readFile, { path: 'a', 'odd key': 'x' })).toEqual({ ok: false, message: 'arguments["odd key"]: must be number' });
    expect(validator.validate('files', readFile, { path: 'a', extra: 1 })).toEqual({
      ok: false,
      message: 'arguments: must NOT have additional properties ("extra")',
    });
    expect(validator.validate('files', readFile, ['a'])).toEqual({ ok: false, message: 'arguments: must be object' });
  });

  it('keeps the summary on one line whatever the argument names', () => {
    const result = validator.validate('files', readFile, { path: 'a', 'line\nbreak\u2028x': 1 });
    expect(result.ok).toBe(false);
    expect((result as { message: string }).message).not.toMatch(/[\n\r\u2028]/);
  });

  it('lists several errors of an anyOf, and says how many more there are', () => {
    const t = tool({
      type: 'object',
      properties: { id: { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }, { type: 'array' }] } },
    });
    expect(validator.validate('b', t, { id: true })).toEqual({
      ok: false,
      message: 'arguments.id: must be string; arguments.id: must be integer; arguments.id: must be null (and 2 more)',
    });
  });

  it('checks absent arguments as an empty map', () => {
    expect(validator.validate('files', readFile, undefined)).toEqual({ ok: false, message: "arguments: must have required property 'path'" });
    expect(validator.validate('b', tool({ type: 'object' }), undefined)).toEqual({ ok: true });
  });

  it('does not let inherited properties satisfy required', () => {
    const t = tool({ type: 'object', required: ['toString', 'constructor'] });
    expect(validator.validate('b', t, {})).toEqual({ ok: false, message: "arguments: must have required property 'toString'" });
  });

  it('never changes the arguments (no defaults, no coercion)', () => {
    const t = tool({ type: 'object', properties: { n: { type: 'number', default: 5 }, s: { type: 'string' } } });
    const args = { s: 'x' };
    expect(validator.validate('b', t, args)).toEqual({ ok: true });
    expect(args).toEqual({ s: 'x' });
    expect(validator.validate('b', t, { n: '5' })).toEqual({ ok: false, message: 'arguments.n: must be number' });
  });

  it('treats format as an annotation', () => {
    const t = tool({ type: 'object', properties: { when: { type: 'string', format: 'date-time' }, x: { format: 'made-up' } } });
    expect(validator.validate('b', t, { when: 'not a date', x: 1 })).toEqual({ ok: true });
  });

  describe('dialects', () => {
    it('draft-07 as the SDK emits it, with definitions and tuple items', () => {
      const t = tool({
        $schema: DRAFT_07,
        type: 'object',
        definitions: { point: { type: 'array', items: [{ type: 'number' }, { type: 'number' }], additionalItems: false } },
        properties: { at: { $ref: '#/definitions/point' } },
      });
      expect(validator.validate('b', t, { at: [1, 2] })).toEqual({ ok: true });
      expect(validator.validate('b', t, { at: [1, 'x'] })).toEqual({ ok: false, message: 'arguments.at[1]: must be number' });
      expect(validator.validate('b', t, { at: [1, 2, 3] })).toEqual({ ok: false, message: 'arguments.at: must NOT have more than 2 items' });
    });

    it('draft-07 from a real SDK server', async () => {
      const server = new McpServer({ name: 's', version: '1' });
      server.registerTool(
        'add',
        { inputSchema: { a: z.number(), b: z.number().int().min(0), note: z.string().optional() } },
        async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
      );
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      const client = new Client({ name: 'c', version: '1' });
      await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
      try {
        const { tools } = await client.listTools();
        const add = tools[0] as unknown as Record<string, unknown>;
        expect((add.inputSchema as { $schema?: string }).$schema).toBe(DRAFT_07);
        expect(validator.validate('sdk', add, { a: 1, b: 2 })).toEqual({ ok: true });
        expect(validator.validate('sdk', add, { a: 1, b: -1 })).toEqual({ ok: false, message: 'arguments.b: must be >= 0' });
        expect(validator.validate('sdk', add, { a: 1 })).toEqual({ ok: false, message: "arguments: must have required property 'b'" });
      } finally {
        await client.close();
        await server.close();
      }
    });

    it('2020-12 with $defs and prefixItems', () => {
      const t = tool({
        $schema: DRAFT_2020,
        type: 'object',
        $defs: { point: { type: 'array', prefixItems: [{ type: 'number' }, { type: 'number' }], items: false } },
        properties: { at: { $ref: '#/$defs/point' } },
        unevaluatedProperties: false,
      });
      expect(validator.validate('b', t, { at: [1, 2] })).toEqual({ ok: true });
      expect(validator.validate('b', t, { at: [1, 2, 3] })).toEqual({ ok: false, message: 'arguments.at: must NOT have more than 2 items' });
      expect(validator.validate('b', t, { at: [1, 2], more: 1 })).toEqual({ ok: false, message: 'arguments: must NOT have unevaluated properties' });
    });

    it('2019-09 and draft-06, and $schema spellings in the wild', () => {
      for (const $schema of [
        'https://json-schema.org/draft/2019-09/schema',
        'http://json-schema.org/draft-06/schema#',
        'https://json-schema.org/draft-07/schema',
        'http://json-schema.org/draft/2020-12/schema#',
      ]) {
        const t = tool({ $schema, type: 'object', properties: { q: { type: 'string' } } });
        expect(validator.validate('b', t, { q: 1 }), $schema).toEqual({ ok: false, message: 'arguments.q: must be string' });
      }
    });

    it('no $schema means 2020-12, falling back to draft-07 for legacy shapes', () => {
      const modern = tool({ type: 'object', properties: { p: { prefixItems: [{ type: 'string' }] } } });
      expect(validator.validate('b', modern, { p: [1] })).toEqual({ ok: false, message: 'arguments.p[0]: must be string' });
      const legacy = tool({ type: 'object', properties: { p: { items: [{ type: 'string' }] } } });
      expect(validator.validate('b', legacy, { p: [1] })).toEqual({ ok: false, message: 'arguments.p[0]: must be string' });
    });

    it('draft-04 and unknown dialects are unchecked', () => {
      const d4 = tool({ $schema: 'http://json-schema.org/draft-04/schema#', type: 'object' });
      expect(validator.validate('b', d4, {})).toEqual({ ok: 'unchecked', reason: 'unsupported JSON Schema dialect "http://json-schema.org/draft-04/schema#"' });
      const odd = tool({ $schema: 'https://example.com/my-dialect', type: 'object' });
      expect(validator.validate('b', odd, {}).ok).toBe('unchecked');
    });
  });

  describe('schemas that cannot be used', () => {
    it('reports an invalid schema as unchecked instead of throwing', () => {
      const result = validator.validate('b', tool({ type: 'object', properties: { a: { type: 'strng' } } }), {});
      expect(result.ok).toBe('unchecked');
      expect((result as { reason: string }).reason).toMatch(/^schema not compilable: inputSchema\/properties\/a\/type must be/);
    });

    it('reports unresolvable references, including to another backend’s $id', () => {
      const a = tool({ $id: 'urn:shared:thing', type: 'object', properties: { x: { type: 'string' } } });
      expect(validator.validate('a', a, { x: 's' })).toEqual({ ok: true });
      const b = tool({ type: 'object', properties: { thing: { $ref: 'urn:shared:thing' } } });
      const result = validator.validate('b', b, { thing: { x: 1 } });
      expect(result.ok).toBe('unchecked');
      expect((result as { reason: string }).reason).toMatch(/^schema not compilable: can't resolve reference urn:shared:thing/);
    });

    it('compiles two schemas with the same $id without conflict', () => {
      const v1 = tool({ $id: 'https://example.com/args', type: 'object', properties: { a: { type: 'string' } } });
      const v2 = tool({ $id: 'https://example.com/args', type: 'object', properties: { a: { type: 'number' } } });
      expect(validator.validate('b', v1, { a: 'x' })).toEqual({ ok: true });
      expect(validator.validate('b', v2, { a: 1 })).toEqual({ ok: true });
      expect(validator.validate('c', v1, { a: 1 })).toEqual({ ok: false, message: 'arguments.a: must be string' });
    });

    it('refuses $async schemas, whose validators answer with a promise', () => {
      const result = validator.validate('b', tool({ $async: true, type: 'object' }), {});
      expect(result).toEqual({ ok: 'unchecked', reason: 'schema not compilable: $async schemas are not supported' });
    });

    it('reports a missing or non-object inputSchema, and a bad $schema', () => {
      expect(validator.validate('b', { name: 'x' }, {})).toEqual({ ok: 'unchecked', reason: 'tool has no inputSchema object' });
      expect(validator.validate('b', tool('object'), {})).toEqual({ ok: 'unchecked', reason: 'tool has no inputSchema object' });
      expect(validator.validate('b', tool({ $schema: 7, type: 'object' }), {})).toEqual({
        ok: 'unchecked',
        reason: 'schema not compilable: $schema is not a string',
      });
    });

    it('refuses schemas over maxSchemaBytes', () => {
      const small = new ArgumentValidator({ maxSchemaBytes: 100 });
      const schema = { type: 'object', description: 'x'.repeat(200) };
      const bytes = Buffer.byteLength(JSON.stringify(schema));
      expect(small.validate('b', tool(schema), {})).toEqual({ ok: 'unchecked', reason: `schema not compilable: ${bytes} bytes, limit 100` });
    });

    it('handles lone surrogates in a schema', () => {
      const schema = JSON.parse('{"type":"object","description":"bad \\ud800","properties":{"s":{"const":"\\udc00"}}}') as unknown;
      expect(validator.validate('b', tool(schema), { s: JSON.parse('"\\udc00"') })).toEqual({ ok: true });
      expect(validator.validate('b', tool(schema), { s: 'x' })).toEqual({ ok: false, message: 'arguments.s: must be equal to constant' });
    });

    it('rejects arguments nested deeper than a recursive schema can follow', () => {
      const t = tool({ type: 'object', properties: { child: { $ref: '#' } } });
      let args: Record<string, unknown> = {};
      for (let i = 0; i < 100_000; i++) args = { child: args };
      expect(validator.validate('b', t, args)).toEqual({ ok: false, message: 'arguments: nested too deeply to validate' });
      expect(validator.validate('b', t, { child: { child: {} } })).toEqual({ ok: true });
    });
  });

  describe('cache', () => {
    it('compiles once per (backend, tool, schema hash)', () => {
      const v = new ArgumentValidator();
      for (let i = 0; i < 50; i++) v.validate('files', readFile, { path: 'a' });
      expect(v.compilations).toBe(1);
      // Equal content in a new object (a re-listed tool) is the same schema.
      v.validate('files', structuredClone(readFile), { path: 'a' });
      expect(v.compilations).toBe(1);
      v.validate('other', readFile, { path: 'a' });
      v.validate('files', { ...readFile, name: 'read_file_2' }, { path: 'a' });
      expect(v.compilations).toBe(3);
      // A changed schema is compiled anew, and validates by its new rules.
      const changed = tool({ type: 'object', properties: { path: { type: 'number' } } });
      expect(v.validate('files', changed, { path: 'a' })).toEqual({ ok: false, message: 'arguments.path: must be number' });
      expect(v.compilations).toBe(4);
      expect(v.size).toBe(4);
    });

    it('caches schemas that cannot be compiled too', () => {
      const v = new ArgumentValidator();
      const bad = tool({ type: 'object', properties: { a: { type: 'strng' } } });
      v.validate('b', bad, {});
      v.validate('b', structuredClone(bad), {});
      expect(v.compilations).toBe(1);
    });

    it('is a bounded LRU', () => {
      const v = new ArgumentValidator({ maxCached: 2 });
      const t1 = tool({ type: 'object' }, 't1');
      const t2 = tool({ type: 'object' }, 't2');
      const t3 = tool({ type: 'object' }, 't3');
      v.validate('b', t1, {});
      v.validate('b', t2, {});
      v.validate('b', t1, {}); // t1 is now the most recent
      v.validate('b', t3, {}); // evicts t2
      expect(v.size).toBe(2);
      expect(v.compilations).toBe(3);
      v.validate('b', t1, {});
      expect(v.compilations).toBe(3);
      v.validate('b', t2, {});
      expect(v.compilations).toBe(4);
      expect(v.size).toBe(2);
    });

    it('keeps a schema it just compiled even when every other one was used since', () => {
      const v = new ArgumentValidator({ maxCached: 2 });
      const [t1, t2, t3] = ['t1', 't2', 't3'].map((name) => tool({ type: 'object' }, name));
      v.validate('b', t1!, {});
      v.validate('b', t2!, {});
      v.validate('b', t1!, {});
      v.validate('b', t2!, {});
      v.validate('b', t3!, {});
      v.validate('b', t3!, {});
      expect(v.compilations).toBe(3);
      v.validate('b', t1!, {}); // the oldest of the two used ones went
      expect(v.compilations).toBe(4);
    });
  });
});
