import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';
import type { JsonRpcErrorObject } from '../../jsonrpc/message.ts';
import { andThen, type MaybePromise } from '../../util/maybe-promise.ts';
import type { GuardIR } from '../../ir/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { ArgumentValidator } from './arguments.ts';
import { inspectTool } from './hygiene.ts';
import { blockedResult, ResultInspector } from './results.ts';
import { ToolPins, type PinChange } from './tool-pins.ts';

type Tool = Record<string, unknown>;

/** Tool definitions remembered per backend, for argument checks. */
const MAX_DEFINITIONS = 10_000;

export interface GuardEvents {
  /** A tool's definition changed since it was pinned (audit + metric). */
  onPinChange(change: PinChange): void;
}

/**
 * The defences against one backend, as a hostile or compromised server: what its tool
 * lists may show (hygiene, pinned definitions), what a call may send it (argument
 * schema) and what its results may carry back (size, secrets, an external guardrail).
 * It outlives config reloads, so pins learned on first use are kept.
 */
export class BackendGuard {
  readonly backend: string;
  readonly config: GuardIR;
  private readonly pins: ToolPins;
  private readonly validator: ArgumentValidator;
  private readonly inspector: ResultInspector;
  private readonly logger: Logger;
  /** The last definition screened per tool, with its JSON text: unchanged ones are not screened again. */
  private readonly definitions = new Map<string, { readonly text: string; readonly tool: Tool }>();
  /** Definitions hygiene rejected, by their JSON text. */
  private readonly rejected = new Map<string, string>();
  private readonly flagged = new Set<string>();

  constructor(backend: string, config: GuardIR, validator: ArgumentValidator, events: GuardEvents, logger: Logger) {
    this.backend = backend;
    this.config = config;
    this.validator = validator;
    this.logger = logger;
    this.pins = new ToolPins({
      mode: config.pinning,
      configPins: config.pins.map((p) => ({ backend, tool: p.tool, sha256: p.sha256 })),
      onChange: (change) => events.onPinChange(change),
    });
    this.inspector = new ResultInspector({
      maxResultBytes: config.results.maxBytes,
      redact: { builtins: [...config.results.redact.builtins], patterns: config.results.redact.patterns.map((p) => ({ ...p })) },
      ...(config.results.guardrail ? { guardrail: config.results.guardrail } : {}),
    });
  }

  /**
   * Screens the tools a backend lists (upstream names): hygiene first (a definition that
   * fails it is not even hashed), then the pins. Returns those the client may see.
   */
  screen(tools: readonly Tool[]): Tool[] {
    const shown: Tool[] = [];
    for (const tool of tools) {
      const name = String(tool.name);
      // Lists repeat themselves: a definition seen before, unchanged, needs no new look (and no new hash).
      const text = JSON.stringify(tool);
      const seen = this.definitions.get(name);
      if (seen && seen.text === text) {
        if (this.pins.allows(this.backend, name)) shown.push(tool);
        continue;
      }
      if (this.rejected.get(name) === text) continue;
      if (this.config.hygiene.mode !== 'off') {
        const findings = inspectTool(tool, { mode: this.config.hygiene.mode, maxDescriptionChars: this.config.hygiene.maxDescriptionChars, maxDefinitionBytes: this.config.hygiene.maxDefinitionBytes });
        if (findings.length > 0) {
          const key = `${name}\u0000${findings.map((f) => f.path).join()}`;
          if (!this.flagged.has(key)) {
            this.flagged.add(key);
            this.logger.warn({ backend: this.backend, tool: name, findings: findings.slice(0, 5) }, 'suspicious tool definition');
          }
          if (this.config.hygiene.mode === 'reject' || findings.some((f) => f.problem === 'too-large')) {
            this.remember(this.rejected, name, text);
            continue;
          }
        }
      }
      this.pins.check(this.backend, tool);
      // Remembered even when quarantined: an approval then needs no new listing.
      this.remember(this.definitions, name, { text, tool });
      if (this.pins.allows(this.backend, name)) shown.push(tool);
    }
    return shown;
  }

  knows(tool: string): boolean {
    return this.definitions.has(tool);
  }

  /** Refuses a call to a quarantined tool, or with arguments its schema rejects, before it leaves the gateway. */
  checkCall(tool: string, args: unknown): void {
    if (!this.pins.allows(this.backend, tool)) {
      throw new JsonRpcError(ErrorCode.Forbidden, `Tool ${tool} is quarantined: its definition changed since it was approved`, { backend: this.backend, tool });
    }
    if (!this.config.validateArguments) return;
    const definition = this.definitions.get(tool);
    if (!definition) return;
    const verdict = this.validator.validate(this.backend, definition.tool, args);
    if (verdict.ok === false) throw new JsonRpcError(ErrorCode.InvalidParams, `Invalid arguments for tool ${tool}: ${verdict.message}`);
  }

  /** The error to forward in place of the upstream's (see ResultInspector.screenError); bound, so replies carry it as it is. */
  readonly screenError = (error: JsonRpcErrorObject): JsonRpcErrorObject => this.inspector.screenError(error);

  /** The result to forward: the same object when nothing changed, a replacement otherwise. */
  inspectResult(tool: string, result: Record<string, unknown>, sourceChars?: number): MaybePromise<Record<string, unknown>> {
    return andThen(this.inspector.inspect({ backend: this.backend, tool, sourceChars }, result), (outcome) => {
      if (outcome.action === 'pass') {
        if (outcome.redactions > 0) this.logger.info({ backend: this.backend, tool, redactions: outcome.redactions }, 'redacted secrets in a tool result');
        return outcome.result;
      }
      this.logger.warn({ backend: this.backend, tool, cause: outcome.cause, reason: outcome.reason }, 'tool result withheld');
      return blockedResult(outcome.reason);
    });
  }

  approve(tool: string, sha256: string): void {
    this.pins.approve(this.backend, tool, sha256);
  }

  quarantined(): PinChange[] {
    return this.pins.quarantined();
  }

  close(): Promise<void> {
    return this.inspector.close();
  }

  private remember<V>(map: Map<string, V>, name: string, value: V): void {
    map.delete(name);
    if (map.size >= MAX_DEFINITIONS) map.delete(map.keys().next().value!);
    map.set(name, value);
  }
}
