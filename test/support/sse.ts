import { expect } from 'vitest';

/** Raw SSE reading for resumption tests: what a client sees on the wire. */
export interface Event {
  id?: string;
  data: string;
}

/** Reads SSE events from a fetch response until `stop` says so (then drops the connection) or the stream ends. */
export async function readEvents(res: Response, stop: (events: Event[]) => boolean, abort?: AbortController): Promise<Event[]> {
  const events: Event[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (.*)$/m.exec(block)?.[1];
      const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
      if (data) events.push({ ...(id ? { id } : {}), data });
      if (stop(events)) {
        abort?.abort();
        await reader.cancel().catch(() => {});
        return events;
      }
    }
  }
}

export async function dropAndResume(postUrl: string, resumeUrl: string, sid: string, steps: number, keepBeforeDrop: number): Promise<{ before: Event[]; after: Event[] }> {
  const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', accept: 'application/json, text/event-stream' };
  const abort = new AbortController();
  const res = await fetch(postUrl, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 42, method: 'tools/call', params: { name: 'slow__progress', arguments: { steps, delayMs: 60 }, _meta: { progressToken: 'tok' } } }),
    signal: abort.signal,
  });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const before = await readEvents(res, (e) => e.length >= keepBeforeDrop, abort);
  const resumed = await fetch(resumeUrl, { headers: { ...headers, 'last-event-id': before.at(-1)!.id! } });
  expect(resumed.status).toBe(200);
  const after = await readEvents(resumed, (e) => e.some((x) => x.data.includes('"id":42')));
  return { before, after };
}

export function checkResumed(before: Event[], after: Event[], steps: number): void {
  const progress = [...before, ...after].filter((e) => e.data.includes('notifications/progress')).map((e) => JSON.parse(e.data).params.progress);
  // Every progress event exactly once, in order, then the response.
  expect(progress).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  const response = JSON.parse(after.at(-1)!.data);
  expect(response).toMatchObject({ id: 42, result: { content: [{ type: 'text', text: `slow done ${steps}` }] } });
  const ids = [...before, ...after].map((e) => e.id);
  expect(new Set(ids).size).toBe(ids.length);
}


/** Every JSON-RPC message of a POST's reply body, whether the gateway answered with JSON or an SSE stream. */
export function replyMessages(text: string): any[] {
  if (text.startsWith('{')) return [JSON.parse(text)];
  return [...text.matchAll(/^data: ?(.*)$/gm)].map((m) => JSON.parse(m[1]!));
}

/** The last JSON-RPC message of a reply body: the response, after anything streamed before it. */
export function finalMessage(text: string): any {
  return replyMessages(text).at(-1);
}
