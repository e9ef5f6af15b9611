/**
 * The UTF-8 length of JSON.stringify(value), counted without building the text, and
 * stopping as soon as it passes a limit: checking a result against a size cap costs
 * at most the cap, however large the result.
 */

/** Characters that JSON.stringify escapes: controls, quote, backslash, lone surrogates (and paired ones, checked below). */
const NEEDS_CARE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * How much longer a parsed JSON text can come out of JSON.stringify, in UTF-8 bytes per
 * character of the text: a number grows the most (`1e20`, 4 characters, is written as 21
 * digits), a lone surrogate becomes a 6-byte escape, everything else shrinks or stays.
 * A value parsed from a text of n characters has at most n × this many bytes of JSON.
 */
export const MAX_JSON_GROWTH = 6;

/**
 * Exact for JSON values (what JSON.parse returns); values JSON drops or turns into
 * null (undefined, functions, symbols) are counted as JSON.stringify treats them.
 * Past `limit` the count stops somewhere above it. Recursive: throws RangeError on
 * nesting deeper than the stack, as JSON.stringify does.
 */
export function jsonByteLength(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  const counter = { total: 0, limit };
  measure(value, counter);
  return counter.total;
}

interface Counter {
  total: number;
  readonly limit: number;
}

function measure(value: unknown, counter: Counter): void {
  switch (typeof value) {
    case 'string':
      counter.total += stringBytes(value);
      return;
    case 'number':
      counter.total += Number.isFinite(value) ? String(value).length : 4;
      return;
    case 'boolean':
      counter.total += value ? 4 : 5;
      return;
    case 'object':
      break;
    default:
      // undefined, functions and symbols have no JSON text at the top level; bigint makes JSON.stringify throw.
      return;
  }
  if (value === null) {
    counter.total += 4;
    return;
  }
  if (Array.isArray(value)) {
    counter.total += 2;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (i > 0) counter.total += 1;
      if (dropped(item)) counter.total += 4;
      else measure(item, counter);
      if (counter.total > counter.limit) return;
    }
    return;
  }
  counter.total += 2;
  let first = true;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (dropped(item)) continue;
    counter.total += (first ? 0 : 1) + stringBytes(key) + 1;
    first = false;
    measure(item, counter);
    if (counter.total > counter.limit) return;
  }
}

function dropped(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

function stringBytes(text: string): number {
  if (!NEEDS_CARE.test(text)) return Buffer.byteLength(text, 'utf8') + 2;
  let bytes = 2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20) bytes += c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c === 0x22 || c === 0x5c) bytes += 2;
    else if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 6; // lone high surrogate: \udXXX
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) bytes += 6; // lone low surrogate
    else bytes += 3;
  }
  return bytes;
}
