import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';
import type { SessionContext } from '../session-context.ts';
import { decodeCursor, encodeCursor, type PendingPages } from './cursor.ts';
import { call } from './exchange.ts';
import type { Target } from './naming.ts';

/** The four list methods differ only in these facts. */
export interface ListKind {
  readonly method: string;
  /** The result field holding the items. */
  readonly items: string;
  /** The item field that names it, mapped between upstream and downstream. */
  readonly key: string;
  readonly feature: string;
  /** Names the gateway must always prefix, whatever the route's mode (opaque ids such as task ids). */
  readonly alwaysPrefixed?: boolean;
  /** Lists show only what the caller may use: the method and subject kind an item is checked as. */
  readonly usedBy?: { readonly method: string; readonly kind: 'tool' | 'prompt' | 'resource' };
}

export const LIST_KINDS: Record<string, ListKind> = {
  'tools/list': { method: 'tools/list', items: 'tools', key: 'name', feature: 'tools', usedBy: { method: 'tools/call', kind: 'tool' } },
  'prompts/list': { method: 'prompts/list', items: 'prompts', key: 'name', feature: 'prompts', usedBy: { method: 'prompts/get', kind: 'prompt' } },
  'resources/list': { method: 'resources/list', items: 'resources', key: 'uri', feature: 'resources', usedBy: { method: 'resources/read', kind: 'resource' } },
  'resources/templates/list': {
    method: 'resources/templates/list',
    items: 'resourceTemplates',
    key: 'uriTemplate',
    feature: 'resources',
    usedBy: { method: 'resources/read', kind: 'resource' },
  },
  'tasks/list': { method: 'tasks/list', items: 'tasks', key: 'taskId', feature: 'tasks', alwaysPrefixed: true },
};

/** Full listings are followed this many pages per backend at most. */
const MAX_PAGES = 100;

type Item = Record<string, unknown>;

interface BackendPage {
  readonly backend: string;
  readonly items: Item[];
  readonly nextCursor: string | undefined;
}

/**
 * Answers a list method for the whole federation. With prefix mode "always" each backend's
 * pages are fetched concurrently and the gateway cursor carries the backends that have
 * more; with "conditional" and "never" every page is needed to see clashes, so the gateway
 * fetches them all and answers in one page.
 */
export async function listFederated(ctx: SessionContext, kind: ListKind, params: Record<string, unknown> | undefined, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const naming = ctx.route.naming;
  if (naming.mode === 'always' || kind.alwaysPrefixed) {
    const pending: PendingPages | undefined = params?.cursor === undefined ? undefined : decodeCursor(params.cursor, ctx.route.backendNames);
    const backends = pending ? Object.keys(pending) : ctx.backendsWith(kind.feature);
    const pages = await fetchFromAll(ctx, kind, backends, (b) => fetchPage(ctx, kind, b, pending?.[b], signal), signal);
    const next: PendingPages = {};
    const items: Item[] = [];
    for (const page of pages) {
      for (const item of page.items) {
        const name = String(item[kind.key]);
        const downstream = naming.prefixed(page.backend, name);
        if (usable(ctx, kind, page.backend, name, downstream)) items.push(renamed(item, kind.key, downstream));
      }
      if (page.nextCursor !== undefined) next[page.backend] = page.nextCursor;
    }
    const nextCursor = encodeCursor(next);
    return nextCursor ? { [kind.items]: items, nextCursor } : { [kind.items]: items };
  }
  if (params?.cursor !== undefined) throw new JsonRpcError(ErrorCode.InvalidParams, 'Invalid cursor');
  const { items, index } = await listComplete(ctx, kind, signal);
  const shown = ctx.route.authorizer.active
    ? items.filter((item) => {
        const downstream = String(item[kind.key]);
        const target = index.get(downstream)!;
        return usable(ctx, kind, target.backend, target.name, downstream);
      })
    : items;
  return { [kind.items]: shown };
}

/**
 * Every item of every backend, named for the downstream, with the index from downstream
 * name to target. A clash in mode "never" is an error naming both backends.
 */
export async function listComplete(ctx: SessionContext, kind: ListKind, signal?: AbortSignal): Promise<{ items: Item[]; index: Map<string, Target> }> {
  const pages = await fetchFromAll(ctx, kind, ctx.backendsWith(kind.feature), (b) => fetchAllPages(ctx, kind, b, signal), signal);
  const owners = new Map<string, string[]>();
  for (const page of pages) {
    for (const item of page.items) {
      const name = String(item[kind.key]);
      const list = owners.get(name);
      if (list) list.push(page.backend);
      else owners.set(name, [page.backend]);
    }
  }
  const naming = ctx.route.naming;
  const items: Item[] = [];
  const index = new Map<string, Target>();
  for (const page of pages) {
    for (const item of page.items) {
      const name = String(item[kind.key]);
      const clash = owners.get(name)!.length > 1;
      if (clash && naming.mode === 'never') {
        const [a, b] = owners.get(name)!;
        throw new JsonRpcError(
          ErrorCode.InternalError,
          `${kind.items} name clash: "${name}" is offered by backends "${a}" and "${b}"; route "${ctx.route.ir.name}" uses toolPrefix "never" (use "conditional" or "always")`,
        );
      }
      const downstream = clash || naming.mode === 'always' ? naming.prefixed(page.backend, name) : name;
      index.set(downstream, { backend: page.backend, name });
      items.push(downstream === name ? item : renamed(item, kind.key, downstream));
    }
  }
  return { items, index };
}

async function fetchFromAll(ctx: SessionContext, kind: ListKind, backends: string[], fetch: (backend: string) => Promise<BackendPage>, signal: AbortSignal | undefined): Promise<BackendPage[]> {
  const settled = await Promise.allSettled(backends.map(fetch));
  // The client cancelled: the backends it cut short did not fail, and a partial list is no answer (nor an index to keep).
  signal?.throwIfAborted();
  const pages: BackendPage[] = [];
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') {
      pages.push(s.value);
      return;
    }
    const backend = backends[i]!;
    const reason = (s.reason as Error).message;
    if (ctx.route.ir.failureMode === 'failClosed') {
      throw new JsonRpcError(ErrorCode.UpstreamUnavailable, `${kind.method} failed for backend "${backend}": ${reason}`, { backend });
    }
    ctx.logger.warn({ backend, method: kind.method, route: ctx.route.key, err: reason }, 'backend left out of a federated list');
  });
  return pages;
}

async function fetchPage(ctx: SessionContext, kind: ListKind, backend: string, cursor: string | undefined, signal?: AbortSignal): Promise<BackendPage> {
  let result: Record<string, unknown>;
  try {
    result = await call(ctx, backend, kind.method, cursor === undefined ? undefined : { cursor }, signal);
  } catch (err) {
    // A server without this list answers "method not found": it simply has none.
    if (err instanceof JsonRpcError && err.code === ErrorCode.MethodNotFound) return { backend, items: [], nextCursor: undefined };
    throw err;
  }
  const items = result[kind.items];
  if (!Array.isArray(items)) throw new JsonRpcError(ErrorCode.UpstreamUnavailable, `backend "${backend}" answered ${kind.method} without "${kind.items}"`);
  const named = items.filter((i): i is Item => typeof i === 'object' && i !== null && typeof (i as Item)[kind.key] === 'string');
  // Tools pass the backend's guard (hygiene, pinned definitions) before anyone sees them.
  const valid = kind.method === 'tools/list' ? (ctx.route.guards.get(backend)?.screen(named) ?? named) : named;
  const next = typeof result.nextCursor === 'string' && result.nextCursor.length > 0 ? result.nextCursor : undefined;
  return { backend, items: valid, nextCursor: next };
}

/** Reads a backend's whole tool list through its guard, so the guard knows every definition. */
export async function screenTools(ctx: SessionContext, backend: string, signal?: AbortSignal): Promise<void> {
  await fetchAllPages(ctx, LIST_KINDS['tools/list']!, backend, signal);
}

async function fetchAllPages(ctx: SessionContext, kind: ListKind, backend: string, signal?: AbortSignal): Promise<BackendPage> {
  const items: Item[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const got = await fetchPage(ctx, kind, backend, cursor, signal);
    items.push(...got.items);
    if (got.nextCursor === undefined) return { backend, items, nextCursor: undefined };
    cursor = got.nextCursor;
  }
  throw new JsonRpcError(ErrorCode.UpstreamUnavailable, `backend "${backend}" has more than ${MAX_PAGES} pages of ${kind.items}`);
}

/** Whether the caller may use what a list item names, so lists show only that. */
function usable(ctx: SessionContext, kind: ListKind, backend: string, name: string, downstreamName: string): boolean {
  if (!kind.usedBy || !ctx.route.authorizer.active) return true;
  const request = ctx.authzRequest(kind.usedBy.method, backend, { kind: kind.usedBy.kind, name, downstreamName });
  return ctx.route.authorizer.visible({ ...request, mcp: { ...request.mcp, listing: true } });
}

/** A shallow copy with one field changed: every other field passes through untouched. */
function renamed(item: Item, key: string, value: string): Item {
  return { ...item, [key]: value };
}
