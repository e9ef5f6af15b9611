/**
 * RFC 8785 (JCS) canonical JSON and its sha256, for fingerprints that must not
 * depend on key order or number spelling: tool definition pins, schema cache keys,
 * audit digests of a call's arguments, external authorization cache keys.
 */
import { hash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * The JCS text of a JSON value. JCS (like I-JSON) has no room for lone surrogates,
 * which JSON.parse happily produces from "\ud800"; they are replaced by U+FFFD here
 * rather than failing, so a definition carrying one can still be pinned (hygiene
 * reports it separately). Throws on values JSON cannot hold (cycles, NaN, BigInt) and
 * on nesting too deep for the stack.
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(wellFormed(value));
  if (text === undefined) throw new TypeError('canonicalJson: value has no JSON form');
  return text;
}

/** One-shot hashing: a Hash object per call costs twice as much, and audits hash every tool call's arguments. */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** The hex sha256 of a value's JCS text: equal values, whatever their key order, give equal digests. */
export function canonicalDigest(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The value with every string made well-formed; the same reference when nothing needed it. */
function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return value.isWellFormed() ? value : value.toWellFormed();
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const fixed = wellFormed(item);
      if (fixed !== item) (copy ??= value.slice())[i] = fixed;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    const fixed = wellFormed(item);
    const fixedKey = key.isWellFormed() ? key : key.toWellFormed();
    if (fixed === item && fixedKey === key) continue;
    copy ??= { ...(value as Record<string, unknown>) };
    if (fixedKey !== key) delete copy[key];
    // defineProperty, not assignment: a "__proto__" key from JSON.parse is an own property.
    Object.defineProperty(copy, fixedKey, { value: fixed, enumerable: true, writable: true, configurable: true });
  }
  return copy ?? value;
}
