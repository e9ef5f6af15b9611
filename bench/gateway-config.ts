/**
 * Gateway configurations the scenarios run, as config documents (src/config/schema.ts).
 * Every one has a listener named "bench" on 127.0.0.1, an ephemeral port, and one route at
 * /mcp federating the given backends with the default prefix mode ("always": a backend's
 * tool `t` is `<backend>__t`).
 */
import type { ConfigInput } from '../src/config/schema.ts';

type Backend = NonNullable<ConfigInput['backends']>[number];
type Route = ConfigInput['listeners'][number]['routes'][number];

export const LISTENER = 'bench';

export function gatewayConfig(backends: Backend[], options: { route?: Partial<Route>; top?: Partial<ConfigInput> } = {}): ConfigInput {
  return {
    listeners: [{ name: LISTENER, host: '127.0.0.1', port: 0, routes: [{ name: 'mcp', path: '/mcp', backends: backends.map((b) => b.name), ...options.route }] }],
    backends,
    admin: { enabled: false },
    ...options.top,
  };
}

export function httpBackend(name: string, url: string): Backend {
  return { name, transport: 'streamable-http', url };
}

/** One process shared by every session, started with the gateway. */
export function stdioBackend(name: string, command: string, args: string[]): Backend {
  return { name, transport: 'stdio', command, args, scope: 'shared' };
}

export interface PolicyStack {
  issuer: string;
  audience: string;
  subject: string;
  jwksUrl: string;
  /** The tool the client may call, as the backend knows it. */
  allowedTool: string;
  auditFile: string;
  /** Rules in all, the last one the allow rule (default 20). */
  rules?: number;
}

/**
 * The route and top-level parts of the policy stack: JWT authentication against a JWKS URL
 * on loopback (so the SSRF guard must allow http to 127.0.0.1), `rules - 1` CEL deny rules
 * about other tools (each evaluated on every checked message) and one allow rule for the
 * bench's client, and the audit log written to a file.
 */
export function policyStack(p: PolicyStack): { route: Partial<Route>; top: Partial<ConfigInput> } {
  const denies = Array.from({ length: (p.rules ?? 20) - 1 }, (_, i) => ({
    name: `deny-${String(i + 1).padStart(2, '0')}`,
    action: 'deny' as const,
    when: `mcp.method == "tools/call" && mcp.tool.name == "forbidden_${i + 1}"`,
  }));
  return {
    route: {
      authentication: { jwt: { issuers: [{ issuer: p.issuer, audiences: [p.audience], jwksUrl: p.jwksUrl, algorithms: ['ES256'] }] } },
      authorization: {
        rules: [
          ...denies,
          {
            name: 'bench-client',
            action: 'allow',
            mcp: { baseProtocol: 'match', methods: [{ name: 'tools/call', params: [p.allowedTool] }] },
            when: `jwt.sub == "${p.subject}" && jwt.iss == "${p.issuer}"`,
          },
        ],
      },
    },
    top: {
      outbound: { schemes: ['http'], allowedRanges: ['127.0.0.1/32'] },
      audit: { destination: { file: p.auditFile } },
    },
  };
}
