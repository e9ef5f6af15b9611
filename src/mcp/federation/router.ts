import { ErrorCode, JsonRpcError } from '../../jsonrpc/errors.ts';
import type { SessionContext } from '../session-context.ts';
import type { MaybePromise } from '../../util/maybe-promise.ts';
import { templatePattern, type NameIndex } from './index-cache.ts';
import { LIST_KINDS, listComplete } from './lists.ts';
import type { Target } from './naming.ts';
import type { RequestScope } from '../methods.ts';

export type Namespace = 'tools' | 'prompts' | 'resources';

/**
 * Finds the backend that owns a downstream name. With prefix mode "always" the name says
 * it; otherwise the session's listing does (fetched once and cached on the route).
 */
export function resolveTarget(ctx: SessionContext, namespace: Namespace, name: string, scope?: RequestScope): MaybePromise<Target> {
  const naming = ctx.route.naming;
  if (naming.mode === 'always') {
    const target = naming.split(name);
    if (target) return target;
    throw unknown(namespace, name);
  }
  const cached = ctx.route.indexes.get(ctx.sid, namespace);
  const found = cached && lookup(ctx, cached, namespace, name);
  // The request's signal is made only for a request that has to wait on upstreams.
  return found || relist(ctx, namespace, name, scope?.signal);
}

/** A miss may mean the upstream's list changed since it was cached: look once more. */
async function relist(ctx: SessionContext, namespace: Namespace, name: string, signal?: AbortSignal): Promise<Target> {
  const index = await buildIndex(ctx, namespace, signal);
  ctx.route.indexes.set(ctx.sid, namespace, index);
  const target = lookup(ctx, index, namespace, name);
  if (target) return target;
  throw unknown(namespace, name);
}

function lookup(ctx: SessionContext, index: NameIndex, namespace: Namespace, name: string): Target | undefined {
  const exact = index.exact.get(name);
  if (exact) return exact;
  if (namespace !== 'resources') return undefined;
  // A prefixed URI ("conditional" mode, where two backends offered the same one).
  const prefixed = ctx.route.naming.split(name);
  if (prefixed) return prefixed;
  for (const t of index.templates) if (t.pattern.test(name)) return { backend: t.backend, name };
  const owners = ctx.backendsWith('resources');
  return owners.length === 1 ? { backend: owners[0]!, name } : undefined;
}

async function buildIndex(ctx: SessionContext, namespace: Namespace, signal?: AbortSignal): Promise<NameIndex> {
  if (namespace !== 'resources') {
    const { index } = await listComplete(ctx, LIST_KINDS[`${namespace}/list`]!, signal);
    return { exact: index, templates: [] };
  }
  const [resources, templates] = await Promise.all([
    listComplete(ctx, LIST_KINDS['resources/list']!, signal),
    listComplete(ctx, LIST_KINDS['resources/templates/list']!, signal),
  ]);
  const exact = new Map([...resources.index, ...templates.index]);
  return {
    exact,
    templates: [...templates.index].map(([, target]) => ({ pattern: templatePattern(target.name), backend: target.backend })),
  };
}

function unknown(namespace: Namespace, name: string): JsonRpcError {
  if (namespace === 'resources') return new JsonRpcError(ErrorCode.ResourceNotFound, `Resource not found: ${name}`, { uri: name });
  return new JsonRpcError(ErrorCode.InvalidParams, `Unknown ${namespace === 'tools' ? 'tool' : 'prompt'}: ${name}`);
}
