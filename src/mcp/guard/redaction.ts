/**
 * Regex redaction of secrets and personal data in tools/call results: every match in
 * the text of text content, in resource text and in every string value of
 * structuredContent becomes `[REDACTED:<name>]`. Copy-on-write: a result nothing
 * matched in comes back as the same object.
 *
 * The built-in patterns are written to run in linear time on hostile input (no
 * ambiguous repetition; a match can start only where a token can), since results are
 * upstream text.
 */

export interface RedactionPattern {
  name: string;
  /** JavaScript syntax, compiled with the u flag; inline modifiers such as (?i:...) work. */
  regex: string;
}

interface Compiled {
  readonly regex: RegExp;
  readonly marker: string;
  /** Extra check on a match (the Luhn checksum for card numbers). */
  readonly accept?: (match: string) => boolean;
}

interface Builtin {
  readonly regex: RegExp;
  readonly accept?: (match: string) => boolean;
}

/** In order of precedence where matches overlap: longest tokens first, so a short pattern cannot split a long one. */
export const BUILTIN_PATTERNS: Readonly<Record<string, Builtin>> = {
  // PEM and PGP private keys. The body runs to the END line, or, if that is missing
  // (a truncated key), to the next "-----" or the end of the text.
  'private-key': {
    regex:
      /-----BEGIN[A-Z0-9 ]{0,64} PRIVATE KEY(?: BLOCK)?-----[^-]*(?:-(?!----)[^-]*)*(?:-----END[A-Z0-9 ]{0,64} PRIVATE KEY(?: BLOCK)?-----)?/g,
  },
  // A JWS: base64url JSON header and payload, and a signature (empty when unsigned).
  jwt: { regex: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g },
  'github-token': { regex: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/g },
  'slack-token': { regex: /(?<![A-Za-z0-9-])xox[abeprs]-[A-Za-z0-9-]{10,}/g },
  // Long-term (AKIA) and temporary (ASIA) access key ids.
  'aws-access-key-id': { regex: /(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])/g },
  // 13 to 19 digits, optionally grouped by single spaces or dashes, that pass the Luhn check.
  'credit-card': { regex: /(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/g, accept: luhnValid },
  email: {
    regex: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])/g,
  },
};

/** Secrets on by default; personal data (email, credit-card) is opt-in. */
export const DEFAULT_BUILTINS: readonly string[] = ['private-key', 'jwt', 'github-token', 'slack-token', 'aws-access-key-id'];

const PATTERN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export class Redactor {
  private readonly patterns: readonly Compiled[];
  /** Matches counted by the walk in progress (redact is synchronous). */
  private count = 0;

  /** Compiles everything once; throws, naming the pattern, on an unknown builtin or a bad regex. */
  constructor(builtins: readonly string[], custom: readonly RedactionPattern[]) {
    const names = new Set<string>();
    for (const name of builtins) {
      if (!Object.hasOwn(BUILTIN_PATTERNS, name)) throw new Error(`unknown built-in redaction pattern "${name}"`);
    }
    const patterns: Compiled[] = [];
    for (const [name, builtin] of Object.entries(BUILTIN_PATTERNS)) {
      if (!builtins.includes(name)) continue;
      names.add(name);
      patterns.push({ regex: builtin.regex, marker: `[REDACTED:${name}]`, ...(builtin.accept && { accept: builtin.accept }) });
    }
    for (const { name, regex } of custom) {
      if (!PATTERN_NAME.test(name)) throw new Error(`redaction pattern name ${JSON.stringify(name)} must be 1-64 of A-Z a-z 0-9 _ . -`);
      if (names.has(name)) throw new Error(`redaction pattern "${name}" is defined twice`);
      names.add(name);
      let compiled: RegExp;
      try {
        compiled = new RegExp(regex, 'gu');
      } catch (error) {
        throw new Error(`redaction pattern "${name}": invalid regex: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (compiled.test('')) throw new Error(`redaction pattern "${name}": matches the empty string`);
      patterns.push({ regex: compiled, marker: `[REDACTED:${name}]` });
    }
    this.patterns = patterns;
  }

  get enabled(): boolean {
    return this.patterns.length > 0;
  }

  /** The result with matches replaced (the same object when there were none), and how many. */
  redact(result: Record<string, unknown>): { result: Record<string, unknown>; redactions: number } {
    this.count = 0;
    if (this.patterns.length === 0) return { result, redactions: 0 };
    let out = result;
    const content = result.content;
    if (Array.isArray(content)) {
      const redacted = this.content(content);
      if (redacted !== content) out = withField(out, result, 'content', redacted);
    }
    if (Object.hasOwn(result, 'structuredContent')) {
      const structured = result.structuredContent;
      const redacted = this.deep(structured);
      if (redacted !== structured) out = withField(out, result, 'structuredContent', redacted);
    }
    return { result: out, redactions: this.count };
  }

  /**
   * A string with every pattern applied; the same string when nothing matched. All
   * patterns look at the original text (none sees another's marker); where matches
   * overlap, the earlier pattern wins.
   */
  text(text: string): string {
    let spans: Span[] | undefined;
    for (const pattern of this.patterns) {
      const { regex, accept, marker } = pattern;
      regex.lastIndex = 0;
      if (!regex.test(text)) continue;
      regex.lastIndex = 0;
      const found: Span[] = [];
      for (const match of text.matchAll(regex)) {
        const matched = match[0];
        if (matched === '' || (accept && !accept(matched))) continue;
        found.push({ start: match.index, end: match.index + matched.length, marker });
      }
      if (found.length > 0) spans = spans ? merge(spans, found) : found;
    }
    if (!spans) return text;
    this.count += spans.length;
    let out = '';
    let at = 0;
    for (const span of spans) {
      out += text.slice(at, span.start) + span.marker;
      at = span.end;
    }
    return out + text.slice(at);
  }

  private content(items: unknown[]): unknown[] {
    let copy: unknown[] | undefined;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item === null || typeof item !== 'object') continue;
      const block = item as Record<string, unknown>;
      let next = block;
      if (block.type === 'text' && typeof block.text === 'string') {
        const text = this.text(block.text);
        if (text !== block.text) next = withField(next, block, 'text', text);
      } else if (block.type === 'resource' && block.resource !== null && typeof block.resource === 'object') {
        const resource = block.resource as Record<string, unknown>;
        if (typeof resource.text === 'string') {
          const text = this.text(resource.text);
          if (text !== resource.text) next = withField(next, block, 'resource', withField(resource, resource, 'text', text));
        }
      }
      if (next !== block) (copy ??= items.slice())[i] = next;
    }
    return copy ?? items;
  }

  /** Every string value, at any depth; keys are left alone (redacting them could merge two). */
  deep(value: unknown): unknown {
    if (typeof value === 'string') return this.text(value);
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const redacted = this.deep(item);
        if (redacted !== item) (copy ??= value.slice())[i] = redacted;
      }
      return copy ?? value;
    }
    const object = value as Record<string, unknown>;
    let out = object;
    for (const key of Object.keys(object)) {
      const item = object[key];
      const redacted = this.deep(item);
      if (redacted !== item) out = withField(out, object, key, redacted);
    }
    return out;
  }
}

interface Span {
  readonly start: number;
  readonly end: number;
  readonly marker: string;
}

/**
 * `accepted` plus the candidates that overlap none of it, in text order. Both lists
 * are sorted and free of overlaps (a global regex's matches never overlap), so one
 * pass over each does it.
 */
function merge(accepted: readonly Span[], candidates: readonly Span[]): Span[] {
  const merged: Span[] = [];
  let i = 0;
  for (const candidate of candidates) {
    while (i < accepted.length && accepted[i]!.end <= candidate.start) merged.push(accepted[i++]!);
    if (i < accepted.length && accepted[i]!.start < candidate.end) continue;
    merged.push(candidate);
  }
  while (i < accepted.length) merged.push(accepted[i++]!);
  return merged;
}

/** `current` with one field set, copying `original` first if `current` is still it. */
function withField(current: Record<string, unknown>, original: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const target = current === original ? { ...original } : current;
  // defineProperty, not assignment: a "__proto__" key from JSON.parse is an own property.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return target;
}

function luhnValid(candidate: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = candidate.length - 1; i >= 0; i--) {
    const c = candidate.charCodeAt(i);
    if (c < 0x30 || c > 0x39) continue;
    let digit = c - 0x30;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}
