import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import type { JsonRpcId, JsonRpcResponse } from '../jsonrpc/message.ts';
import type { Logger } from '../telemetry/logger.ts';
import { andThen, type MaybePromise } from '../util/maybe-promise.ts';
import { screenTools } from './federation/lists.ts';
import type { Reply } from './methods.ts';
import { toDownstreamId } from './server-request-ids.ts';
import type { SessionContext } from './session-context.ts';
import { mapTaskIds } from './tasks.ts';
import { OrderedWrites } from './upstream/replies.ts';
import { UpstreamError, type Inbound, type ReplyControl, type ReplySink } from './upstream/types.ts';

export type ForwardReply = Extract<Reply, { kind: 'forward' }>;

/** Where a request's reply is written for the client, whatever transport carries it. */
export interface ReplyOutput {
  /** A message the upstream sent before its response (progress, logging, its own requests). */
  event(data: string): MaybePromise<void>;
  /** The response, or the error in its place. */
  response(raw: string): MaybePromise<void>;
  /** Nothing more follows: after the response, or in its place when the client cancelled. Never fails. */
  end(): MaybePromise<void>;
}

/**
 * Relays the reply to one forwarded request, message by message as the upstream's transport
 * decodes them: the response through the route's mappers and guards, everything before it
 * in its downstream form. A reply that is its response alone is written in the transport's
 * callback, with nothing waiting on the way. The rest of the upstream's reply is read even
 * if the client went away, so that a client resuming its stream (on any replica) gets all
 * of it; a client's cancellation (cancel()) ends the exchange and gets no response at all.
 * `done` hears the response (none: the request failed or was cancelled) once the output has
 * ended.
 */
export class ReplyRelay implements ReplySink {
  private readonly ctx: SessionContext;
  private readonly id: JsonRpcId;
  private readonly reply: ForwardReply;
  private readonly out: ReplyOutput;
  private readonly done: (response: Inbound | undefined) => void;
  private readonly writes: OrderedWrites;
  private control: ReplyControl | undefined;
  /** The response, or what stands in for it, is on its way: nothing else is relayed. */
  private answered = false;
  private finished = false;
  /** Why the exchange ends early: the client cancelled. */
  private cancelled: Error | undefined;

  constructor(ctx: SessionContext, id: JsonRpcId, reply: ForwardReply, out: ReplyOutput, done: (response: Inbound | undefined) => void) {
    this.ctx = ctx;
    this.id = id;
    this.reply = reply;
    this.out = out;
    this.done = done;
    this.writes = new OrderedWrites((err) => this.writeFailed(err));
  }

  /** The exchange whose reply this relays, once it is started. */
  attach(control: ReplyControl): void {
    this.control = control;
    this.writes.control = control;
    if (this.cancelled) control.abort(this.cancelled);
    else if (this.answered) control.stop();
  }

  /** The client cancelled the request: the exchange ends, and no response follows. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = new Error('the client cancelled the request');
    this.control?.abort(this.cancelled);
  }

  message(inbound: Inbound): void {
    if (this.answered) return;
    if (isResponseTo(inbound, this.id)) {
      this.answered = true;
      this.control?.stop();
      const { reply, out } = this;
      this.writes.run(() => andThen(finalResponse(reply, inbound), (raw) => out.response(raw)));
      this.writes.run(() => this.finish(inbound));
      return;
    }
    const data = downstreamForm(this.ctx, this.reply.backend, inbound);
    if (data !== undefined) this.writes.run(() => this.out.event(data));
  }

  end(): void {
    this.fail(new UpstreamError(this.reply.backend, 'protocol', 'stream ended without a response'));
  }

  fail(error: Error): void {
    if (this.answered) return;
    this.answered = true;
    if (!this.cancelled) {
      const failure = JSON.stringify(toErrorResponse(this.id, error, this.ctx.logger));
      this.writes.run(() => this.out.response(failure));
    }
    this.writes.run(() => this.finish(undefined));
  }

  /** A write failed (the event store, a guardrail): the client gets an error if it can still take one. */
  private writeFailed(err: unknown): void {
    this.answered = true;
    let written: MaybePromise<void> = undefined;
    if (!this.cancelled && !this.finished) {
      try {
        written = this.out.response(JSON.stringify(toErrorResponse(this.id, err, this.ctx.logger)));
      } catch {
        // The output is broken: it ends below.
      }
    }
    if (written instanceof Promise) written.catch(ignore).then(() => this.finish(undefined));
    else this.finish(undefined);
  }

  private finish(response: Inbound | undefined): MaybePromise<void> {
    if (this.finished) return;
    this.finished = true;
    return andThen(this.out.end(), () => this.done(response));
  }
}

function ignore(): void {}

/**
 * The final response of a forwarded reply: the upstream's own bytes unless a mapper changed
 * the result or a guard inspected the reply; then the gateway's own encoding of the response,
 * with nothing in it but what JSON-RPC defines.
 */
export function finalResponse(reply: ForwardReply, inbound: Inbound): MaybePromise<string> {
  const m = inbound.message as JsonRpcResponse;
  const { mapResult, screenError } = reply;
  if ('error' in m) return screenError ? JSON.stringify({ jsonrpc: '2.0', id: m.id, error: screenError(m.error) }) : inbound.raw;
  if (!mapResult && !screenError) return inbound.raw;
  const mapped = mapResult ? mapResult(m.result, inbound.raw.length) : m.result;
  return andThen(mapped, (result) => (result === m.result && !screenError ? inbound.raw : JSON.stringify({ jsonrpc: '2.0', id: m.id, result })));
}

export function isResponseTo(inbound: Inbound, id: JsonRpcId): boolean {
  const m = inbound.message;
  return !('method' in m) && m.id === id;
}

/**
 * An upstream message as the client must see it: server requests get backend-scoped ids,
 * resource URIs and task ids their downstream names, and a changed list drops the
 * session's name index.
 */
export function downstreamForm(ctx: SessionContext, backend: string, inbound: Inbound): string | undefined {
  const m = inbound.message;
  // A response on a server stream answers nothing the client sent.
  if (!('method' in m)) return undefined;
  if ('id' in m) return JSON.stringify({ ...m, id: toDownstreamId(backend, m.id) });
  switch (m.method) {
    case 'notifications/resources/updated': {
      const uri = m.params?.uri;
      if (typeof uri !== 'string' || ctx.route.naming.mode === 'never') return inbound.raw;
      return JSON.stringify({ ...m, params: { ...m.params, uri: ctx.route.naming.prefixed(backend, uri) } });
    }
    case 'notifications/tasks/status':
      return JSON.stringify({ ...m, params: mapTaskIds(ctx.route.naming, backend, m.params ?? {}) });
    case 'notifications/tools/list_changed':
      ctx.route.indexes.forget(ctx.sid, 'tools');
      // A changed list may hide a changed definition: the guard looks before the client does.
      screenTools(ctx, backend).catch((err: Error) => ctx.logger.debug({ backend, err: err.message }, 'could not re-screen tools'));
      return inbound.raw;
    case 'notifications/prompts/list_changed':
      ctx.route.indexes.forget(ctx.sid, 'prompts');
      return inbound.raw;
    case 'notifications/resources/list_changed':
      ctx.route.indexes.forget(ctx.sid, 'resources');
      return inbound.raw;
    default:
      return inbound.raw;
  }
}

export function toErrorResponse(id: JsonRpcId | null, err: unknown, logger: Logger): JsonRpcResponse {
  if (err instanceof JsonRpcError) return err.toResponse(id);
  if (err instanceof UpstreamError) {
    const code = err.kind === 'timeout' ? ErrorCode.RequestTimeout : ErrorCode.UpstreamUnavailable;
    return new JsonRpcError(code, err.message, { backend: err.backend }).toResponse(id);
  }
  logger.error({ err }, 'unexpected error handling a request');
  return new JsonRpcError(ErrorCode.InternalError, 'Internal error').toResponse(id);
}
