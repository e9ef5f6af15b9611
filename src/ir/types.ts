import type { KeyObject } from 'node:crypto';
import type { CompiledCel } from '../security/cel.ts';

/**
 * The one internal model the data plane runs on. The config file and (later) Kubernetes
 * resources are translators into it; nothing downstream reads user config directly.
 * Every IR object is immutable after compilation: a request takes one snapshot and
 * keeps it to the end, while a reload builds a new one.
 */

export interface GuardIR {
  readonly pinning: 'off' | 'warn' | 'enforce';
  readonly pins: ReadonlyArray<{ readonly tool: string; readonly sha256: string }>;
  readonly hygiene: { readonly mode: 'off' | 'flag' | 'reject'; readonly maxDescriptionChars: number; readonly maxDefinitionBytes: number };
  readonly validateArguments: boolean;
  readonly results: {
    readonly maxBytes: number;
    readonly redact: { readonly builtins: readonly string[]; readonly patterns: ReadonlyArray<{ readonly name: string; readonly regex: string }> };
    readonly guardrail: { readonly url: URL; readonly timeoutMs: number; readonly failMode: 'failOpen' | 'failClosed' } | undefined;
  };
}

export interface RemoteBackendIR {
  readonly name: string;
  readonly transport: 'streamable-http' | 'sse';
  readonly url: URL;
  /** `url`'s origin and its path with the query, worked out once: every upstream request needs them. */
  readonly origin: string;
  readonly path: string;
  /** Static headers sent on every upstream request (the backend's own credentials). */
  readonly headers: Readonly<Record<string, string>>;
  /** Forward the client's bearer token (explicitly configured; the MCP spec forbids it by default). */
  readonly passthrough: boolean;
  readonly timeoutMs: number;
  readonly authorization: AuthorizationIR | undefined;
  readonly guard: GuardIR;
}

export interface StdioBackendIR {
  readonly name: string;
  readonly transport: 'stdio';
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | undefined;
  readonly scope: 'session' | 'shared';
  readonly idleTimeoutMs: number;
  readonly timeoutMs: number;
  readonly restart: { readonly initialDelayMs: number; readonly maxDelayMs: number; readonly maxRestarts: number };
  readonly authorization: AuthorizationIR | undefined;
  readonly guard: GuardIR;
}

export type BackendIR = RemoteBackendIR | StdioBackendIR;

export type PrefixMode = 'always' | 'conditional' | 'never';

export interface NamingIR {
  readonly mode: PrefixMode;
  readonly separator: string;
}

/** Decides whether a browser-originated or rebinding request may reach the route. */
export interface OriginPolicyIR {
  /** null: any Origin. */
  readonly allowedOrigins: ReadonlySet<string> | null;
  readonly allowLoopbackOrigins: boolean;
  /** null: any Host. Lower-case host names without port. */
  readonly allowedHosts: ReadonlySet<string> | null;
}

export interface JwtIssuerIR {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwksUrl: URL | undefined;
  readonly jwks: { readonly keys: readonly object[] } | undefined;
  readonly algorithms: readonly string[];
  readonly clockToleranceSec: number;
}

export interface ApiKeyIR {
  readonly name: string;
  readonly sha256: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface AuthenticationIR {
  readonly mode: 'strict' | 'optional';
  readonly jwt: readonly JwtIssuerIR[] | undefined;
  readonly apiKeys: { readonly header: string; readonly keys: readonly ApiKeyIR[] } | undefined;
  readonly mtls: { readonly required: boolean } | undefined;
}

export interface OAuthIR {
  readonly resource: string;
  readonly authorizationServers: readonly string[];
  readonly scopesSupported: readonly string[];
  readonly requiredScopes: readonly string[];
  /** Where the metadata is served: /.well-known/oauth-protected-resource<route path>. */
  readonly metadataPath: string;
}

/**
 * Authorization in the shape of kube-agentic-networking's XAccessPolicy: rules in a policy
 * OR, policies on a target AND, deny policies veto. A target is a route (Gateway level) or
 * a backend (XBackend level); the route is decided first.
 */
export interface AccessRuleIR {
  readonly name: string;
  /** SPIFFE ids the caller must have one of (ServiceAccounts are mapped at compile); undefined: any caller. */
  readonly sources: ReadonlySet<string> | undefined;
  /** Inline MCP match; undefined: any method. */
  readonly mcp: McpMatchIR | undefined;
  /** CEL condition; undefined: always. */
  readonly cel: CompiledCel | undefined;
}

export interface McpMatchIR {
  /** Method names; for tools/call, prompts/get and resources/read `params` names the tools, prompts or URIs (undefined: any). */
  readonly methods: ReadonlyArray<{ readonly name: string; readonly params: ReadonlySet<string> | undefined }>;
  /**
   * match: this rule also allows the base protocol (initialize, ping, tools/list,
   * completion/*, logging/*, notifications/*); skip: it does not, unless `methods` is empty.
   */
  readonly baseProtocol: 'skip' | 'match';
}

export interface AccessPolicyIR {
  readonly name: string;
  /** allow: some rule must match; deny: a matching rule denies. */
  readonly action: 'allow' | 'deny';
  readonly rules: readonly AccessRuleIR[];
}

export interface ExtAuthzIR {
  readonly url: URL;
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  readonly cacheTtlMs: number | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly allowedResponseHeaders: readonly string[];
}

export interface AuthorizationIR {
  readonly policies: readonly AccessPolicyIR[];
  readonly externalAuth: ExtAuthzIR | undefined;
  /** Answer a forbidden tool as unknown, hiding that it exists. */
  readonly hideForbidden: boolean;
}

export interface TlsIR {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
  readonly requireClientCert: boolean;
}

export interface RouteIR {
  readonly name: string;
  readonly listener: string;
  readonly path: string;
  readonly backends: readonly BackendIR[];
  readonly naming: NamingIR;
  readonly failureMode: 'failOpen' | 'failClosed';
  readonly stateless: boolean;
  /** Also serve `<path>/sse` and `<path>/message` (the 2024-11-05 transport). */
  readonly legacySse: boolean;
  readonly origin: OriginPolicyIR;
  readonly authentication: AuthenticationIR | undefined;
  readonly oauth: OAuthIR | undefined;
  readonly authorization: AuthorizationIR | undefined;
}

export interface ListenerIR {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly tls: TlsIR | undefined;
  readonly routes: readonly RouteIR[];
}

export interface SessionIR {
  /** Derived AES-256 keys, as key objects made once; the first seals, all open (rotation). */
  readonly keys: readonly KeyObject[];
  /** True when no key was configured and the process made one up: sessions die with the process. */
  readonly generated: boolean;
  readonly ttlMs: number;
}

export interface LimitsIR {
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
  readonly streamIdleTimeoutMs: number;
  readonly maxLineBytes: number;
  readonly shutdownGraceMs: number;
}

export interface StateIR {
  /** Shared state for replicas; absent: in memory. */
  readonly redisUrl: string | undefined;
  readonly events: { readonly maxEventsPerStream: number; readonly ttlMs: number; readonly maxMemoryBytes: number };
}

export interface GatewayIR {
  /** Where this configuration came from: a file path or "embedded". */
  readonly source: string;
  readonly listeners: readonly ListenerIR[];
  readonly backends: ReadonlyMap<string, BackendIR>;
  readonly admin: { readonly host: string; readonly port: number } | null;
  readonly session: SessionIR;
  readonly limits: LimitsIR;
  readonly state: StateIR;
  readonly trustedProxies: readonly string[];
  readonly outbound: { readonly schemes: readonly string[]; readonly allowedRanges: readonly string[]; readonly maxRedirects: number; readonly timeoutMs: number };
  readonly audit: { readonly destination: 'stdout' | { readonly file: string }; readonly maxBuffered: number } | undefined;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
}
