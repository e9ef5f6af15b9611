import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { compileConfig } from './compile.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { configSchema } from './schema.ts';
import { expandReferences } from './secrets.ts';
import type { GatewayIR } from '../ir/types.ts';

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

/** Reads, validates and compiles a YAML or JSON config file; throws ConfigError listing every issue. */
export function loadConfigFile(file: string, options: LoadOptions = {}): GatewayIR {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [{ path: [], message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return loadConfigText(text, path, options);
}

export function loadConfigText(text: string, file: string, options: LoadOptions = {}): GatewayIR {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { path: [], message, ...(pos ? { line: pos.line, column: pos.col } : {}) };
      }),
    );
  }
  const issues: ConfigIssue[] = [];
  const expanded = expandReferences(doc.toJS(), options.env ?? process.env, dirname(file), issues);
  const ir = issues.length === 0 ? validate(expanded ?? {}, file, issues) : undefined;
  if (ir) return ir;
  throw new ConfigError(file, issues.map((i) => locate(i, doc, lineCounter)));
}

/** Validates and compiles a config built in code (the embedded default, tests). */
export function loadConfigObject(value: unknown, source: string): GatewayIR {
  const issues: ConfigIssue[] = [];
  const ir = validate(value, source, issues);
  if (ir) return ir;
  throw new ConfigError(source, issues);
}

function validate(value: unknown, file: string, issues: ConfigIssue[]): GatewayIR | undefined {
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
      if (unknownKeys.length > 0) {
        for (const key of unknownKeys) issues.push({ path: [...issue.path, key] as Array<string | number>, message: `unknown field "${key}"`, atKey: true });
      } else {
        issues.push({ path: issue.path as Array<string | number>, message: issue.message });
      }
    }
    return undefined;
  }
  const result = compileConfig(parsed.data, file);
  if (result.ok) return result.ir;
  issues.push(...result.issues);
  return undefined;
}

/** Adds the line and column of the deepest YAML node that exists along the issue's path. */
function locate(issue: ConfigIssue, doc: Document, lineCounter: LineCounter): ConfigIssue {
  if (issue.line !== undefined) return issue;
  for (let depth = issue.path.length; depth >= 0; depth--) {
    const node = nodeAt(doc, issue.path.slice(0, depth), issue.atKey === true && depth === issue.path.length);
    if (node?.range) {
      const pos = lineCounter.linePos(node.range[0]);
      return { ...issue, line: pos.line, column: pos.col };
    }
  }
  return issue;
}

function nodeAt(doc: Document, path: ReadonlyArray<string | number>, key: boolean): { range?: [number, number, number] | null } | undefined {
  if (path.length === 0) return doc.contents ?? undefined;
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const last = path[path.length - 1]!;
  if (isMap(parent)) {
    const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last);
    type Ranged = { range?: [number, number, number] } | null | undefined;
    return ((key ? pair?.key : pair?.value) as Ranged) ?? (pair?.key as Ranged) ?? undefined;
  }
  if (isSeq(parent) && typeof last === 'number') return (parent.items[last] as { range?: [number, number, number] } | undefined) ?? undefined;
  return undefined;
}
