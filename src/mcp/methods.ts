import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import { andThen, type MaybePromise } from '../util/maybe-promise.ts';
import type { JsonRpcErrorObject, JsonRpcRequest } from '../jsonrpc/message.ts';
import { call } from './federation/exchange.ts';
import { LIST_KINDS, listFederated, screenTools } from './federation/lists.ts';
import { resolveTarget, type Namespace } from './federation/router.ts';
import type { Target } from './federation/naming.ts';
import type { BackendGuard } from './guard/backend-guard.ts';
import type { AuthzRequest } from '../security/authz/request.ts';
import type { AuthzTarget, SessionContext } from './session-context.ts';
import { mapTaskIds, splitTaskId } from './tasks.ts';

/**
 * Rewrites a forwarded result (names back to their downstream form, a guard's redactions).
 * Returning the same object means "unchanged": the upstream's bytes are passed on as they are,
 * unless the reply says they must not be. `sourceChars`: the length of the JSON text of the
 * message the result came in.
 */
export type ResultMapper = (result: Record<string, unknown>, sourceChars: number) => MaybePromise<Record<string, unknown>>;

/** A result the gateway composed itself, or the upstream's messages to pass on. */
export type Reply =
  | { readonly kind: 'result'; readonly result: Record<string, unknown> }
  | {
      readonly kind: 'forward';
      readonly backend: string;
      /** The request as the backend is to receive it. */
      readonly request: JsonRpcRequest;
      /** Headers for this request only: what an external authorizer injects. */
      readonly headers?: Record<string, string> | undefined;
      /** Absent: the final response passes through byte for byte. */
      readonly mapResult?: ResultMapper;
      /**
       * A guard inspects the reply: its result through mapResult, its error through
       * screenError, and what goes out is the gateway's encoding of what they saw, never the
       * upstream's bytes. Those may say more than their parse (a duplicate key whose first
       * value a client's parser keeps, padding past the size cap).
       */
      readonly screenError?: (error: JsonRpcErrorObject) => JsonRpcErrorObject;
      /** What the route's authorizer decided on, for the call's audit record; absent when nothing audits or authorizes. */
      readonly facts?: AuthzRequest;
    };

/** A handler's hold on its request: `signal` aborts when the client cancels it (made when first read). */
export interface RequestScope {
  readonly signal: AbortSignal;
}

export type MethodHandler = (ctx: SessionContext, request: JsonRpcRequest, scope: RequestScope) => MaybePromise<Reply>;

const result = (r: Record<string, unknown>): Reply => ({ kind: 'result', result: r });

/**
 * Sends a request on to the backend that owns it, once the route and the backend allow
 * it. `subject` is what the request names (tool, prompt, resource) for the policies.
 */
function forward(
  ctx: SessionContext,
  request: JsonRpcRequest,
  target: Target,
  params: Record<string, unknown>,
  subject: AuthzTarget | undefined,
  mapResult?: ResultMapper,
  guard?: BackendGuard,
): MaybePromise<Reply> {
  const args = request.method === 'tools/call' || request.method === 'prompts/get' ? (params.arguments ?? {}) : undefined;
  const facts = ctx.forwardFacts(request.method, target.backend, subject, args);
  const send = (injected: Record<string, string> | undefined): Reply => ({
    kind: 'forward',
    backend: target.backend,
    request: { jsonrpc: '2.0', id: request.id, method: request.method, params },
    headers: injected,
    mapResult,
    screenError: guard?.screenError,
    facts,
  });
  return andThen(facts && ctx.route.authorizer.check(facts), send);
}

function requireString(params: Record<string, unknown> | undefined, field: string): string {
  const value = params?.[field];
  if (typeof value !== 'string') throw new JsonRpcError(ErrorCode.InvalidParams, `params.${field} must be a string`);
  return value;
}

/** Routes a request that names one tool, prompt or resource to the backend that owns it. */
function byName(namespace: Namespace, field: 'name' | 'uri'): MethodHandler {
  const kind = SUBJECT_KIND[namespace];
  return (ctx, request, scope) => {
    const name = requireString(request.params, field);
    return andThen(resolveTarget(ctx, namespace, name, scope), (target) => {
      // A task-augmented call answers with a task whose id must be routable later; a plain one passes through untouched.
      const taskIds: ResultMapper | undefined = request.params?.task === undefined ? undefined : (r) => mapTaskIds(ctx.route.naming, target.backend, r);
      const guard = namespace === 'tools' ? ctx.route.guards.get(target.backend) : undefined;
      const send = (): MaybePromise<Reply> => {
        guard?.checkCall(target.name, request.params?.arguments ?? {});
        const mapResult = guard ? inspectedThen(guard, name, taskIds) : taskIds;
        return forward(ctx, request, target, { ...request.params, [field]: target.name }, { kind, name: target.name, downstreamName: name }, mapResult, guard);
      };
      // Arguments are checked against the definition the guard screened: learn it first if it is new.
      return guard?.config.validateArguments && !guard.knows(target.name) ? screenTools(ctx, target.backend, scope.signal).then(send) : send();
    });
  };
}

const SUBJECT_KIND = { tools: 'tool', prompts: 'prompt', resources: 'resource' } as const;

/**
 * tasks/get, tasks/result, tasks/cancel: to the backend that minted the task. A task's result
 * is a tool call's, deferred: its backend's guard inspects it as it would have the call's.
 */
const byTask: MethodHandler = async (ctx, request) => {
  const target = splitTaskId(ctx.route.naming, request.params?.taskId);
  const taskIds: ResultMapper = (r) => mapTaskIds(ctx.route.naming, target.backend, r);
  const guard = request.method === 'tasks/result' ? ctx.route.guards.get(target.backend) : undefined;
  const mapResult = guard ? inspectedThen(guard, `result of task ${String(request.params?.taskId)}`, taskIds) : taskIds;
  return forward(ctx, request, target, { ...request.params, taskId: target.name }, undefined, mapResult, guard);
};

/** The guard's inspection of a result (`label` names it in logs and for a guardrail), then `next` on what it let through. */
function inspectedThen(guard: BackendGuard, label: string, next: ResultMapper | undefined): ResultMapper {
  return (r, sourceChars) => {
    const inspected = guard.inspectResult(label, r, sourceChars);
    return next ? andThen(inspected, (checked) => next(checked, sourceChars)) : inspected;
  };
}

const readResource: MethodHandler = async (ctx, request, scope) => {
  const uri = requireString(request.params, 'uri');
  const target = await resolveTarget(ctx, 'resources', uri, scope);
  // The contents name the URI the upstream knows; the client asked for the downstream one.
  const mapResult: ResultMapper = (r) => {
    if (!Array.isArray(r.contents) || target.name === uri) return r;
    return { ...r, contents: r.contents.map((c: Record<string, unknown>) => (c.uri === target.name ? { ...c, uri } : c)) };
  };
  return forward(ctx, request, target, { ...request.params, uri: target.name }, { kind: 'resource', name: target.name, downstreamName: uri }, mapResult);
};

const complete: MethodHandler = async (ctx, request, scope) => {
  const ref = request.params?.ref as Record<string, unknown> | undefined;
  if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
    const target = await resolveTarget(ctx, 'prompts', ref.name, scope);
    return forward(ctx, request, target, { ...request.params, ref: { ...ref, name: target.name } }, { kind: 'prompt', name: target.name, downstreamName: ref.name });
  }
  if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
    const target = await resolveTarget(ctx, 'resources', ref.uri, scope);
    return forward(ctx, request, target, { ...request.params, ref: { ...ref, uri: target.name } }, { kind: 'resource', name: target.name, downstreamName: ref.uri });
  }
  throw new JsonRpcError(ErrorCode.InvalidParams, 'params.ref must be a ref/prompt with a name or a ref/resource with a uri');
};

const setLogLevel: MethodHandler = async (ctx, request, { signal }) => {
  const backends = ctx.backendsWith('logging');
  const settled = await Promise.allSettled(backends.map((b) => call(ctx, b, 'logging/setLevel', request.params, signal)));
  settled.forEach((s, i) => {
    if (s.status === 'rejected') ctx.logger.warn({ backend: backends[i], err: (s.reason as Error).message }, 'logging/setLevel failed for a backend');
  });
  return result({});
};

function list(method: string): MethodHandler {
  const kind = LIST_KINDS[method]!;
  return async (ctx, request, scope) => result(await listFederated(ctx, kind, request.params, scope.signal));
}

/** Methods whose handler authorizes against the backend and subject it routes to; the rest are authorized as a whole. */
export const ROUTED_METHODS: ReadonlySet<string> = new Set([
  'tools/call',
  'prompts/get',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'tasks/get',
  'tasks/result',
  'tasks/cancel',
]);

/** Every request method the gateway answers for an established session. */
export const METHODS: ReadonlyMap<string, MethodHandler> = new Map<string, MethodHandler>([
  ['ping', async () => result({})],
  ['tools/list', list('tools/list')],
  ['prompts/list', list('prompts/list')],
  ['resources/list', list('resources/list')],
  ['resources/templates/list', list('resources/templates/list')],
  ['tools/call', byName('tools', 'name')],
  ['prompts/get', byName('prompts', 'name')],
  ['resources/read', readResource],
  ['resources/subscribe', byName('resources', 'uri')],
  ['resources/unsubscribe', byName('resources', 'uri')],
  ['completion/complete', complete],
  ['logging/setLevel', setLogLevel],
  ['tasks/list', list('tasks/list')],
  ['tasks/get', byTask],
  ['tasks/result', byTask],
  ['tasks/cancel', byTask],
]);
