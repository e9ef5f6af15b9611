/** MCP protocol revisions the gateway speaks, newest first; the first is offered by default. */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;
export const LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[0];

const supported: ReadonlySet<string> = new Set(SUPPORTED_PROTOCOL_VERSIONS);

/** Revisions whose clients may POST a JSON-RPC batch: 2025-03-26 brought batches, 2025-06-18 took them out. */
export const BATCHING_VERSIONS: ReadonlySet<string> = new Set(['2025-03-26']);

export function isSupportedVersion(version: string): boolean {
  return supported.has(version);
}

/** The client's version when we speak it, else our latest (the client then decides whether to go on). */
export function negotiateVersion(requested: unknown): string {
  return typeof requested === 'string' && supported.has(requested) ? requested : LATEST_PROTOCOL_VERSION;
}

/** The server features a client can use, as named in initialize capabilities. */
export const FEATURES = ['tools', 'prompts', 'resources', 'completions', 'logging', 'tasks'] as const;
export type Feature = (typeof FEATURES)[number];

export const GATEWAY_INFO = { name: 'switchboard', title: 'Switchboard MCP gateway', version: '0.1.0' } as const;
