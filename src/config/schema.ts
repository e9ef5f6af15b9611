import { z } from 'zod';
import { FRAMING_HEADERS, hasLineBreak, isToken } from '../http/fields.ts';
import { parseDuration } from './duration.ts';

/**
 * The configuration file's schema: the user-facing shape, validated at load time only.
 * compile.ts turns a validated document into the IR the data plane runs on.
 */

const duration = z
  .union([z.string(), z.number()])
  .refine((v) => parseDuration(v) !== undefined, { message: 'expected a duration such as "500ms", "30s", "5m" or a number of milliseconds' })
  .transform((v) => parseDuration(v)!)
  .describe('A duration: "500ms", "30s", "5m", "1h", or milliseconds as a number');

const name = z
  .string()
  .regex(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]|_(?!_))*$/, 'expected letters, digits, "-" and single "_" (a double "_" separates backend and tool names)')
  .max(64);

const port = z.number().int().min(0).max(65535);

const headers = z
  .record(z.string(), z.string())
  .superRefine((value, ctx) => {
    for (const [name, text] of Object.entries(value)) {
      if (!isToken(name)) ctx.addIssue({ code: 'custom', path: [name], message: "expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)" });
      else if (FRAMING_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [name], message: 'this header frames the request or the connection: the gateway writes it itself' });
      if (hasLineBreak(text)) ctx.addIssue({ code: 'custom', path: [name], message: 'expected a header value on one line (no CR, LF or NUL)' });
    }
  })
  .describe('HTTP headers sent to the upstream, e.g. credentials from ${ENV} or ${file:/path} references');

const accessRuleFields = {
  name,
  source: z
    .strictObject({
      spiffe: z.array(z.string().regex(/^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'expected spiffe://<trust-domain>/<path>')).default([]),
      serviceAccounts: z.array(z.strictObject({ namespace: z.string().min(1), name: z.string().min(1) })).default([]),
    })
    .optional()
    .describe('Callers this rule is about, by SPIFFE id (mTLS); ServiceAccounts map to spiffe://<trustDomain>/ns/<namespace>/sa/<name>'),
  mcp: z
    .strictObject({
      methods: z
        .array(
          z.strictObject({
            name: z.string().min(1).describe('An MCP method (tools/call, prompts/get, ...) or a category: tools, prompts, resources'),
            params: z.array(z.string().min(1)).optional().describe('For tools/call the tool names, for prompts/get the prompt names, for resource methods the URIs, as the backend knows them'),
          }),
        )
        .default([]),
      baseProtocol: z
        .enum(['skip', 'match'])
        .default('skip')
        .describe('match: this rule also allows the base protocol (initialize, ping, tools/list, completion/*, logging/*, notifications/*); skip: it does not (unless methods is empty)'),
    })
    .optional(),
  when: z.string().min(1).optional().describe('A CEL condition over source, jwt, apiKey, request, mcp (see docs/policy.md)'),
};

const authorizationSchema = z
  .strictObject({
    hideForbidden: z.boolean().default(false).describe('Answer a forbidden tool as "Unknown tool" instead of "Access to this tool is forbidden."'),
    trustDomain: z.string().default('cluster.local').describe('SPIFFE trust domain for serviceAccount sources'),
    rules: z
      .array(z.strictObject({ ...accessRuleFields, action: z.enum(['allow', 'deny', 'require']).default('allow') }))
      .default([])
      .describe('deny rules veto; every require rule must match; one allow rule must match. Once any rule is set, anything not allowed is denied'),
    policies: z
      .array(
        z.strictObject({
          name,
          action: z.enum(['allow', 'deny']).default('allow'),
          rules: z.array(z.strictObject(accessRuleFields)).min(1),
        }),
      )
      .default([])
      .describe('XAccessPolicy-shaped policies: rules OR within a policy, policies AND'),
    externalAuth: z
      .strictObject({
        url: z.url({ protocol: /^https?$/ }),
        timeout: duration.default(1_000),
        failOpen: z.boolean().default(false).describe('Allow when the authorizer cannot be reached. Default: deny (fail closed)'),
        cacheTtl: duration.optional().describe('Cache decisions this long (off unless set)'),
        headers: headers.optional(),
        allowedResponseHeaders: z.array(z.string()).default([]),
      })
      .optional()
      .describe('An ext_authz-style HTTP authorizer consulted before the policies'),
  })
  .describe('Who may do what, down to the single tool and its arguments');

const guardSchema = z
  .strictObject({
    pinning: z
      .enum(['off', 'warn', 'enforce'])
      .default('warn')
      .describe('Tool definition pinning: a tool whose definition changes after first sight is reported (warn) or hidden and uncallable until approved (enforce)'),
    pins: z.array(z.strictObject({ tool: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) })).default([]).describe('Approved definitions (sha256 of the canonical definition)'),
    hygiene: z
      .strictObject({
        mode: z.enum(['off', 'flag', 'reject']).default('flag').describe('Invisible or bidirectional Unicode and oversized definitions: logged (flag) or the tool is dropped (reject)'),
        maxDescriptionChars: z.number().int().min(1).default(4096),
        maxDefinitionBytes: z.number().int().min(256).default(65_536),
      })
      .prefault({}),
    validateArguments: z.boolean().default(true).describe('Check tools/call arguments against the tool\'s inputSchema before the call leaves the gateway'),
    results: z
      .strictObject({
        maxBytes: z.number().int().min(1024).default(8 * 1024 * 1024).describe('A larger tool result is replaced by an error result'),
        redact: z
          .strictObject({
            builtins: z.array(z.string()).default(['private-key', 'jwt', 'github-token', 'slack-token', 'aws-access-key-id']),
            patterns: z.array(z.strictObject({ name: z.string().min(1), regex: z.string().min(1) })).default([]),
          })
          .prefault({}),
        guardrail: z
          .strictObject({ url: z.url({ protocol: /^https?$/ }), timeout: duration.default(2_000), failMode: z.enum(['failOpen', 'failClosed']).default('failClosed') })
          .optional()
          .describe('An external guardrail that sees each result and may allow, block or redact it'),
      })
      .prefault({}),
  })
  .prefault({})
  .describe('Defences against a hostile or compromised server');

const remoteBackendFields = {
  name,
  guard: guardSchema,
  authorization: authorizationSchema.optional().describe('Policies of this backend (XBackend level), decided after the route\'s'),
  url: z.url({ protocol: /^https?$/ }).describe('The upstream MCP endpoint'),
  headers: headers.optional(),
  passthrough: z
    .boolean()
    .default(false)
    .describe('Send the client\'s own bearer token to this backend. The MCP spec forbids token passthrough; use only for a backend that expects exactly the gateway\'s audience'),
  timeout: duration.default(30_000).describe('Per-request timeout towards this backend. Streamable HTTP: for the reply to start (time waiting for a pooled connection included) and for every gap between its chunks; legacy SSE: for the response'),
};

const streamableHttpBackend = z.strictObject({
  ...remoteBackendFields,
  transport: z.literal('streamable-http'),
});

const sseBackend = z.strictObject({
  ...remoteBackendFields,
  transport: z.literal('sse').describe('The legacy HTTP+SSE transport (MCP 2024-11-05): url is the SSE endpoint'),
});

const stdioBackend = z.strictObject({
  name,
  guard: guardSchema,
  authorization: authorizationSchema.optional().describe('Policies of this backend (XBackend level), decided after the route\'s'),
  transport: z.literal('stdio'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z
    .record(z.string(), z.string())
    .default({})
    .describe('Environment for the process; of the gateway\'s own it inherits only PATH, HOME, USER, LOGNAME, the locale, TERM, TMPDIR and TZ'),
  cwd: z.string().optional(),
  scope: z
    .enum(['session', 'shared'])
    .default('session')
    .describe('session: one process per client session, isolated, reaped when the session ends or idles; shared: one process for all sessions, started with the gateway (no server-to-client requests)'),
  idleTimeout: duration.default(10 * 60_000).describe('A session-scoped process unused this long is stopped (clients often leave without ending their session)'),
  timeout: duration.default(30_000),
  restart: z
    .strictObject({
      initialDelay: duration.default(200),
      maxDelay: duration.default(10_000),
      maxRestarts: z.number().int().min(0).default(5),
    })
    .prefault({}),
});

export const backendSchema = z.discriminatedUnion('transport', [streamableHttpBackend, sseBackend, stdioBackend]);

const jwtIssuerSchema = z
  .strictObject({
    issuer: z.string().min(1).describe('The exact "iss" of accepted tokens'),
    audiences: z.array(z.string().min(1)).min(1).describe('The token\'s "aud" must contain one of these'),
    jwksUrl: z.url({ protocol: /^https?$/ }).optional().describe('Where the issuer publishes its keys (cached, refreshed on an unknown key id, rate-limited)'),
    jwksFile: z.string().optional().describe('A JWKS document on disk, read at load'),
    algorithms: z.array(z.string().regex(/^(RS|PS|ES)(256|384|512)$|^EdDSA$/, 'expected an asymmetric JWS algorithm such as RS256, ES256 or EdDSA')).default(['RS256', 'ES256']),
    clockTolerance: duration.default(30_000).refine((ms) => ms <= 300_000, 'at most 5m'),
  })
  .refine((i) => (i.jwksUrl === undefined) !== (i.jwksFile === undefined), 'set exactly one of jwksUrl and jwksFile');

const apiKeySchema = z
  .strictObject({
    name: name.describe('Who holds the key: the identity\'s subject'),
    key: z.string().min(16).optional().describe('The key itself, usually from ${ENV} or ${file:...}; only its hash is kept'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits').optional().describe('The key\'s SHA-256, so the config never holds the key'),
    attributes: z.record(z.string(), z.string()).default({}),
  })
  .refine((k) => (k.key === undefined) !== (k.sha256 === undefined), 'set exactly one of key and sha256');

const authenticationSchema = z
  .strictObject({
    mode: z
      .enum(['strict', 'optional'])
      .default('strict')
      .describe('strict: every request needs a valid credential; optional: anonymous callers pass (a bad credential is still refused)'),
    jwt: z.strictObject({ issuers: z.array(jwtIssuerSchema).min(1) }).optional(),
    apiKeys: z
      .strictObject({
        header: z.string().regex(/^[a-z0-9-]+$/, 'expected a lower-case header name').default('x-api-key'),
        keys: z.array(apiKeySchema).min(1),
      })
      .optional(),
    mtls: z.strictObject({ required: z.boolean().default(true) }).optional().describe('Use the client certificate\'s SPIFFE id (the listener needs tls.clientCaFile)'),
  })
  .describe('Who may call this route; every request is authenticated, not only initialize');

const oauthSchema = z
  .strictObject({
    resource: z.url().describe('This route\'s public URL, the audience tokens are issued for'),
    authorizationServers: z.array(z.url()).min(1),
    scopesSupported: z.array(z.string()).default([]),
    requiredScopes: z.array(z.string()).default([]).describe('A token without all of these gets 403 insufficient_scope'),
  })
  .describe('MCP authorization: RFC 9728 protected resource metadata and WWW-Authenticate challenges');

const routeSchema = z.strictObject({
  name,
  path: z.string().regex(/^\/[\x21-\x7e]*$/, 'expected an absolute URL path such as "/mcp"'),
  backends: z.array(name).min(1).describe('Names of the backends federated behind this route'),
  toolPrefix: z
    .enum(['always', 'conditional', 'never'])
    .default('always')
    .describe('always: every tool is "backend__tool"; conditional: prefixed only when two backends share a name; never: names pass as they are and a clash is an error'),
  separator: z.string().min(1).max(8).default('__'),
  failureMode: z
    .enum(['failOpen', 'failClosed'])
    .default('failOpen')
    .describe('failOpen: lists leave out a failing backend (logged); failClosed: a failing backend fails the whole list'),
  stateless: z.boolean().default(false).describe('Each request stands alone: no session id is issued or required; upstream sessions last one request (no server-to-client requests, no GET stream)'),
  legacySse: z.boolean().default(false).describe('Also serve the legacy HTTP+SSE transport (MCP 2024-11-05) at <path>/sse and <path>/message for old clients'),
  authentication: authenticationSchema.optional(),
  oauth: oauthSchema.optional(),
  authorization: authorizationSchema.optional(),
  allowedOrigins: z.array(z.string()).optional().describe('Origins allowed to call this route; requests without Origin are always allowed. Default: loopback origins only'),
  allowedHosts: z.array(z.string()).optional().describe('Host header values accepted; default: any host when listening on a non-loopback address, loopback names otherwise'),
});

const tlsSchema = z
  .strictObject({
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
    clientCaFile: z.string().optional().describe('CA bundle that client certificates must chain to (mTLS)'),
    requireClientCert: z.boolean().default(false).describe('Refuse the TLS handshake without a valid client certificate'),
  })
  .describe('Serve HTTPS; with clientCaFile, verify client certificates');

const listenerSchema = z.strictObject({
  name,
  host: z.string().default('127.0.0.1'),
  port: port.default(8080),
  tls: tlsSchema.optional(),
  routes: z.array(routeSchema).min(1),
});

export const configSchema = z
  .strictObject({
    listeners: z.array(listenerSchema).min(1),
    backends: z.array(backendSchema).default([]),
    outbound: z
      .strictObject({
        schemes: z.array(z.enum(['http', 'https'])).default(['https']),
        allowedRanges: z
          .array(z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'expected a CIDR range such as 10.0.0.0/8 or 127.0.0.1/32'))
          .default([])
          .describe('Private, loopback or link-local ranges the gateway may still fetch from'),
        maxRedirects: z.number().int().min(0).max(10).default(3),
        timeout: duration.default(5_000),
      })
      .prefault({})
      .describe('The SSRF guard for URLs the gateway fetches itself (JWKS): every address and redirect hop is checked'),
    trustedProxies: z
      .array(z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'expected an IP address or CIDR range'))
      .default([])
      .describe('Peers whose X-Forwarded-For is believed; from anyone else it is ignored'),
    admin: z
      .strictObject({
        enabled: z.boolean().default(true),
        host: z.string().default('127.0.0.1'),
        port: port.default(15000),
      })
      .prefault({}),
    session: z
      .strictObject({
        key: z.string().min(32, 'expected at least 32 characters of secret material').optional().describe('Secret that seals session tokens; every replica needs the same one. Generated per process when absent'),
        previousKeys: z.array(z.string().min(32)).default([]).describe('Older keys still accepted for opening tokens, for rotation'),
        ttl: duration.default(24 * 3_600_000).describe('How long a session token stays valid after it was issued'),
      })
      .prefault({}),
    limits: z
      .strictObject({
        maxBodyBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
        maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(32 * 1024).describe('Larger request headers get 431'),
        maxHeaders: z.number().int().min(8).max(1000).default(100).describe('More request headers than this get 431'),
        headersTimeout: duration.default(10_000).describe('A client must send its headers within this (slowloris)'),
        requestTimeout: duration.default(30_000).describe('A client must send its whole request within this'),
        maxConnections: z.number().int().min(1).default(10_000).describe('Open connections per listener; more are refused'),
        streamIdleTimeout: duration.default(30 * 60_000).describe('A server stream with no event for this long is closed (keep-alive comments go out every 15s meanwhile)'),
        maxLineBytes: z.number().int().min(1024).default(16 * 1024 * 1024).describe('Largest single message accepted from an upstream (stdio line, SSE event, JSON body)'),
        shutdownGrace: duration.default(10_000).describe('How long open streams may drain on SIGTERM'),
      })
      .prefault({}),
    state: z
      .strictObject({
        redis: z
          .strictObject({ url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL') })
          .optional()
          .describe('Shared state for replicas: ended sessions, late upstream sessions, SSE events for resumption. Without it, state is in memory'),
        events: z
          .strictObject({
            maxPerStream: z.number().int().min(1).default(1_000).describe('SSE events kept per stream for Last-Event-ID resumption'),
            ttl: duration.default(5 * 60_000).describe('How long events are kept after a stream\'s last event'),
            maxMemoryBytes: z
              .number()
              .int()
              .min(64 * 1024)
              .default(16 * 1024 * 1024)
              .describe('Without redis: memory for kept events in all (characters of event data and ids, plus 64 per event); beyond it the oldest streams are dropped first'),
          })
          .prefault({}),
      })
      .prefault({}),
    audit: z
      .strictObject({
        destination: z.union([z.literal('stdout'), z.strictObject({ file: z.string().min(1) })]).default('stdout'),
        maxBuffered: z.number().int().min(1).default(10_000).describe('Records held while the destination is slow; beyond that they are dropped and counted'),
      })
      .optional()
      .describe('One JSON line per authorization decision and per tool call'),
    logging: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      })
      .prefault({}),
  })
  .describe('Switchboard gateway configuration');

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type BackendConfig = z.output<typeof backendSchema>;

/** The JSON Schema editors use for completion and validation of config files. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
