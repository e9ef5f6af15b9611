import { z } from 'zod';
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

const headers = z.record(z.string(), z.string()).describe('HTTP headers sent to the upstream, e.g. credentials from ${ENV} or ${file:/path} references');

const remoteBackendFields = {
  name,
  url: z.url({ protocol: /^https?$/ }).describe('The upstream MCP endpoint'),
  headers: headers.optional(),
  timeout: duration.default(30_000).describe('Per-request timeout towards this backend'),
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
  transport: z.literal('stdio'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}).describe('Environment for the process; the gateway\'s own environment is not inherited beyond PATH, HOME and the locale'),
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
  allowedOrigins: z.array(z.string()).optional().describe('Origins allowed to call this route; requests without Origin are always allowed. Default: loopback origins only'),
  allowedHosts: z.array(z.string()).optional().describe('Host header values accepted; default: any host when listening on a non-loopback address, loopback names otherwise'),
});

const listenerSchema = z.strictObject({
  name,
  host: z.string().default('127.0.0.1'),
  port: port.default(8080),
  routes: z.array(routeSchema).min(1),
});

export const configSchema = z
  .strictObject({
    listeners: z.array(listenerSchema).min(1),
    backends: z.array(backendSchema).default([]),
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
          })
          .prefault({}),
      })
      .prefault({}),
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
