/**
 * tools/call argument validation against the tool's inputSchema, before the call
 * reaches the upstream. Each schema is compiled once per (backend, tool, schema hash)
 * and kept in a bounded LRU; a schema that cannot be compiled is reported, not thrown,
 * so the caller chooses between forwarding unchecked and refusing.
 *
 * Dialects: $schema draft-07 (what the TypeScript SDK emits; draft-06 is checked as
 * draft-07, which only adds keywords), 2019-09 and 2020-12. A schema without $schema
 * is 2020-12, as MCP specifies, falling back to draft-07 when it is not valid 2020-12
 * (older servers write tuple `items` and the like). draft-04 and unknown dialects are
 * 'unchecked'. `format` is an annotation only, as 2020-12 makes it by default.
 *
 * Each compiled schema gets its own Ajv instance: schemas never see each other's $id
 * (one backend cannot redefine what another's $ref means), and evicting a schema frees
 * everything Ajv made for it (a shared instance keeps every compiled function forever).
 * That costs about what a compile costs, and 3 KB or so per cached validator.
 *
 * Caveat: `pattern` keywords run on Node's backtracking RegExp, so an upstream's
 * schema can carry a pattern that is slow on crafted arguments.
 */
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import type * as Ajv2019Module from 'ajv/dist/2019.js';
import type * as Ajv2020Module from 'ajv/dist/2020.js';
import { lazyModule } from '../../util/lazy-module.ts';
import { canonicalJson, sha256Hex } from '../../util/canonical-json.ts';

export type ArgumentVerdict = { ok: true } | { ok: false; message: string } | { ok: 'unchecked'; reason: string };

export interface ArgumentValidatorOptions {
  /** Compiled schemas kept. Default 5_000. */
  maxCached?: number;
  /** Schemas larger than this (canonical JSON, UTF-8 bytes) are not compiled. Default 262_144. */
  maxSchemaBytes?: number;
}

export const DEFAULT_MAX_CACHED = 5_000;
export const DEFAULT_MAX_SCHEMA_BYTES = 262_144;

type Dialect = 'draft-07' | '2019-09' | '2020-12';

const OK: { ok: true } = Object.freeze({ ok: true as const });
const MAX_ERRORS_SHOWN = 3;
const MAX_MESSAGE_CHARS = 500;

/** Options for the per-schema instances: no meta-schemas (validated separately), nothing that changes the arguments. */
const COMPILE_OPTIONS: Options = {
  strict: false,
  meta: false,
  validateSchema: false,
  validateFormats: false,
  allErrors: false,
  // Arguments are untrusted: `required` and `properties` must not see inherited properties.
  ownProperties: true,
  logger: false,
};
const META_OPTIONS: Options = { strict: false, validateFormats: false, allErrors: false, logger: false };

interface Entry {
  readonly key: string;
  readonly backend: string;
  readonly tool: string;
  validate: ValidateFunction | undefined;
  readonly unchecked: { ok: 'unchecked'; reason: string } | undefined;
  /** False once evicted: the memo on the schema object must not revive it. */
  live: boolean;
  /** Used since eviction last passed it: it gets a second chance. */
  used: boolean;
}

/** What is known about one inputSchema object, so a schema seen again costs no hashing. */
interface SchemaMemo {
  readonly hash: string;
  readonly bytes: number;
  last: Entry | undefined;
}

export class ArgumentValidator {
  private readonly maxCached: number;
  private readonly maxSchemaBytes: number;
  /**
   * Evicted in insertion order, with a second chance for entries used since eviction last
   * passed them (the clock approximation of LRU): a hit only sets a flag. Re-inserting on
   * every hit made the Map rehash every few calls, on every validated tools/call.
   */
  private readonly cache = new Map<string, Entry>();
  /**
   * Keyed by the inputSchema object. Tool definitions are treated as immutable: a
   * schema object changed in place after its first validation keeps its old hash.
   */
  private readonly memos = new WeakMap<object, SchemaMemo>();
  private compiled = 0;

  constructor(options: ArgumentValidatorOptions = {}) {
    this.maxCached = options.maxCached ?? DEFAULT_MAX_CACHED;
    this.maxSchemaBytes = options.maxSchemaBytes ?? DEFAULT_MAX_SCHEMA_BYTES;
    if (!(this.maxCached >= 1)) throw new RangeError(`maxCached must be >= 1, got ${this.maxCached}`);
  }

  /** Schemas compiled so far (cache misses), for metrics. */
  get compilations(): number {
    return this.compiled;
  }

  /** Compiled schemas held. */
  get size(): number {
    return this.cache.size;
  }

  /**
   * Checks tools/call arguments against tool.inputSchema. Absent arguments are
   * checked as {} (an empty argument map).
   */
  validate(backend: string, tool: Record<string, unknown>, args: unknown): ArgumentVerdict {
    const schema = tool.inputSchema;
    if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
      return { ok: 'unchecked', reason: 'tool has no inputSchema object' };
    }
    const name = typeof tool.name === 'string' ? tool.name : '';
    const entry = this.entry(backend, name, schema);
    if (entry.unchecked) return entry.unchecked;
    return run(entry.validate!, args === undefined ? {} : args);
  }

  private entry(backend: string, tool: string, schema: object): Entry {
    let memo = this.memos.get(schema);
    const last = memo?.last;
    if (last && last.live && last.backend === backend && last.tool === tool) {
      last.used = true;
      return last;
    }
    if (!memo) {
      memo = fingerprint(schema);
      this.memos.set(schema, memo);
    }
    const key = `${backend}\u0000${tool}\u0000${memo.hash}`;
    let entry = this.cache.get(key);
    if (entry) {
      entry.used = true;
    } else {
      entry = this.compile(key, backend, tool, schema as Record<string, unknown>, memo.bytes);
      this.cache.set(key, entry);
      this.evict(entry);
    }
    memo.last = entry;
    return entry;
  }

  private compile(key: string, backend: string, tool: string, schema: Record<string, unknown>, bytes: number): Entry {
    this.compiled++;
    const make = (validate: ValidateFunction | undefined, reason?: string): Entry => ({
      key,
      backend,
      tool,
      validate,
      unchecked: reason === undefined ? undefined : Object.freeze({ ok: 'unchecked' as const, reason }),
      live: true,
      used: false,
    });
    if (bytes < 0) return make(undefined, 'schema not compilable: it has no JSON form');
    if (bytes > this.maxSchemaBytes) return make(undefined, `schema not compilable: ${bytes} bytes, limit ${this.maxSchemaBytes}`);
    const dialect = dialectOf(schema.$schema);
    if (typeof dialect === 'object') return make(undefined, dialect.unsupported);
    const body = withoutDialect(schema);
    let outcome = compileAs(dialect ?? '2020-12', body);
    if (dialect === undefined && typeof outcome === 'string') {
      const legacy = compileAs('draft-07', body);
      if (typeof legacy !== 'string') outcome = legacy;
    }
    return typeof outcome === 'string' ? make(undefined, outcome) : make(outcome);
  }

  /** Makes room after `fresh` was added, never evicting `fresh` itself. */
  private evict(fresh: Entry): void {
    while (this.cache.size > this.maxCached) {
      const oldest = this.cache.values().next().value!;
      this.cache.delete(oldest.key);
      if (oldest.used || oldest === fresh) {
        oldest.used = false;
        this.cache.set(oldest.key, oldest);
        continue;
      }
      oldest.live = false;
      oldest.validate = undefined;
    }
  }
}

function fingerprint(schema: object): SchemaMemo {
  let json: string;
  try {
    json = canonicalJson(schema);
  } catch {
    // No JSON form (too deep, cyclic): one key for all such schema objects is enough, as none compiles.
    return { hash: 'unhashable', bytes: -1, last: undefined };
  }
  return { hash: sha256Hex(json), bytes: Buffer.byteLength(json, 'utf8'), last: undefined };
}

/** The dialect named by $schema; undefined when absent; an explanation when not supported. */
function dialectOf(uri: unknown): Dialect | undefined | { unsupported: string } {
  if (uri === undefined) return undefined;
  if (typeof uri !== 'string') return { unsupported: 'schema not compilable: $schema is not a string' };
  const id = uri.trim().toLowerCase().replace(/#$/, '');
  if (/^https?:\/\/json-schema\.org\/draft\/2020-12\/schema$/.test(id)) return '2020-12';
  if (/^https?:\/\/json-schema\.org\/draft\/2019-09\/schema$/.test(id)) return '2019-09';
  if (/^https?:\/\/json-schema\.org\/draft-0[67]\/schema$/.test(id)) return 'draft-07';
  return { unsupported: `unsupported JSON Schema dialect ${JSON.stringify(uri.slice(0, 100))}` };
}

/** The dialect is chosen above; without $schema each Ajv class applies its own draft. */
function withoutDialect(schema: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(schema, '$schema')) return schema;
  const { $schema: _ignored, ...body } = schema;
  return body;
}

const ajv07 = lazyModule<typeof import('ajv')>('ajv');
const ajv2019 = lazyModule<typeof Ajv2019Module>('ajv/dist/2019.js');
const ajv2020 = lazyModule<typeof Ajv2020Module>('ajv/dist/2020.js');

/** An Ajv instance for the dialect; the classes are loaded the first time a schema needs them. */
function newAjv(dialect: Dialect, options: Options): Ajv {
  if (dialect === '2020-12') return new (ajv2020().Ajv2020)(options);
  if (dialect === '2019-09') return new (ajv2019().Ajv2019)(options);
  return new (ajv07().Ajv)(options);
}

/** A validator, or the reason there is none. */
function compileAs(dialect: Dialect, schema: Record<string, unknown>): ValidateFunction | string {
  try {
    const meta = metaValidator(dialect);
    if (!meta.validateSchema(schema)) {
      return clip(`schema not compilable: ${meta.errorsText(meta.errors, { dataVar: 'inputSchema' })}`);
    }
    const ajv = newAjv(dialect, COMPILE_OPTIONS);
    const validate = ajv.compile(schema);
    // An async validator returns a promise, which is truthy whatever the arguments.
    if ((validate as { $async?: unknown }).$async === true) return 'schema not compilable: $async schemas are not supported';
    return validate;
  } catch (error) {
    return clip(`schema not compilable: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Meta-schema validators, compiled once per process on first use; they only ever validate, so sharing them is safe. */
const metaInstances = new Map<Dialect, Ajv>();

function metaValidator(dialect: Dialect): Ajv {
  let ajv = metaInstances.get(dialect);
  if (!ajv) {
    ajv = newAjv(dialect, META_OPTIONS);
    metaInstances.set(dialect, ajv);
  }
  return ajv;
}

function run(validate: ValidateFunction, args: unknown): ArgumentVerdict {
  try {
    if (validate(args)) return OK;
  } catch (error) {
    // A recursive schema walks as deep as the arguments go.
    if (error instanceof RangeError) return { ok: false, message: 'arguments: nested too deeply to validate' };
    return { ok: 'unchecked', reason: `validation failed: ${error instanceof Error ? error.name : 'error'}` };
  }
  return { ok: false, message: summarize(validate.errors ?? []) };
}

/** One line: "arguments.path: must be string; arguments: must have required property 'q'". */
export function summarize(errors: readonly ErrorObject[]): string {
  const parts: string[] = [];
  for (const error of errors) {
    const part = `${argumentsPath(error.instancePath)}: ${error.message ?? `fails ${error.keyword}`}${detail(error)}`;
    if (!parts.includes(part)) parts.push(part);
  }
  if (parts.length === 0) return 'arguments: invalid';
  const shown = parts.slice(0, MAX_ERRORS_SHOWN).join('; ');
  const more = parts.length > MAX_ERRORS_SHOWN ? ` (and ${parts.length - MAX_ERRORS_SHOWN} more)` : '';
  return clip(oneLine(shown + more));
}

function detail(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    return ` (${JSON.stringify(clip(params.additionalProperty, 60))})`;
  }
  if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return `: ${clip(JSON.stringify(params.allowedValues), 120)}`;
  }
  return '';
}

/** JSON pointer "/items/0/a b" → arguments.items[0]["a b"]. */
function argumentsPath(pointer: string): string {
  if (pointer === '') return 'arguments';
  let path = 'arguments';
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^(0|[1-9]\d*)$/.test(segment)) path += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(segment)) path += `.${segment}`;
    else path += `[${JSON.stringify(clip(segment, 60))}]`;
  }
  return path;
}

/** Argument names are the caller's text: no line breaks or controls in a one-line summary. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}

function clip(text: string, max = MAX_MESSAGE_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
