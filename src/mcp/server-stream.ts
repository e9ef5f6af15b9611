import { setTimeout as sleep } from 'node:timers/promises';
import type { MaybePromise } from '../util/maybe-promise.ts';
import { downstreamForm } from './relay.ts';
import type { SessionContext } from './session-context.ts';
import { OrderedWrites } from './upstream/replies.ts';
import { UpstreamError, type UpstreamSession } from './upstream/types.ts';

/** The pause before a server stream that ended or failed is opened again; it doubles while the stream keeps failing. */
export const RELISTEN_FIRST_PAUSE_MS = 500;
const RELISTEN_MAX_PAUSE_MS = 5_000;
/** A stream the upstream ended after this long, or one that brought a message, was working: the next pause starts small again. */
const WORKING_STREAM_MS = 10_000;

/**
 * One upstream's server stream for a client's, its messages emitted in order, for as long as
 * the client's stream is open (the signal). One that the upstream ended, lost or refused (an
 * upstream that allows one server stream per session refuses a second while the first is
 * held) is opened again after a pause, its session looked up afresh: after an expiry, the one
 * a request of this downstream session opened in its place (the upstream can send nothing to
 * a session it no longer has, so until then there is nothing to miss). An upstream that offers
 * no server stream, or a downstream session that ended, stops it. Failures are logged, never
 * thrown.
 */
export async function followServerStream(ctx: SessionContext, backend: string, signal: AbortSignal, emit: (data: string) => MaybePromise<void>): Promise<void> {
  let pause = RELISTEN_FIRST_PAUSE_MS;
  let failures = 0;
  for (let attempt = 0; !signal.aborted; attempt++) {
    let working = false;
    try {
      const session = attempt === 0 ? await ctx.upstream(backend) : await ctx.refresh(backend);
      if (!session || signal.aborted) return;
      const opened = performance.now();
      await listenOnce(ctx, backend, session, signal, (data) => {
        working = true;
        return emit(data);
      });
      // A stream that failed is no proof of anything however long it took (a timeout takes long); one the upstream ended after a while worked.
      working ||= performance.now() - opened >= WORKING_STREAM_MS;
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof UpstreamError && err.kind === 'unsupported') return;
      // The first failure in a row is news; the retries that follow it are not.
      ctx.logger[failures === 0 ? 'warn' : 'debug']({ backend, err: (err as Error).message }, 'upstream server stream failed; opening it again');
      failures++;
    }
    if (working) {
      pause = RELISTEN_FIRST_PAUSE_MS;
      failures = 0;
    }
    try {
      await sleep(pause, undefined, { signal });
    } catch {
      return;
    }
    pause = Math.min(pause * 2, RELISTEN_MAX_PAUSE_MS);
  }
}

/** One opening of the stream: resolves when the upstream ends it, rejects when it fails. */
function listenOnce(ctx: SessionContext, backend: string, session: UpstreamSession, signal: AbortSignal, emit: (data: string) => MaybePromise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const writes = new OrderedWrites(reject);
    writes.control = session.listen(
      {
        message(inbound) {
          const out = downstreamForm(ctx, backend, inbound);
          if (out !== undefined) writes.run(() => emit(out));
        },
        end: () => writes.run(resolve),
        fail: (err) => writes.run(() => reject(err)),
      },
      signal,
    );
  });
}
