import { createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { hashApiKey } from '../security/authn/api-keys.ts';
import { compileAuthorization } from '../security/authz/compile.ts';
import type { AuthenticationIR, AuthorizationIR, BackendIR, GuardIR, GatewayIR, ListenerIR, OriginPolicyIR, RouteIR } from '../ir/types.ts';
import type { ConfigIssue } from './errors.ts';
import type { BackendConfig, Config } from './schema.ts';

export type CompileResult = { ok: true; ir: GatewayIR } | { ok: false; issues: ConfigIssue[] };

/**
 * Made once per process so that hot reloads of a config without a session key keep
 * accepting the sessions this process already issued.
 */
const processSessionSecret = randomBytes(32).toString('base64');

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]', '::1'];

/** Checks what the schema cannot (references, uniqueness) and builds the immutable IR. */
export function compileConfig(config: Config, source: string): CompileResult {
  const issues: ConfigIssue[] = [];
  // Relative file references (TLS material, JWKS) are relative to the config file.
  const baseDir = source.includes('/') ? dirname(source) : process.cwd();
  const backends = new Map<string, BackendIR>();
  config.backends.forEach((b, i) => {
    if (backends.has(b.name)) issues.push({ path: ['backends', i, 'name'], message: `duplicate backend name "${b.name}"` });
    backends.set(b.name, compileBackend(b, b.authorization && compileAuthorization(b.authorization, ['backends', i, 'authorization'], issues)));
  });

  const endpoints = new Set<string>();
  const listenerNames = new Set<string>();
  const listeners: ListenerIR[] = config.listeners.map((l, li) => {
    if (listenerNames.has(l.name)) issues.push({ path: ['listeners', li, 'name'], message: `duplicate listener name "${l.name}"` });
    listenerNames.add(l.name);
    const endpoint = `${l.host}:${l.port}`;
    if (l.port !== 0 && endpoints.has(endpoint)) issues.push({ path: ['listeners', li, 'port'], message: `another listener already uses ${endpoint}` });
    endpoints.add(endpoint);

    const paths = new Set<string>();
    const routeNames = new Set<string>();
    const routes: RouteIR[] = l.routes.map((r, ri) => {
      const at = ['listeners', li, 'routes', ri];
      if (routeNames.has(r.name)) issues.push({ path: [...at, 'name'], message: `duplicate route name "${r.name}"` });
      routeNames.add(r.name);
      for (const served of r.legacySse ? [r.path, `${r.path}/sse`, `${r.path}/message`] : [r.path]) {
        if (paths.has(served)) issues.push({ path: [...at, 'path'], message: `another route on this listener already serves ${served}` });
        paths.add(served);
      }
      const seen = new Set<string>();
      const routeBackends: BackendIR[] = [];
      r.backends.forEach((ref, bi) => {
        const backend = backends.get(ref);
        if (!backend) {
          const known = [...backends.keys()];
          issues.push({ path: [...at, 'backends', bi], message: `unknown backend "${ref}" (expected one of: ${known.length ? known.join(', ') : 'none defined'})` });
        } else if (seen.has(ref)) {
          issues.push({ path: [...at, 'backends', bi], message: `backend "${ref}" is listed twice` });
        } else {
          if (backend.name.includes(r.separator)) {
            issues.push({ path: [...at, 'backends', bi], message: `backend name "${ref}" contains the route's separator "${r.separator}"` });
          }
          routeBackends.push(backend);
        }
        seen.add(ref);
      });
      return {
        name: r.name,
        listener: l.name,
        path: r.path,
        backends: routeBackends,
        naming: { mode: r.toolPrefix, separator: r.separator },
        failureMode: r.failureMode,
        stateless: r.stateless,
        legacySse: r.legacySse,
        origin: compileOriginPolicy(l.host, r.allowedOrigins, r.allowedHosts),
        authentication: r.authentication && compileAuthentication(r.authentication, baseDir, [...at, 'authentication'], issues),
        oauth: r.oauth && {
          resource: r.oauth.resource,
          authorizationServers: r.oauth.authorizationServers,
          scopesSupported: r.oauth.scopesSupported,
          requiredScopes: r.oauth.requiredScopes,
          metadataPath: `/.well-known/oauth-protected-resource${r.path}`,
        },
        authorization: r.authorization && compileAuthorization(r.authorization, [...at, 'authorization'], issues),
      };
    });
    if (l.routes.some((r) => r.authentication?.mtls) && !l.tls?.clientCaFile) {
      issues.push({ path: ['listeners', li, 'tls'], message: 'a route uses mtls authentication: the listener needs tls.clientCaFile' });
    }
    const tls = l.tls && {
      cert: readConfigFile(l.tls.certFile, baseDir, ['listeners', li, 'tls', 'certFile'], issues),
      key: readConfigFile(l.tls.keyFile, baseDir, ['listeners', li, 'tls', 'keyFile'], issues),
      ca: l.tls.clientCaFile === undefined ? undefined : readConfigFile(l.tls.clientCaFile, baseDir, ['listeners', li, 'tls', 'clientCaFile'], issues),
      requireClientCert: l.tls.requireClientCert,
    };
    return { name: l.name, host: l.host, port: l.port, tls, routes };
  });

  if (config.state.redis && !config.session.key) {
    issues.push({ path: ['session', 'key'], message: 'replicas sharing Redis need the same session.key: set it (a key made up per process would make every other replica reject the sessions)' });
  }
  if (issues.length > 0) return { ok: false, issues };
  const secrets = config.session.key ? [config.session.key, ...config.session.previousKeys] : [processSessionSecret];
  return {
    ok: true,
    ir: {
      source,
      listeners,
      backends,
      admin: config.admin.enabled ? { host: config.admin.host, port: config.admin.port } : null,
      session: { keys: secrets.map(deriveSessionKey), generated: !config.session.key, ttlMs: config.session.ttl },
      limits: {
        maxBodyBytes: config.limits.maxBodyBytes,
        maxHeaderBytes: config.limits.maxHeaderBytes,
        maxHeaders: config.limits.maxHeaders,
        headersTimeoutMs: config.limits.headersTimeout,
        requestTimeoutMs: config.limits.requestTimeout,
        maxConnections: config.limits.maxConnections,
        streamIdleTimeoutMs: config.limits.streamIdleTimeout,
        maxLineBytes: config.limits.maxLineBytes,
        shutdownGraceMs: config.limits.shutdownGrace,
      },
      state: {
        redisUrl: config.state.redis?.url,
        events: { maxEventsPerStream: config.state.events.maxPerStream, ttlMs: config.state.events.ttl, maxMemoryBytes: config.state.events.maxMemoryBytes },
      },
      trustedProxies: config.trustedProxies,
      outbound: { schemes: config.outbound.schemes, allowedRanges: config.outbound.allowedRanges, maxRedirects: config.outbound.maxRedirects, timeoutMs: config.outbound.timeout },
      audit: config.audit && { destination: config.audit.destination, maxBuffered: config.audit.maxBuffered },
      logLevel: config.logging.level,
    },
  };
}

function compileBackend(b: BackendConfig, authorization: AuthorizationIR | undefined): BackendIR {
  if (b.transport === 'stdio') {
    return {
      name: b.name,
      transport: 'stdio',
      command: b.command,
      args: b.args,
      env: b.env,
      cwd: b.cwd,
      scope: b.scope,
      idleTimeoutMs: b.idleTimeout,
      timeoutMs: b.timeout,
      restart: { initialDelayMs: b.restart.initialDelay, maxDelayMs: b.restart.maxDelay, maxRestarts: b.restart.maxRestarts },
      authorization,
      guard: compileGuard(b.guard),
    };
  }
  const url = new URL(b.url);
  return { name: b.name, transport: b.transport, url, origin: url.origin, path: url.pathname + url.search, headers: b.headers ?? {}, passthrough: b.passthrough, timeoutMs: b.timeout, authorization, guard: compileGuard(b.guard) };
}

function compileGuard(g: BackendConfig['guard']): GuardIR {
  return {
    pinning: g.pinning,
    pins: g.pins,
    hygiene: g.hygiene,
    validateArguments: g.validateArguments,
    results: {
      maxBytes: g.results.maxBytes,
      redact: g.results.redact,
      guardrail: g.results.guardrail && { url: new URL(g.results.guardrail.url), timeoutMs: g.results.guardrail.timeout, failMode: g.results.guardrail.failMode },
    },
  };
}

type AuthenticationConfig = NonNullable<Config['listeners'][number]['routes'][number]['authentication']>;

function compileAuthentication(a: AuthenticationConfig, baseDir: string, at: Array<string | number>, issues: ConfigIssue[]): AuthenticationIR {
  return {
    mode: a.mode,
    jwt: a.jwt?.issuers.map((i, n) => ({
      issuer: i.issuer,
      audiences: i.audiences,
      jwksUrl: i.jwksUrl === undefined ? undefined : new URL(i.jwksUrl),
      jwks: i.jwksFile === undefined ? undefined : readJwks(i.jwksFile, baseDir, [...at, 'jwt', 'issuers', n, 'jwksFile'], issues),
      algorithms: i.algorithms,
      clockToleranceSec: Math.floor(i.clockTolerance / 1000),
    })),
    apiKeys: a.apiKeys && {
      header: a.apiKeys.header,
      keys: a.apiKeys.keys.map((k) => ({ name: k.name, sha256: k.key !== undefined ? hashApiKey(k.key) : Buffer.from(k.sha256!, 'hex'), attributes: k.attributes })),
    },
    mtls: a.mtls,
  };
}

function readConfigFile(file: string, baseDir: string, path: Array<string | number>, issues: ConfigIssue[]): Buffer {
  try {
    return readFileSync(resolve(baseDir, file));
  } catch (err) {
    issues.push({ path, message: `cannot read ${resolve(baseDir, file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    return Buffer.alloc(0);
  }
}

function readJwks(file: string, baseDir: string, path: Array<string | number>, issues: ConfigIssue[]): { keys: object[] } | undefined {
  const text = readConfigFile(file, baseDir, path, issues);
  if (text.length === 0) return undefined;
  try {
    const doc = JSON.parse(text.toString('utf8')) as { keys?: unknown };
    if (Array.isArray(doc.keys)) return { keys: doc.keys as object[] };
  } catch {
    // reported below
  }
  issues.push({ path, message: 'expected a JWKS document: {"keys": [...]}' });
  return undefined;
}

/** Any secret string becomes a uniform AES-256 key; derived once here, never per request. */
export function deriveSessionKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, 'switchboard/session-token', 'aes-256-gcm v1', 32)));
}

function compileOriginPolicy(listenerHost: string, origins: string[] | undefined, hosts: string[] | undefined): OriginPolicyIR {
  const loopbackListener = LOOPBACK_HOSTS.includes(listenerHost.toLowerCase());
  const allowedHosts = hosts
    ? new Set(hosts.map((h) => h.toLowerCase()))
    : loopbackListener
      ? new Set(LOOPBACK_HOSTS)
      : null;
  if (origins?.includes('*')) return { allowedOrigins: null, allowLoopbackOrigins: true, allowedHosts };
  return { allowedOrigins: new Set(origins ?? []), allowLoopbackOrigins: origins === undefined, allowedHosts };
}
