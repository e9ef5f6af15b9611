/**
 * The upstream MCP server for the official conformance suite
 * (`@modelcontextprotocol/conformance` 0.1.16, `conformance server --url URL`).
 *
 * It serves exactly the tools, resources, prompts and behaviours the suite's active server
 * scenarios call, with the names, arguments and content the suite expects:
 *
 *   tools      test_simple_text, test_image_content, test_audio_content, test_embedded_resource,
 *              test_multiple_content_types, test_tool_with_logging, test_error_handling,
 *              test_tool_with_progress, test_sampling, test_elicitation,
 *              test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums
 *   resources  test://static-text, test://static-binary, test://watched-resource (subscribable),
 *              template test://template/{id}/data
 *   prompts    test_simple_prompt, test_prompt_with_arguments (arg1, arg2; completable),
 *              test_prompt_with_embedded_resource (resourceUri), test_prompt_with_image
 *   also       logging/setLevel, completion/complete, ping, several concurrent POST SSE streams
 *              per session, and DNS-rebinding protection (Host/Origin must name localhost).
 *
 * Built on the SDK's low-level `Server`, one per session, over Streamable HTTP on node:http.
 * Run standalone: `./node_modules/.bin/node test/conformance/fixture-server.ts [port]`.
 */
import type { IncomingMessage } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { crc32, deflateSync } from 'node:zlib';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import { hostMcpServer } from '../../src/demo/mcp-http-host.ts';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  LoggingLevelSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type ElicitRequestFormParams,
  type GetPromptResult,
  type LoggingLevel,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplate,
  type ServerCapabilities,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';

export interface ConformanceFixture {
  /** Streamable HTTP endpoint, http://127.0.0.1:PORT/mcp */
  url: string;
  close(): Promise<void>;
}

const LOCAL_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

// ---------------------------------------------------------------------------------------------
// Media: a 1x1 red PNG and a short silent WAV, built here rather than pasted in as base64.

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

function redPixelPng(): string {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(1, 0); // width
  header.writeUInt32BE(1, 4); // height
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  // compression, filter and interlace methods stay 0
  const scanline = Buffer.from([0, 0xff, 0x00, 0x00]); // filter byte, then R G B
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(scanline)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]).toString('base64');
}

function silentWav(samples = 80, sampleRate = 8000): string {
  const dataBytes = samples * 2; // mono, 16-bit PCM
  const wav = Buffer.alloc(44 + dataBytes);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + dataBytes, 4);
  wav.write('WAVE', 8, 'ascii');
  wav.write('fmt ', 12, 'ascii');
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // channels
  wav.writeUInt32LE(sampleRate, 24);
  wav.writeUInt32LE(sampleRate * 2, 28); // byte rate
  wav.writeUInt16LE(2, 32); // block align
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(dataBytes, 40);
  return wav.toString('base64');
}

const PNG = redPixelPng();
const WAV = silentWav();

// ---------------------------------------------------------------------------------------------
// Catalogue

const NO_ARGS: Tool['inputSchema'] = { type: 'object', properties: {} };

const TOOLS: Tool[] = [
  { name: 'test_simple_text', description: 'Returns a simple text response', inputSchema: NO_ARGS },
  { name: 'test_image_content', description: 'Returns a 1x1 red PNG image', inputSchema: NO_ARGS },
  { name: 'test_audio_content', description: 'Returns a short silent WAV clip', inputSchema: NO_ARGS },
  { name: 'test_embedded_resource', description: 'Returns an embedded text resource', inputSchema: NO_ARGS },
  { name: 'test_multiple_content_types', description: 'Returns text, image and resource content', inputSchema: NO_ARGS },
  { name: 'test_tool_with_logging', description: 'Sends three info log notifications while it runs', inputSchema: NO_ARGS },
  { name: 'test_error_handling', description: 'Always fails with isError: true', inputSchema: NO_ARGS },
  { name: 'test_tool_with_progress', description: 'Reports progress 0, 50 and 100 of 100', inputSchema: NO_ARGS },
  {
    name: 'test_sampling',
    description: 'Asks the client for an LLM completion of the prompt',
    inputSchema: {
      type: 'object',
      properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } },
      required: ['prompt'],
    },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the user for a username and email address',
    inputSchema: {
      type: 'object',
      properties: { message: { type: 'string', description: 'The message to show the user' } },
      required: ['message'],
    },
  },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicits a form whose fields all have defaults (SEP-1034)', inputSchema: NO_ARGS },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicits a form with every enum variant (SEP-1330)', inputSchema: NO_ARGS },
];

const STATIC_TEXT = 'This is the content of the static text resource.';
const WATCHED_TEXT = 'This resource can be subscribed to.';

const RESOURCES: Resource[] = [
  { uri: 'test://static-text', name: 'static-text', description: 'A static text resource', mimeType: 'text/plain' },
  { uri: 'test://static-binary', name: 'static-binary', description: 'A static binary resource (PNG)', mimeType: 'image/png' },
  { uri: 'test://watched-resource', name: 'watched-resource', description: 'A resource clients may subscribe to', mimeType: 'text/plain' },
];

const DATA_TEMPLATE = 'test://template/{id}/data';
const RESOURCE_TEMPLATES: ResourceTemplate[] = [
  { uriTemplate: DATA_TEMPLATE, name: 'template-data', description: 'JSON data for an id', mimeType: 'application/json' },
];
const dataTemplate = new UriTemplate(DATA_TEMPLATE);

const PROMPTS: Prompt[] = [
  { name: 'test_simple_prompt', description: 'A prompt without arguments' },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
  },
  {
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt that embeds a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
  },
  { name: 'test_prompt_with_image', description: 'A prompt that carries an image' },
];

/** completion/complete candidates for ref/prompt test_prompt_with_arguments, per argument. */
const COMPLETIONS: Record<string, string[]> = {
  arg1: ['test', 'testing', 'tested', 'value1'],
  arg2: ['test', 'value2'],
};

const CAPABILITIES: ServerCapabilities = {
  tools: {},
  resources: { subscribe: true },
  prompts: {},
  logging: {},
  completions: {},
};

// ---------------------------------------------------------------------------------------------
// Handlers

interface SessionState {
  /** Minimum level set by logging/setLevel; undefined sends everything. */
  logLevel: LoggingLevel | undefined;
  subscriptions: Set<string>;
}

function text(value: string): CallToolResult {
  return { content: [{ type: 'text', text: value }] };
}

function invalidParams(message: string): McpError {
  return new McpError(ErrorCode.InvalidParams, message);
}

function levelIgnored(state: SessionState, level: LoggingLevel): boolean {
  if (state.logLevel === undefined) return false;
  const order = LoggingLevelSchema.options;
  return order.indexOf(level) < order.indexOf(state.logLevel);
}

const SEP1034_SCHEMA: ElicitRequestFormParams['requestedSchema'] = {
  type: 'object',
  properties: {
    name: { type: 'string', title: 'Name', default: 'John Doe' },
    age: { type: 'integer', title: 'Age', default: 30 },
    score: { type: 'number', title: 'Score', default: 95.5 },
    status: { type: 'string', title: 'Status', enum: ['active', 'inactive', 'pending'], default: 'active' },
    verified: { type: 'boolean', title: 'Verified', default: true },
  },
};

const SEP1330_SCHEMA: ElicitRequestFormParams['requestedSchema'] = {
  type: 'object',
  properties: {
    untitledSingle: { type: 'string', title: 'Untitled single-select', enum: ['option1', 'option2', 'option3'] },
    titledSingle: {
      type: 'string',
      title: 'Titled single-select',
      oneOf: [
        { const: 'value1', title: 'First Option' },
        { const: 'value2', title: 'Second Option' },
        { const: 'value3', title: 'Third Option' },
      ],
    },
    legacyEnum: {
      type: 'string',
      title: 'Legacy titled enum',
      enum: ['opt1', 'opt2', 'opt3'],
      enumNames: ['Option One', 'Option Two', 'Option Three'],
    },
    untitledMulti: {
      type: 'array',
      title: 'Untitled multi-select',
      items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
    },
    titledMulti: {
      type: 'array',
      title: 'Titled multi-select',
      items: {
        anyOf: [
          { const: 'value1', title: 'First Choice' },
          { const: 'value2', title: 'Second Choice' },
          { const: 'value3', title: 'Third Choice' },
        ],
      },
    },
  },
};

function createConformanceServer(state: SessionState): Server {
  const server = new Server({ name: 'switchboard-conformance-fixture', version: '1.0.0' }, { capabilities: CAPABILITIES });

  // Replaces the SDK's built-in handler so the level is held per session in plain sight.
  server.setRequestHandler(SetLevelRequestSchema, (request) => {
    state.logLevel = request.params.level;
    return {};
  });

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name } = request.params;
    const args = request.params.arguments ?? {};

    // Everything below is sent with relatedRequestId set, so it travels on this call's SSE stream.
    const log = async (data: string): Promise<void> => {
      if (levelIgnored(state, 'info')) return;
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'conformance-fixture', data } });
    };
    const elicit = async (params: ElicitRequestFormParams) => {
      if (!server.getClientCapabilities()?.elicitation) return undefined;
      return extra.sendRequest({ method: 'elicitation/create', params }, ElicitResultSchema);
    };

    switch (name) {
      case 'test_simple_text':
        return text('This is a simple text response for testing.');

      case 'test_image_content':
        return { content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] };

      case 'test_audio_content':
        return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };

      case 'test_embedded_resource':
        return {
          content: [
            { type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } },
          ],
        };

      case 'test_multiple_content_types':
        return {
          content: [
            { type: 'text', text: 'Multiple content types test:' },
            { type: 'image', data: PNG, mimeType: 'image/png' },
            {
              type: 'resource',
              resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) },
            },
          ],
        };

      case 'test_tool_with_logging':
        await log('Tool execution started');
        await delay(50);
        await log('Tool processing data');
        await delay(50);
        await log('Tool execution completed');
        return text('Tool with logging executed successfully');

      case 'test_error_handling':
        return { isError: true, content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }] };

      case 'test_tool_with_progress': {
        const progressToken = request.params._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (progressToken !== undefined) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: 100 } });
          }
          if (progress < 100) await delay(50);
        }
        return text('Tool with progress executed successfully');
      }

      case 'test_sampling': {
        if (typeof args.prompt !== 'string') throw invalidParams('test_sampling requires a string "prompt" argument');
        if (!server.getClientCapabilities()?.sampling) return { isError: true, content: [{ type: 'text', text: 'Client does not support sampling' }] };
        const result = await extra.sendRequest(
          { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: args.prompt } }], maxTokens: 100 } },
          CreateMessageResultSchema,
        );
        const reply = result.content.type === 'text' ? result.content.text : `[${result.content.type}]`;
        return text(`LLM response: ${reply}`);
      }

      case 'test_elicitation': {
        if (typeof args.message !== 'string') throw invalidParams('test_elicitation requires a string "message" argument');
        const result = await elicit({
          message: args.message,
          requestedSchema: {
            type: 'object',
            properties: {
              username: { type: 'string', description: "User's response" },
              email: { type: 'string', description: "User's email address" },
            },
            required: ['username', 'email'],
          },
        });
        if (!result) return { isError: true, content: [{ type: 'text', text: 'Client does not support elicitation' }] };
        return text(`User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`);
      }

      case 'test_elicitation_sep1034_defaults':
      case 'test_elicitation_sep1330_enums': {
        const sep1034 = name === 'test_elicitation_sep1034_defaults';
        const result = await elicit({
          message: sep1034 ? 'Please review your details (every field has a default)' : 'Please choose from the options',
          requestedSchema: sep1034 ? SEP1034_SCHEMA : SEP1330_SCHEMA,
        });
        if (!result) return { isError: true, content: [{ type: 'text', text: 'Client does not support elicitation' }] };
        return text(`Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`);
      }

      default:
        throw invalidParams(`Unknown tool: ${name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: RESOURCES }));

  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: RESOURCE_TEMPLATES }));

  server.setRequestHandler(ReadResourceRequestSchema, (request): ReadResourceResult => {
    const { uri } = request.params;
    switch (uri) {
      case 'test://static-text':
        return { contents: [{ uri, mimeType: 'text/plain', text: STATIC_TEXT }] };
      case 'test://static-binary':
        return { contents: [{ uri, mimeType: 'image/png', blob: PNG }] };
      case 'test://watched-resource':
        return { contents: [{ uri, mimeType: 'text/plain', text: WATCHED_TEXT }] };
    }
    const match = dataTemplate.match(uri);
    const id = match?.id;
    if (typeof id === 'string') {
      return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] };
    }
    // -32002 is the spec's "resource not found" code.
    throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
  });

  server.setRequestHandler(SubscribeRequestSchema, (request) => {
    state.subscriptions.add(request.params.uri);
    return {};
  });

  server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    state.subscriptions.delete(request.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: PROMPTS }));

  server.setRequestHandler(GetPromptRequestSchema, (request): GetPromptResult => {
    const { name } = request.params;
    const args = request.params.arguments ?? {};
    switch (name) {
      case 'test_simple_prompt':
        return { messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] };
      case 'test_prompt_with_arguments': {
        const { arg1, arg2 } = args;
        if (arg1 === undefined || arg2 === undefined) throw invalidParams('arg1 and arg2 are required');
        return { messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] };
      }
      case 'test_prompt_with_embedded_resource': {
        const { resourceUri } = args;
        if (resourceUri === undefined) throw invalidParams('resourceUri is required');
        return {
          messages: [
            { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
            { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
          ],
        };
      }
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
            { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
          ],
        };
      default:
        throw invalidParams(`Unknown prompt: ${name}`);
    }
  });

  server.setRequestHandler(CompleteRequestSchema, (request) => {
    const { ref, argument } = request.params;
    const candidates = ref.type === 'ref/prompt' && ref.name === 'test_prompt_with_arguments' ? (COMPLETIONS[argument.name] ?? []) : [];
    const values = candidates.filter((v) => v.startsWith(argument.value));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

// ---------------------------------------------------------------------------------------------
// HTTP

function hostnameOf(authority: string): string | undefined {
  try {
    return new URL(`http://${authority}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * DNS-rebinding protection for a server bound to loopback: the Host header, and the Origin
 * header when a browser sends one, must name localhost, 127.0.0.1 or [::1] (any port).
 */
function rebindingRejection(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  const hostname = host === undefined ? undefined : hostnameOf(host);
  if (hostname === undefined || !LOCAL_HOSTNAMES.has(hostname)) return `Invalid Host header: ${host ?? '(none)'}`;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).hostname.toLowerCase();
    } catch {
      originHost = undefined;
    }
    if (originHost === undefined || !LOCAL_HOSTNAMES.has(originHost)) return `Invalid Origin header: ${origin}`;
  }
  return undefined;
}

export async function startConformanceFixture(port = 0): Promise<ConformanceFixture> {
  const host = await hostMcpServer({
    port,
    refuse: rebindingRejection,
    createSession: () => ({ server: createConformanceServer({ logLevel: undefined, subscriptions: new Set() }) }),
  });
  return { url: host.url, close: () => host.close() };
}

if (import.meta.main) {
  const fixture = await startConformanceFixture(Number(process.argv[2] ?? 0));
  console.log(fixture.url);
  const stop = (): void => {
    void fixture.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
