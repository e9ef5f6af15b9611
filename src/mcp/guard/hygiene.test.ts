import { describe, expect, it } from 'vitest';
import { DEFAULT_HYGIENE_OPTIONS, MAX_FINDINGS, inspectTool, type HygieneOptions } from './hygiene.ts';

const options: HygieneOptions = { ...DEFAULT_HYGIENE_OPTIONS };

/** "hello" spelled in Unicode tag characters: invisible, read by models. */
const TAG_HELLO = [...'hello'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');

function tool(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'read_file',
    title: 'Read file',
    description: 'Reads a file from the workspace.',
    inputSchema: {
      type: 'object',
      properties: {
        path: { type: 'string', description: 'Path relative to the workspace' },
        mode: { type: 'string', enum: ['text', 'binary'] },
      },
      required: ['path'],
    },
    ...extra,
  };
}

describe('inspectTool', () => {
  it('finds nothing in a clean tool, in any script', () => {
    expect(inspectTool(tool(), options)).toEqual([]);
    const multilingual = tool({
      description: 'Lit un fichier. 读取文件。 قراءة ملف. קורא קובץ. 👩‍💻 ❤️ ١٢٣ \u0600١٢\ttab\nnewline\r\n',
    });
    // The emoji ZWJ sequence is the one exception: zero-width joiners are reported wherever they are.
    expect(inspectTool(multilingual, options)).toEqual([
      { path: 'description', problem: 'invisible-character', detail: expect.stringMatching(/^U\+200D at offset \d+$/) },
    ]);
  });

  it('reports Unicode tag characters with the first offset and the count', () => {
    const description = `Reads a file.${TAG_HELLO}`;
    expect(inspectTool(tool({ description }), options)).toEqual([
      { path: 'description', problem: 'invisible-character', detail: 'U+E0068 at offset 13 (5 in all)' },
    ]);
  });

  it('reports bidirectional controls separately from invisible characters', () => {
    const findings = inspectTool(tool({ name: 'read\u202Eelif\u202C', title: 'Read\u200Bfile\u2066x\u2069' }), options);
    expect(findings).toEqual([
      { path: 'name', problem: 'bidi-control', detail: 'U+202E at offset 4 (2 in all)' },
      { path: 'title', problem: 'invisible-character', detail: 'U+200B at offset 4' },
      { path: 'title', problem: 'bidi-control', detail: 'U+2066 at offset 9 (2 in all)' },
    ]);
  });

  it('classifies each listed character', () => {
    const cases: Array<[string, 'invisible-character' | 'bidi-control']> = [
      ['\u200B', 'invisible-character'],
      ['\u200C', 'invisible-character'],
      ['\u200D', 'invisible-character'],
      ['\u200E', 'bidi-control'],
      ['\u200F', 'bidi-control'],
      ['\u2060', 'invisible-character'],
      ['\u2064', 'invisible-character'],
      ['\uFEFF', 'invisible-character'],
      ['\u202A', 'bidi-control'],
      ['\u202D', 'bidi-control'],
      ['\u2067', 'bidi-control'],
      ['\u061C', 'bidi-control'],
      ['\u00AD', 'invisible-character'],
      ['\u180E', 'invisible-character'],
      ['\u034F', 'invisible-character'],
      ['\u3164', 'invisible-character'],
      ['\uFE00', 'invisible-character'],
      ['\uFFF9', 'invisible-character'],
      ['\u001B', 'invisible-character'],
      ['\u0085', 'invisible-character'],
      ['\u{E0001}', 'invisible-character'],
      ['\u{E007F}', 'invisible-character'],
      ['\u{E0100}', 'invisible-character'],
      ['\u{1D173}', 'invisible-character'],
    ];
    for (const [char, problem] of cases) {
      const hex = char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      expect(inspectTool(tool({ description: `a${char}b` }), options), `U+${hex}`).toEqual([
        { path: 'description', problem, detail: `U+${hex} at offset 1` },
      ]);
    }
    for (const harmless of ['\uFE0F', '\uFE0E', '\u0600', '\u00A0', '\u2028', 'é', '\u{1F600}']) {
      expect(inspectTool(tool({ description: `a${harmless}b` }), options)).toEqual([]);
    }
  });

  it('reports lone surrogates', () => {
    const description = JSON.parse('"bad \\ud800 text"') as string;
    expect(inspectTool(tool({ description }), options)).toEqual([
      { path: 'description', problem: 'invisible-character', detail: 'lone surrogate U+D800 at offset 4' },
    ]);
  });

  it('walks schemas to every description, enum value, title, default and property name', () => {
    const findings = inspectTool(
      tool({
        inputSchema: {
          type: 'object',
          title: 'Args\u200B',
          properties: {
            path: { type: 'string', description: `Path${TAG_HELLO}` },
            mode: { type: 'string', enum: ['text', 'bin\u2062ary'], default: 'te\u00ADxt' },
            'pa\u200Bth': { type: 'string' },
          },
          $defs: { item: { anyOf: [{ description: 'x\u202Ey' }] } },
        },
        outputSchema: { type: 'object', properties: { out: { description: '\uFEFFok' } } },
        annotations: { title: 'Read\u2060' },
      }),
      options,
    );
    expect(findings).toEqual([
      { path: 'annotations.title', problem: 'invisible-character', detail: 'U+2060 at offset 4' },
      { path: 'inputSchema.title', problem: 'invisible-character', detail: 'U+200B at offset 4' },
      { path: 'inputSchema.properties["pa\\u{200B}th"]', problem: 'invisible-character', detail: 'U+200B at offset 2 in the key' },
      { path: 'inputSchema.properties.path.description', problem: 'invisible-character', detail: 'U+E0068 at offset 4 (5 in all)' },
      { path: 'inputSchema.properties.mode.enum[1]', problem: 'invisible-character', detail: 'U+2062 at offset 3' },
      { path: 'inputSchema.properties.mode.default', problem: 'invisible-character', detail: 'U+00AD at offset 2' },
      { path: 'inputSchema.$defs.item.anyOf[0].description', problem: 'bidi-control', detail: 'U+202E at offset 1' },
      { path: 'outputSchema.properties.out.description', problem: 'invisible-character', detail: 'U+FEFF at offset 0' },
    ]);
  });

  it('caps the description length in code points', () => {
    const small = { ...options, maxDescriptionChars: 10 };
    expect(inspectTool(tool({ description: '0123456789' }), small)).toEqual([]);
    // Ten emoji are twenty UTF-16 units but ten characters.
    expect(inspectTool(tool({ description: '😀'.repeat(10) }), small)).toEqual([]);
    expect(inspectTool(tool({ description: '01234567890' }), small)).toEqual([
      { path: 'description', problem: 'too-long', detail: '11 characters, limit 10' },
    ]);
  });

  it('caps the whole definition size in bytes', () => {
    const t = tool();
    const bytes = Buffer.byteLength(JSON.stringify(t));
    expect(inspectTool(t, { ...options, maxDefinitionBytes: bytes })).toEqual([]);
    expect(inspectTool(t, { ...options, maxDefinitionBytes: bytes - 1 })).toEqual([
      { path: '(definition)', problem: 'too-large', detail: `${bytes} bytes, limit ${bytes - 1}` },
    ]);
  });

  it('survives nesting too deep to serialize (or too large), and reports it', () => {
    let schema: Record<string, unknown> = { type: 'string', description: 'deep\u200B' };
    for (let i = 0; i < 200_000; i++) schema = { anyOf: [schema] };
    const findings = inspectTool(tool({ inputSchema: schema }), options);
    // V8 14 (Node 26) serializes any depth; older runtimes overflow their stack.
    let serializable = true;
    try {
      JSON.stringify(schema);
    } catch {
      serializable = false;
    }
    expect(findings[0]).toEqual({
      path: '(definition)',
      problem: 'too-large',
      detail: serializable ? expect.stringMatching(/^\d+ bytes, limit 65536$/) : 'cannot be serialized (nesting too deep)',
    });
    expect(findings[1]?.problem).toBe('invisible-character');
    expect(findings[1]?.path).toMatch(/^inputSchema\.anyOf\[0\].*….*\.anyOf\[0\]\.description$/);
    expect(findings[1]?.path.length).toBeLessThan(500);
  });

  it(`stops at ${MAX_FINDINGS} findings`, () => {
    const properties = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`p${i}`, { description: `x\u200By` }]));
    const findings = inspectTool(tool({ inputSchema: { type: 'object', properties } }), options);
    expect(findings).toHaveLength(MAX_FINDINGS);
    expect(findings[0]?.path).toBe('inputSchema.properties.p0.description');
  });

  it('inspects nothing in mode off', () => {
    expect(inspectTool(tool({ description: `x${TAG_HELLO}`.repeat(10_000) }), { ...options, mode: 'off' })).toEqual([]);
  });

  it('reports the same findings in flag and reject mode (the caller acts on them)', () => {
    const t = tool({ description: 'a\u202Eb' });
    expect(inspectTool(t, { ...options, mode: 'reject' })).toEqual(inspectTool(t, { ...options, mode: 'flag' }));
  });
});
