import { describe, expect, it } from 'vitest';
import { LateControl, MAX_BACKLOG, OrderedWrites, RecoverableReply } from './replies.ts';
import { UpstreamError, type Inbound, type ReplyControl, type ReplySink } from './types.ts';

/** A reply's producer as a test drives it: what the consumer asked of it, and a sink to deliver to. */
class Source implements ReplyControl {
  readonly asked: string[] = [];
  readonly sink: ReplySink;
  constructor(sink: ReplySink) {
    this.sink = sink;
  }
  stop(): void {
    this.asked.push('stop');
  }
  pause(): void {
    this.asked.push('pause');
  }
  resume(): void {
    this.asked.push('resume');
  }
  abort(reason: Error): void {
    this.asked.push(`abort: ${reason.message}`);
  }
}

/** What a sink was told, in order. */
function recording(): ReplySink & { readonly heard: unknown[] } {
  const heard: unknown[] = [];
  return {
    heard,
    message: (inbound) => heard.push(inbound.message),
    end: () => heard.push('end'),
    fail: (error) => heard.push(`fail: ${error.message}`),
  };
}

const note = (n: number): Inbound => {
  const message = { jsonrpc: '2.0' as const, method: 'notifications/progress', params: { progress: n } };
  return { message, raw: JSON.stringify(message) };
};
const expired = (): UpstreamError => new UpstreamError('b', 'expired', 'HTTP 404 for session');
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ordered writes', () => {
  it('runs writes that need no wait at once, in order', () => {
    const done: number[] = [];
    const writes = new OrderedWrites(() => {});
    for (let i = 0; i < 3; i++) writes.run(() => void done.push(i));
    expect(done).toEqual([0, 1, 2]);
  });

  it('holds later writes until a write that waits has settled, keeping the order', async () => {
    const done: string[] = [];
    let release!: () => void;
    const writes = new OrderedWrites(() => {});
    writes.run(() => new Promise<void>((resolve) => (release = () => (done.push('slow'), resolve()))));
    writes.run(() => void done.push('next'));
    await settle();
    expect(done).toEqual([]);
    release();
    await settle();
    expect(done).toEqual(['slow', 'next']);
  });

  it('pauses the reply while its backlog is high, and resumes it once the backlog is written', async () => {
    const source = new Source(recording());
    const writes = new OrderedWrites(() => {});
    writes.control = source;
    let release!: () => void;
    writes.run(() => new Promise<void>((resolve) => (release = resolve)));
    for (let i = 0; i < 20; i++) writes.run(() => {});
    expect(source.asked).toEqual(['pause']);
    release();
    await settle();
    expect(source.asked).toEqual(['pause', 'resume']);
  });

  it('stops the reply, reports once and writes nothing more when a write fails', async () => {
    const source = new Source(recording());
    const errors: unknown[] = [];
    const done: string[] = [];
    const writes = new OrderedWrites((err) => errors.push(err));
    writes.control = source;
    writes.run(() => Promise.reject(new Error('event store down')));
    writes.run(() => void done.push('after'));
    writes.run(() => {
      throw new Error('never run');
    });
    await settle();
    expect(errors).toEqual([new Error('event store down')]);
    expect(done).toEqual([]);
    expect(source.asked).toEqual(['stop']);
    writes.run(() => void done.push('later'));
    expect(done).toEqual([]);
  });

  it('gives up on a backlog past its bound, for transports that cannot pause, after the write in flight', async () => {
    const order: string[] = [];
    const writes = new OrderedWrites((err) => order.push(String(err)));
    let finishFirst!: () => void;
    writes.run(() => new Promise<void>((resolve) => (finishFirst = resolve)).then(() => void order.push('first')));
    for (let i = 0; i <= MAX_BACKLOG; i++) writes.run(() => void order.push('queued'));
    // Reported once the write in flight is done, so that what the consumer writes about it comes after; the backlog is dropped.
    expect(order).toEqual([]);
    finishFirst();
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toHaveLength(2);
    expect(order[0]).toBe('first');
    expect(order[1]).toContain(`more than ${MAX_BACKLOG} messages waiting`);
  });
});

describe('a recoverable reply', () => {
  it('replaces a reply that failed before delivering anything, onto the same sink', async () => {
    const sink = recording();
    const sources: Source[] = [];
    const recovered: unknown[] = [];
    const reply = new RecoverableReply(sink, async (err, target) => {
      recovered.push(err);
      const source = new Source(target);
      sources.push(source);
      return source;
    }).open((target) => {
      const first = new Source(target);
      sources.push(first);
      return first;
    });
    sources[0]!.sink.fail(expired());
    await settle();
    expect(recovered).toEqual([expired()]);
    sources[1]!.sink.message(note(1));
    sources[1]!.sink.end();
    expect(sink.heard).toEqual([note(1).message, 'end']);
    reply.stop();
    expect(sources[1]!.asked).toEqual(['stop']);
    expect(sources[0]!.asked).toEqual([]);
  });

  it('passes a failure on once a message was delivered, and recovers at most once', async () => {
    let recoveries = 0;
    const recover = async (_err: unknown, target: ReplySink): Promise<ReplyControl> => {
      recoveries++;
      return new Source(target);
    };
    const delivered = recording();
    let source!: Source;
    new RecoverableReply(delivered, recover).open((target) => (source = new Source(target)));
    source.sink.message(note(1));
    source.sink.fail(expired());
    expect(delivered.heard).toEqual([note(1).message, 'fail: backend "b" ended the session: HTTP 404 for session']);

    const twice = recording();
    let again!: Source;
    new RecoverableReply(twice, async (_err, target) => {
      recoveries++;
      return (again = new Source(target));
    }).open((target) => {
      // Some transports fail before they return (an exchange whose signal had aborted already).
      target.fail(expired());
      return new Source(target);
    });
    await settle();
    again.sink.fail(expired());
    expect(recoveries).toBe(1);
    expect(twice.heard).toEqual(['fail: backend "b" ended the session: HTTP 404 for session']);
  });

  it('treats a reply that could not be opened as one that failed, and the failure of its recovery as final', async () => {
    const sink = recording();
    new RecoverableReply(sink, async (err) => {
      throw new Error(`not recovered from: ${(err as Error).message}`);
    }).open(() => Promise.reject(new Error('no upstream session')));
    await settle();
    expect(sink.heard).toEqual(['fail: not recovered from: no upstream session']);
  });

  it('applies a stop or a pause that came before the reply opened', async () => {
    let release!: (control: ReplyControl) => void;
    const stopped = new RecoverableReply(recording(), () => Promise.reject(new Error('unused'))).open(() => new Promise<ReplyControl>((resolve) => (release = resolve)));
    stopped.stop();
    const late = new Source(recording());
    release(late);
    await settle();
    expect(late.asked).toEqual(['stop']);

    const paused = new LateControl();
    paused.pause();
    const source = new Source(recording());
    paused.attach(source);
    paused.resume();
    expect(source.asked).toEqual(['pause', 'resume']);
  });

  it('applies an abort that came before the reply opened, and passes one on to the open reply', async () => {
    let release!: (control: ReplyControl) => void;
    const early = new RecoverableReply(recording(), () => Promise.reject(new Error('unused'))).open(() => new Promise<ReplyControl>((resolve) => (release = resolve)));
    early.abort(new Error('cancelled'));
    const late = new Source(recording());
    release(late);
    await settle();
    expect(late.asked).toEqual(['abort: cancelled']);

    let source!: Source;
    const open = new RecoverableReply(recording(), () => Promise.reject(new Error('unused'))).open((target) => (source = new Source(target)));
    open.abort(new Error('cancelled'));
    expect(source.asked).toEqual(['abort: cancelled']);
  });

  it('sends nothing for a reply aborted while it waited to open: its sink hears why', async () => {
    const sink = recording();
    let release!: () => void;
    const waiting = new Promise<void>((resolve) => (release = resolve));
    let sent = false;
    // As a session context opens one: the request is sent once its upstream session is there, unless aborted.
    const reply: RecoverableReply = new RecoverableReply(sink, () => Promise.reject(new Error('unused'))).open(() =>
      waiting.then(() => reply.unlessAborted(reply, () => ((sent = true), new Source(reply)))),
    );
    reply.abort(new Error('the client cancelled the request'));
    release();
    await settle();
    expect(sent).toBe(false);
    expect(sink.heard).toEqual(['fail: the client cancelled the request']);
  });

  it('does not recover a reply its consumer aborted', async () => {
    const sink = recording();
    let recoveries = 0;
    let source!: Source;
    const reply = new RecoverableReply(sink, async () => {
      recoveries++;
      return new Source(recording());
    }).open((target) => (source = new Source(target)));
    reply.abort(new Error('cancelled'));
    source.sink.fail(expired());
    await settle();
    expect(recoveries).toBe(0);
    expect(sink.heard).toEqual(['fail: backend "b" ended the session: HTTP 404 for session']);
  });

  it('delivers nothing once stopped', () => {
    const sink = recording();
    let source!: Source;
    const reply = new RecoverableReply(sink, () => Promise.reject(new Error('unused'))).open((target) => (source = new Source(target)));
    reply.stop();
    source.sink.message(note(1));
    source.sink.fail(expired());
    expect(sink.heard).toEqual([]);
  });
});
