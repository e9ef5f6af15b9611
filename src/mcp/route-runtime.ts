import type { BackendIR, RouteIR } from '../ir/types.ts';
import type { AuditLog } from '../security/audit.ts';
import { Authenticator, type OutboundFetch } from '../security/authn/authenticator.ts';
import { RouteAuthorizer } from '../security/authz/authorizer.ts';
import { IndexCache } from './federation/index-cache.ts';
import type { BackendGuard } from './guard/backend-guard.ts';
import type { Guards } from './guard/guards.ts';
import { Naming } from './federation/naming.ts';

/** A route with everything the hot path needs precomputed once per config load. */
export interface RouteRuntime {
  readonly ir: RouteIR;
  /** "listener/route": binds session tokens to the route that issued them. */
  readonly key: string;
  readonly naming: Naming;
  readonly backends: ReadonlyMap<string, BackendIR>;
  readonly backendNames: ReadonlySet<string>;
  /** Name indexes for prefix modes that route by listing; dropped with the route on reload. */
  readonly indexes: IndexCache;
  /** Absent: the route takes anonymous callers. */
  readonly authenticator: Authenticator | undefined;
  readonly authorizer: RouteAuthorizer;
  /** Defences against each backend as a hostile server (shared with other routes, kept across reloads). */
  readonly guards: ReadonlyMap<string, BackendGuard>;
  /** Aborts when a reload replaces the configuration the route was compiled from: what lasts (server streams) ends with it. */
  readonly retired: AbortSignal;
}

/** Sessions whose name indexes one route keeps. */
const INDEXED_SESSIONS = 10_000;

export function compileRoute(route: RouteIR, audit: AuditLog | undefined, fetchJson: OutboundFetch, guards: Guards, retired: AbortSignal): RouteRuntime {
  const names = route.backends.map((b) => b.name);
  return {
    ir: route,
    key: `${route.listener}/${route.name}`,
    naming: new Naming(route.naming, names),
    backends: new Map(route.backends.map((b) => [b.name, b])),
    backendNames: new Set(names),
    indexes: new IndexCache(INDEXED_SESSIONS),
    authenticator: route.authentication && new Authenticator(route.authentication, route.oauth, fetchJson),
    authorizer: new RouteAuthorizer(`${route.listener}/${route.name}`, route.authorization, route.backends, audit),
    guards: new Map(route.backends.map((b) => [b.name, guards.for(b)])),
    retired,
  };
}
