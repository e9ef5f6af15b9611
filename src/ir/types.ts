/**
 * The one internal model the data plane runs on. The config file and (later) Kubernetes
 * resources are translators into it; nothing downstream reads user config directly.
 * Every IR object is immutable after compilation: a request takes one snapshot and
 * keeps it to the end, while a reload builds a new one.
 */

export interface RemoteBackendIR {
  readonly name: string;
  readonly transport: 'streamable-http' | 'sse';
  readonly url: URL;
  /** Static headers sent on every upstream request (the backend's own credentials). */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
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
}

export interface ListenerIR {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly routes: readonly RouteIR[];
}

export interface SessionIR {
  /** Derived AES-256 keys; the first seals, all open (rotation). */
  readonly keys: readonly Buffer[];
  /** True when no key was configured and the process made one up: sessions die with the process. */
  readonly generated: boolean;
  readonly ttlMs: number;
}

export interface LimitsIR {
  readonly maxBodyBytes: number;
  readonly maxLineBytes: number;
  readonly shutdownGraceMs: number;
}

export interface StateIR {
  /** Shared state for replicas; absent: in memory. */
  readonly redisUrl: string | undefined;
  readonly events: { readonly maxEventsPerStream: number; readonly ttlMs: number };
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
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
}
