/**
 * Tool definition pinning against "rug pulls": an upstream that advertises a harmless
 * tool, gets it approved or trusted, and later changes what the tool says it does.
 * Each (backend, tool name) is pinned to the hash of its definition; a different
 * definition later is 'changed' and, in enforce mode, quarantined until an operator
 * approves the new hash.
 */
import { SHA256_HEX, canonicalDigest } from '../../util/canonical-json.ts';

/** The fields that make up what a tool is; `_meta`, `icons` and the like are presentation. */
const DEFINITION_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

/**
 * sha256 (hex) of the canonical JSON (RFC 8785) of {name, title, description,
 * inputSchema, outputSchema, annotations} of a tool as the upstream defines it (before
 * any renaming by the gateway). Absent fields are left out. Throws if the definition
 * has no JSON form (see canonicalJson).
 */
export function toolDefinitionHash(tool: Record<string, unknown>): string {
  const definition: Record<string, unknown> = {};
  for (const field of DEFINITION_FIELDS) {
    if (Object.hasOwn(tool, field) && tool[field] !== undefined) definition[field] = tool[field];
  }
  return canonicalDigest(definition);
}

export type PinMode = 'off' | 'warn' | 'enforce';

export interface PinVerdict {
  /**
   * new: first sight, now pinned (trust on first use);
   * pinned: matches the pin from first use or config;
   * approved: matches a hash pinned by approve();
   * changed: differs from the pin (quarantined in enforce mode).
   */
  readonly status: 'new' | 'pinned' | 'changed' | 'approved';
  readonly hash: string;
  /** Set when status is 'changed': what the tool is pinned to. */
  readonly pinnedHash?: string;
}

export interface PinChange {
  backend: string;
  tool: string;
  pinnedHash: string;
  newHash: string;
}

export interface ToolPinsOptions {
  mode: PinMode;
  /** Operator pins, checked from first sight instead of trusting it. */
  configPins?: ReadonlyArray<{ backend: string; tool: string; sha256: string }>;
  /** Bound on pins learned by trust on first use. Default 100_000. */
  maxTools?: number;
  /**
   * Called synchronously, once per transition to a new unapproved definition (not on
   * every check that sees it again), after the pins are updated. Must not throw.
   */
  onChange?: (e: PinChange) => void;
}

export const DEFAULT_MAX_TOOLS = 100_000;

interface Pin {
  readonly backend: string;
  readonly tool: string;
  pinnedHash: string;
  source: 'first-use' | 'config' | 'approved';
  /** The hash last seen when it differs from pinnedHash: the quarantined definition. */
  changedTo: string | undefined;
}

/**
 * Pins per (backend, tool name), in memory. Pins learned on first use are bounded by
 * maxTools: once full, further new tools are reported 'new' but not pinned (existing
 * pins are never evicted, so flooding the table cannot erase a pin to re-trust a
 * changed tool). Config pins and approvals are operator input and always kept.
 */
export class ToolPins {
  private readonly mode: PinMode;
  private readonly maxTools: number;
  private readonly onChange: ((e: PinChange) => void) | undefined;
  private readonly pins = new Map<string, Map<string, Pin>>();
  private readonly changed = new Set<Pin>();
  private learned = 0;

  constructor(options: ToolPinsOptions) {
    this.mode = options.mode;
    this.maxTools = options.maxTools ?? DEFAULT_MAX_TOOLS;
    if (!(this.maxTools >= 0)) throw new RangeError(`maxTools must be >= 0, got ${this.maxTools}`);
    this.onChange = options.onChange;
    for (const pin of options.configPins ?? []) {
      const hash = normalizeHash(pin.sha256, `config pin for ${pin.backend}/${pin.tool}`);
      const existing = this.lookup(pin.backend, pin.tool);
      if (existing && existing.pinnedHash !== hash) {
        throw new Error(`conflicting config pins for ${pin.backend}/${pin.tool}`);
      }
      if (!existing) this.insert(pin.backend, pin.tool, hash, 'config');
    }
  }

  /** Pins learned on first use, config pins and approvals together. */
  get size(): number {
    let size = 0;
    for (const tools of this.pins.values()) size += tools.size;
    return size;
  }

  /**
   * Compares a tool definition, as the upstream sent it, with its pin. Mode 'off'
   * records nothing and reports every tool 'new'.
   */
  check(backend: string, tool: Record<string, unknown>): PinVerdict {
    const hash = toolDefinitionHash(tool);
    if (this.mode === 'off') return { status: 'new', hash };
    const name = typeof tool.name === 'string' ? tool.name : '';
    const pin = this.lookup(backend, name);
    if (!pin) {
      if (this.learned < this.maxTools) {
        this.insert(backend, name, hash, 'first-use');
        this.learned++;
      }
      return { status: 'new', hash };
    }
    if (hash === pin.pinnedHash) {
      this.settle(pin);
      return { status: pin.source === 'approved' ? 'approved' : 'pinned', hash };
    }
    if (pin.changedTo !== hash) {
      pin.changedTo = hash;
      this.changed.add(pin);
      this.onChange?.({ backend, tool: name, pinnedHash: pin.pinnedHash, newHash: hash });
    }
    return { status: 'changed', hash, pinnedHash: pin.pinnedHash };
  }

  /** Whether a tool may be listed or called: in enforce mode, not while its current definition is quarantined. */
  allows(backend: string, toolName: string): boolean {
    if (this.mode !== 'enforce') return true;
    return this.lookup(backend, toolName)?.changedTo === undefined;
  }

  /**
   * Pins a tool to a hash (from config or the admin API), replacing its pin. The
   * quarantine lifts if the tool's current definition has that hash; a hash approved
   * ahead of the change takes effect when the change is seen.
   */
  approve(backend: string, toolName: string, sha256: string): void {
    const hash = normalizeHash(sha256, `approval for ${backend}/${toolName}`);
    const pin = this.lookup(backend, toolName);
    if (!pin) {
      this.insert(backend, toolName, hash, 'approved');
      return;
    }
    if (pin.source === 'first-use') this.learned--;
    pin.pinnedHash = hash;
    pin.source = 'approved';
    // With no definition seen since the pin, there is nothing to compare yet.
    if (pin.changedTo === hash) this.settle(pin);
  }

  /** The tools whose current definition differs from their pin. */
  quarantined(): PinChange[] {
    const list: PinChange[] = [];
    for (const pin of this.changed) {
      list.push({ backend: pin.backend, tool: pin.tool, pinnedHash: pin.pinnedHash, newHash: pin.changedTo! });
    }
    return list;
  }

  private lookup(backend: string, tool: string): Pin | undefined {
    return this.pins.get(backend)?.get(tool);
  }

  private insert(backend: string, tool: string, hash: string, source: Pin['source']): void {
    let tools = this.pins.get(backend);
    if (!tools) this.pins.set(backend, (tools = new Map()));
    tools.set(tool, { backend, tool, pinnedHash: hash, source, changedTo: undefined });
  }

  private settle(pin: Pin): void {
    if (pin.changedTo === undefined) return;
    pin.changedTo = undefined;
    this.changed.delete(pin);
  }
}

function normalizeHash(sha256: string, what: string): string {
  const hash = sha256.trim().toLowerCase();
  if (!SHA256_HEX.test(hash)) throw new TypeError(`${what}: sha256 must be 64 hex digits`);
  return hash;
}
