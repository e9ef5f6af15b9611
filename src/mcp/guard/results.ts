/**
 * tools/call result inspection, in order: a size cap, regex redaction, then an
 * optional external guardrail that sees the redacted result. Built once from the
 * policy (regexes compiled and checked up front), then called per result.
 *
 * Fast path: with nothing matched and no guardrail, inspect returns the very result
 * object it was given, so the caller can forward the upstream's bytes untouched.
 */
import { ErrorCode } from '../../jsonrpc/errors.ts';
import type { JsonRpcErrorObject } from '../../jsonrpc/message.ts';
import { type MaybePromise } from '../../util/maybe-promise.ts';
import { GuardrailClient } from './guardrail.ts';
import { jsonByteLength, MAX_JSON_GROWTH } from './json-size.ts';
import { Redactor, type RedactionPattern } from './redaction.ts';

export { BUILTIN_PATTERNS, DEFAULT_BUILTINS } from './redaction.ts';

export interface ResultPolicy {
  /** Cap on the result as JSON, in UTF-8 bytes. */
  maxResultBytes: number;
  redact: {
    /** Names from BUILTIN_PATTERNS to apply. */
    builtins: string[];
    patterns: RedactionPattern[];
  };
  guardrail?: {
    url: URL;
    timeoutMs: number;
    /** What an unavailable guardrail means: failOpen passes the (redacted) result, failClosed blocks it. */
    failMode: 'failOpen' | 'failClosed';
    /** Sent to the guardrail service (its own credentials). */
    headers?: Record<string, string>;
  };
}

export interface InspectContext {
  backend: string;
  tool: string;
  argumentsDigest?: string;
  /**
   * The length of the JSON text the result was parsed from (its whole message): a result
   * from a text short enough cannot be over the size cap, and is not measured.
   */
  sourceChars?: number;
}

/**
 * pass: forward `result` (the same object as given when nothing changed it);
 * `guardrail` says what the guardrail did when one is configured ('unavailable' means
 * passed by failOpen).
 * block: the caller answers with an error instead, either an isError result
 * (blockedResult) or a JSON-RPC error; `cause` is for metrics and audit.
 */
export type InspectOutcome =
  | { action: 'pass'; result: Record<string, unknown>; redactions: number; guardrail?: 'allowed' | 'redacted' | 'unavailable' }
  | { action: 'block'; reason: string; cause: 'too-large' | 'uninspectable' | 'guardrail' | 'guardrail-unavailable' };

/** An error's message is a sentence or a few, not a payload. */
const MAX_ERROR_MESSAGE_CHARS = 4096;

/** Messages up to this long hold results shallow enough to need no measuring (see shallowAndSmall). */
const SHALLOW_SOURCE_CHARS = 2048;

/** Room for the guardrail's envelope around a replacement result. */
const GUARDRAIL_ENVELOPE_BYTES = 65_536;

export class ResultInspector {
  private readonly maxResultBytes: number;
  private readonly redactor: Redactor;
  private readonly guardrail: GuardrailClient | undefined;
  private readonly failOpen: boolean;

  /** Compiles the regexes; throws, naming the pattern, on an invalid one. */
  constructor(policy: ResultPolicy) {
    if (!(policy.maxResultBytes > 0)) throw new RangeError(`maxResultBytes must be positive, got ${policy.maxResultBytes}`);
    this.maxResultBytes = policy.maxResultBytes;
    this.redactor = new Redactor(policy.redact.builtins, policy.redact.patterns);
    const guardrail = policy.guardrail;
    this.failOpen = guardrail?.failMode === 'failOpen';
    this.guardrail =
      guardrail &&
      new GuardrailClient({
        url: guardrail.url,
        timeoutMs: guardrail.timeoutMs,
        ...(guardrail.headers && { headers: guardrail.headers }),
        maxResponseBytes: Math.min(this.maxResultBytes + GUARDRAIL_ENVELOPE_BYTES, 2 ** 31),
      });
  }

  /** Synchronous unless a guardrail is configured: size and redaction need no waiting. */
  inspect(context: InspectContext, result: Record<string, unknown>): MaybePromise<InspectOutcome> {
    // Only the envelope of an upstream's response was checked: its result may be anything.
    if (typeof result !== 'object' || result === null || Array.isArray(result)) return { action: 'block', reason: 'result is not an object', cause: 'uninspectable' };
    let redacted: { result: Record<string, unknown>; redactions: number };
    try {
      if (!this.shallowAndSmall(context.sourceChars) && this.overCap(result)) return this.tooLarge();
      redacted = this.redactor.redact(result);
      // A marker may be longer than what it replaced.
      if (redacted.redactions > 0 && this.overCap(redacted.result)) return this.tooLarge();
    } catch (error) {
      // Nesting deeper than the stack: what cannot be looked through is not forwarded.
      if (!(error instanceof RangeError)) throw error;
      return { action: 'block', reason: 'result nested too deeply to inspect', cause: 'uninspectable' };
    }
    if (!this.guardrail) return { action: 'pass', result: redacted.result, redactions: redacted.redactions };
    return this.review(this.guardrail, context, redacted);
  }

  /**
   * An upstream's error as the client may see it: its message and data redacted like a
   * result's text, and its data left out when it is over the size cap or cannot be walked.
   */
  screenError(error: JsonRpcErrorObject): JsonRpcErrorObject {
    const message = typeof error.message === 'string' ? this.redactor.text(error.message.slice(0, MAX_ERROR_MESSAGE_CHARS)) : 'upstream error';
    const code = Number.isInteger(error.code) ? error.code : ErrorCode.InternalError;
    if (error.data === undefined) return { code, message };
    try {
      if (this.overCap(error.data)) return { code, message };
      return { code, message, data: this.redactor.deep(error.data) };
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      return { code, message };
    }
  }

  /**
   * A result parsed from a text this short is neither over the cap (a parsed text grows at
   * most MAX_JSON_GROWTH bytes a character) nor nested deeper than a walk of it can go (each
   * level takes two characters): it needs no measuring.
   */
  private shallowAndSmall(sourceChars: number | undefined): boolean {
    return sourceChars !== undefined && sourceChars <= SHALLOW_SOURCE_CHARS && sourceChars * MAX_JSON_GROWTH <= this.maxResultBytes;
  }

  private overCap(value: unknown): boolean {
    return jsonByteLength(value, this.maxResultBytes) > this.maxResultBytes;
  }

  private tooLarge(): InspectOutcome {
    return { action: 'block', reason: `result larger than ${this.maxResultBytes} bytes`, cause: 'too-large' };
  }

  private async review(guardrail: GuardrailClient, context: InspectContext, redacted: { result: Record<string, unknown>; redactions: number }): Promise<InspectOutcome> {
    const decision = await guardrail.review({
      backend: context.backend,
      tool: context.tool,
      ...(context.argumentsDigest !== undefined && { argumentsDigest: context.argumentsDigest }),
      result: redacted.result,
    });
    switch (decision.action) {
      case 'allow':
        return { action: 'pass', result: redacted.result, redactions: redacted.redactions, guardrail: 'allowed' };
      case 'redact':
        return { action: 'pass', result: decision.result, redactions: redacted.redactions, guardrail: 'redacted' };
      case 'block':
        return { action: 'block', reason: decision.reason, cause: 'guardrail' };
      case 'unavailable':
        if (this.failOpen) return { action: 'pass', result: redacted.result, redactions: redacted.redactions, guardrail: 'unavailable' };
        return { action: 'block', reason: `guardrail unavailable: ${decision.detail}`, cause: 'guardrail-unavailable' };
    }
  }

  async close(): Promise<void> {
    await this.guardrail?.close();
  }
}

/** A tools/call result that tells the model why the real one was withheld. */
export function blockedResult(reason: string): Record<string, unknown> {
  return { content: [{ type: 'text', text: `Tool result withheld by the gateway: ${reason}` }], isError: true };
}
