import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConfigIssue } from './errors.ts';

const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;

/**
 * Replaces `${NAME}` with the environment variable and `${file:PATH}` with the file's
 * content (trailing newline removed) in every string of the document; `$${` escapes a
 * literal `${`. Missing variables and unreadable files become issues at their path, so
 * a secret never silently turns into an empty string.
 */
export function expandReferences(
  value: unknown,
  env: NodeJS.ProcessEnv,
  baseDir: string,
  issues: ConfigIssue[],
  path: Array<string | number> = [],
): unknown {
  if (typeof value === 'string') return expandString(value, env, baseDir, issues, path);
  if (Array.isArray(value)) return value.map((v, i) => expandReferences(v, env, baseDir, issues, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandReferences(v, env, baseDir, issues, [...path, k]);
    return out;
  }
  return value;
}

function expandString(text: string, env: NodeJS.ProcessEnv, baseDir: string, issues: ConfigIssue[], path: Array<string | number>): string {
  if (!text.includes('${')) return text;
  return text.replace(REFERENCE, (whole, ref: string | undefined) => {
    if (ref === undefined) return '${';
    if (ref.startsWith('file:')) {
      const file = resolve(baseDir, ref.slice(5));
      try {
        return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        issues.push({ path, message: `cannot read secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
        return whole;
      }
    }
    const [name, fallback] = splitDefault(ref);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      issues.push({ path, message: `"\${${ref}}" is not a valid reference: expected \${NAME}, \${NAME:-default} or \${file:PATH}` });
      return whole;
    }
    const found = env[name];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    issues.push({ path, message: `environment variable ${name} is not set` });
    return whole;
  });
}

function splitDefault(ref: string): [string, string | undefined] {
  const at = ref.indexOf(':-');
  return at === -1 ? [ref, undefined] : [ref.slice(0, at), ref.slice(at + 2)];
}
