/**
 * Tool description hygiene: text a model reads but a person reviewing the tool does
 * not see (Unicode tag characters, zero-width and other format characters, controls)
 * or sees reordered (bidirectional overrides), and definitions too big to review.
 * Inspection only: the caller decides what 'flag' and 'reject' do with the findings.
 */

export interface HygieneOptions {
  /** off: inspect nothing; flag: report; reject: report, and the caller drops the tool. */
  mode: 'off' | 'flag' | 'reject';
  /** Cap on the top-level description, in code points. Default 4096. */
  maxDescriptionChars: number;
  /** Cap on the whole tool definition as JSON, in UTF-8 bytes. Default 65536. */
  maxDefinitionBytes: number;
}

export interface HygieneFinding {
  /** Where: 'description', 'inputSchema.properties.path.description', '(definition)' for the whole tool. */
  readonly path: string;
  readonly problem: 'invisible-character' | 'bidi-control' | 'too-long' | 'too-large';
  /** e.g. 'U+E0041 at offset 12' (offsets count UTF-16 code units, as JavaScript strings do). */
  readonly detail: string;
}

export const DEFAULT_HYGIENE_OPTIONS: Readonly<HygieneOptions> = {
  mode: 'flag',
  maxDescriptionChars: 4096,
  maxDefinitionBytes: 65_536,
};

/** Reporting stops here: a tool this dirty is rejected or flagged either way. */
export const MAX_FINDINGS = 100;

/** The fields a model or a person reads; schemas and annotations are walked to every string and key. */
const INSPECTED_FIELDS = ['name', 'title', 'description', 'annotations', 'inputSchema', 'outputSchema'] as const;

/** Bidirectional controls: embeddings, overrides, isolates and the implicit marks. */
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/v;

/**
 * Every character reported. Format characters (Cf) except the few that render as
 * visible signs (Arabic number signs and the like), plus invisible characters of other
 * categories that are used to hide text: C0/C1 controls other than tab, LF and CR
 * (terminal escapes), combining grapheme joiner, Hangul and Khmer fillers, Mongolian
 * variation selectors, variation selectors except the emoji/text presentation ones
 * (U+FE0E, U+FE0F; the rest can smuggle bytes), interlinear annotation marks, and
 * lone surrogates (malformed text).
 */
const SUSPICIOUS = new RegExp(
  '[' +
    '[\\p{Cf}--[\\u0600-\\u0605\\u06DD\\u070F\\u0890\\u0891\\u08E2\\u{110BD}\\u{110CD}]]' +
    '\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F' +
    '\\u034F\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u2065\\u3164\\uFE00-\\uFE0D\\uFFA0' +
    '\\u{E0100}-\\u{E01EF}\\uD800-\\uDFFF' +
    ']',
  'gv',
);

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;
const MAX_KEY_IN_PATH = 64;
const MAX_PATH_CHARS = 400;

/**
 * Findings for one tool definition, at most MAX_FINDINGS; none in mode 'off'. Each
 * string yields at most one finding per problem: its first offending character and
 * how many it has in all.
 */
export function inspectTool(tool: Record<string, unknown>, options: HygieneOptions): HygieneFinding[] {
  const findings: HygieneFinding[] = [];
  if (options.mode === 'off') return findings;

  const size = definitionBytes(tool);
  if (size === undefined) {
    findings.push({ path: '(definition)', problem: 'too-large', detail: 'cannot be serialized (nesting too deep)' });
  } else if (size > options.maxDefinitionBytes) {
    findings.push({ path: '(definition)', problem: 'too-large', detail: `${size} bytes, limit ${options.maxDefinitionBytes}` });
  }
  const description = tool.description;
  if (typeof description === 'string' && description.length > options.maxDescriptionChars) {
    const chars = codePoints(description);
    if (chars > options.maxDescriptionChars) {
      findings.push({ path: 'description', problem: 'too-long', detail: `${chars} characters, limit ${options.maxDescriptionChars}` });
    }
  }

  // Iterative, so a pathologically deep schema cannot overflow the stack.
  const stack: Array<{ value: unknown; path: string }> = [];
  for (let i = INSPECTED_FIELDS.length - 1; i >= 0; i--) {
    const field = INSPECTED_FIELDS[i]!;
    if (Object.hasOwn(tool, field)) stack.push({ value: tool[field], path: field });
  }
  while (stack.length > 0 && findings.length < MAX_FINDINGS) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      inspectString(value, path, '', findings);
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
    } else if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      const children: Array<{ value: unknown; path: string }> = [];
      for (const key of keys) {
        const childPath = path + keySegment(key);
        // A property name is read like any other text (schemas put instructions in them too).
        inspectString(key, childPath, ' in the key', findings);
        children.push({ value: (value as Record<string, unknown>)[key], path: childPath });
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    }
  }
  return findings.length > MAX_FINDINGS ? findings.slice(0, MAX_FINDINGS) : findings;
}

function inspectString(text: string, path: string, where: string, findings: HygieneFinding[]): void {
  SUSPICIOUS.lastIndex = 0;
  if (!SUSPICIOUS.test(text)) return;
  SUSPICIOUS.lastIndex = 0;
  let bidi: { first: string; count: number } | undefined;
  let invisible: { first: string; count: number } | undefined;
  for (const match of text.matchAll(SUSPICIOUS)) {
    const char = match[0];
    const isBidi = BIDI.test(char);
    const current = isBidi ? bidi : invisible;
    if (current) {
      current.count++;
      continue;
    }
    const entry = { first: `${codePointLabel(char)} at offset ${match.index}${where}`, count: 1 };
    if (isBidi) bidi = entry;
    else invisible = entry;
  }
  // Order of first appearance is not worth the bookkeeping: invisible first, then bidi.
  for (const [problem, entry] of [['invisible-character', invisible], ['bidi-control', bidi]] as const) {
    if (!entry) continue;
    const detail = entry.count > 1 ? `${entry.first} (${entry.count} in all)` : entry.first;
    findings.push({ path: shortPath(path), problem, detail });
  }
}

/** A path through absurd nesting is kept readable: its start and its end. */
function shortPath(path: string): string {
  return path.length > MAX_PATH_CHARS ? `${path.slice(0, MAX_PATH_CHARS / 2)}…${path.slice(-MAX_PATH_CHARS / 2)}` : path;
}

function codePointLabel(char: string): string {
  const code = char.codePointAt(0)!;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return code >= 0xd800 && code <= 0xdfff ? `lone surrogate ${hex}` : hex;
}

/** `.key` for plain keys, `["..."]` for the rest, with suspicious characters spelled out so the path itself hides nothing. */
function keySegment(key: string): string {
  if (IDENTIFIER.test(key)) return `.${key}`;
  const short = key.length > MAX_KEY_IN_PATH ? `${key.slice(0, MAX_KEY_IN_PATH)}…` : key;
  const escaped = short
    .replace(/["\\]/g, (c) => `\\${c}`)
    .replace(SUSPICIOUS, (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`);
  return `["${escaped}"]`;
}

function definitionBytes(tool: Record<string, unknown>): number | undefined {
  try {
    return Buffer.byteLength(JSON.stringify(tool), 'utf8');
  } catch {
    return undefined;
  }
}

function codePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}
