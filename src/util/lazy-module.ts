import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/**
 * A dependency loaded on first use. CEL, JSON Schema, JOSE and Redis clients cost tens of
 * MiB of memory once loaded; a gateway whose config needs none of them never loads them.
 * (Node 22.12+ loads ES modules synchronously through require.)
 */
export function lazyModule<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(specifier) as T);
}
