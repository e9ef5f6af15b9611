import { hash, timingSafeEqual } from 'node:crypto';

export interface ApiKeyEntry {
  readonly name: string;
  /** sha256 of the key; the key itself is never kept. */
  readonly sha256: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
}

export function hashApiKey(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}

/**
 * Finds the entry for a presented key. Hashing first makes every comparison the same
 * length, and every entry is compared (no early exit), so timing says nothing about
 * which key, or how much of one, matched.
 */
export function matchApiKey(presented: string, entries: readonly ApiKeyEntry[]): ApiKeyEntry | undefined {
  const digest = hashApiKey(presented);
  let found: ApiKeyEntry | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(digest, entry.sha256) && !found) found = entry;
  }
  return found;
}
