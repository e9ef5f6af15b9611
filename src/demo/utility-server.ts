/**
 * "utility": a demo MCP server over Streamable HTTP (stateful sessions, plain node:http).
 *
 * Run: node src/demo/utility-server.ts [--port N]
 */
import { createHash, randomInt } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { hostMcpServer } from './mcp-http-host.ts';
import * as z from 'zod';


const LANGUAGES = ['bash', 'c', 'cpp', 'csharp', 'go', 'java', 'javascript', 'kotlin', 'python', 'ruby', 'rust', 'sql', 'swift', 'typescript'];

const ABOUT = `# utility

A small demo MCP server bundled with Switchboard.

| Tool | What it does |
| --- | --- |
| \`echo\` | returns its input |
| \`add\` | adds two numbers |
| \`current_time\` | current time in an IANA time zone |
| \`random_number\` | random integer in an inclusive range |
| \`hash_text\` | sha256 / sha1 / md5 hex digest |
| \`word_count\` | words, characters and lines |
| \`countdown\` | counts down, reporting progress when asked to |

Resources: \`utility://about\` (this page) and \`utility://time/{timeZone}\`
(percent-encode the slash, e.g. \`utility://time/Europe%2FParis\`).
`;

function errorResult(text: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }] };
}

/** Returns the canonical zone name, or undefined when Intl does not know the zone. */
function canonicalTimeZone(timeZone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

function describeTime(timeZone: string, now: Date): { timeZone: string; utc: string; local: string; offset: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    })
      .formatToParts(now)
      .map((p) => [p.type, p.value]),
  );
  return {
    timeZone,
    utc: now.toISOString(),
    local: `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`,
    offset: parts.timeZoneName ?? 'GMT',
  };
}

const timeShape = { timeZone: z.string(), utc: z.string(), local: z.string(), offset: z.string() };

/** One McpServer per session: the SDK binds a server instance to exactly one transport. */
export function createUtilityMcpServer(): McpServer {
  const server = new McpServer({ name: 'utility', title: 'Utility', version: '0.1.0' });
  const readOnly = { readOnlyHint: true, openWorldHint: false } as const;

  server.registerTool(
    'echo',
    {
      title: 'Echo',
      description: 'Return the given text unchanged.',
      inputSchema: { text: z.string() },
      annotations: { ...readOnly, idempotentHint: true },
    },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );

  server.registerTool(
    'add',
    {
      title: 'Add',
      description: 'Add two numbers.',
      inputSchema: { a: z.number(), b: z.number() },
      outputSchema: { sum: z.number() },
      annotations: { ...readOnly, idempotentHint: true },
    },
    ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
  );

  server.registerTool(
    'current_time',
    {
      title: 'Current time',
      description: "Current date and time in an IANA time zone (default: the server's zone).",
      inputSchema: { timeZone: z.string().optional().describe('IANA zone, e.g. Europe/Paris') },
      outputSchema: timeShape,
      annotations: readOnly,
    },
    ({ timeZone }) => {
      const zone = canonicalTimeZone(timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone);
      if (!zone) return errorResult(`Unknown time zone "${timeZone}"`);
      const time = describeTime(zone, new Date());
      return { content: [{ type: 'text', text: `${time.local} ${zone} (${time.offset})` }], structuredContent: time };
    },
  );

  server.registerTool(
    'random_number',
    {
      title: 'Random number',
      description: 'A uniformly random integer between min and max, inclusive.',
      inputSchema: { min: z.number().int(), max: z.number().int() },
      outputSchema: { value: z.number().int() },
      annotations: readOnly,
    },
    ({ min, max }) => {
      if (min > max) return errorResult('min must not be greater than max');
      // crypto.randomInt's limits: safe integers, range below 2**48.
      if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max + 1) || max + 1 - min > 2 ** 48) {
        return errorResult('range too large');
      }
      const value = randomInt(min, max + 1);
      return { content: [{ type: 'text', text: String(value) }], structuredContent: { value } };
    },
  );

  server.registerTool(
    'hash_text',
    {
      title: 'Hash text',
      description: 'Hex digest of the UTF-8 text.',
      inputSchema: { text: z.string(), algorithm: z.enum(['sha256', 'sha1', 'md5']) },
      outputSchema: { algorithm: z.string(), hex: z.string() },
      annotations: { ...readOnly, idempotentHint: true },
    },
    ({ text, algorithm }) => {
      const hex = createHash(algorithm).update(text, 'utf8').digest('hex');
      return { content: [{ type: 'text', text: hex }], structuredContent: { algorithm, hex } };
    },
  );

  server.registerTool(
    'word_count',
    {
      title: 'Word count',
      description: 'Count words, characters (code points) and lines.',
      inputSchema: { text: z.string() },
      outputSchema: { words: z.number().int(), characters: z.number().int(), lines: z.number().int() },
      annotations: { ...readOnly, idempotentHint: true },
    },
    ({ text }) => {
      const counts = {
        words: text.split(/\s+/u).filter(Boolean).length,
        characters: [...text].length,
        lines: text === '' ? 0 : text.split(/\r\n|\r|\n/u).length,
      };
      return {
        content: [{ type: 'text', text: `${counts.words} words, ${counts.characters} characters, ${counts.lines} lines` }],
        structuredContent: counts,
      };
    },
  );

  server.registerTool(
    'countdown',
    {
      title: 'Countdown',
      description: 'Count down from `from`, waiting delayMs per step; sends progress notifications if the caller supplied a progressToken.',
      inputSchema: { from: z.number().int().min(0).max(100), delayMs: z.number().int().min(0).max(10_000) },
      annotations: readOnly,
    },
    async ({ from, delayMs }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let step = 1; step <= from; step++) {
        // Rejects when the client cancels or the session closes, which ends the handler.
        await delay(delayMs, undefined, { signal: extra.signal });
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: step, total: from, message: `${from - step} to go` },
          });
        }
      }
      return { content: [{ type: 'text', text: `Counted down from ${from}. Liftoff!` }] };
    },
  );

  server.registerResource(
    'about',
    'utility://about',
    { title: 'About utility', description: 'What this server offers', mimeType: 'text/markdown' },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/markdown', text: ABOUT }] }),
  );

  server.registerResource(
    'time',
    new ResourceTemplate('utility://time/{timeZone}', {
      // Too many zones to enumerate usefully; completion covers discovery instead.
      list: undefined,
      complete: {
        timeZone: (value) => {
          const prefix = value.toLowerCase();
          return Intl.supportedValuesOf('timeZone').filter((zone) => zone.toLowerCase().startsWith(prefix));
        },
      },
    }),
    { title: 'Time in a zone', description: 'Current time in the given IANA zone, as JSON', mimeType: 'application/json' },
    (uri, { timeZone }) => {
      // Simple {var} expansion percent-encodes "/", so Europe/Paris arrives as Europe%2FParis.
      const requested = decodeURIComponent(String(timeZone));
      const zone = canonicalTimeZone(requested);
      if (!zone) throw new Error(`Unknown time zone "${requested}"`);
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(describeTime(zone, new Date())) }] };
    },
  );

  server.registerPrompt(
    'explain_code',
    {
      title: 'Explain code',
      description: 'Ask the model to explain a piece of code.',
      argsSchema: {
        code: z.string().describe('The code to explain'),
        language: completable(z.string().optional().describe('Programming language'), (value) =>
          LANGUAGES.filter((l) => l.startsWith((value ?? '').toLowerCase())),
        ),
      },
    },
    ({ code, language }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: `Explain what this ${language ? `${language} ` : ''}code does, step by step, and point out anything surprising.\n\n\`\`\`${language ?? ''}\n${code}\n\`\`\``,
          },
        },
      ],
    }),
  );

  return server;
}

export interface UtilityServerHandle {
  url: string;
  close(): Promise<void>;
}

export async function startUtilityServer(opts: { host?: string; port?: number } = {}): Promise<UtilityServerHandle> {
  const host = await hostMcpServer({ ...opts, createSession: () => ({ server: createUtilityMcpServer() }) });
  return { url: host.url, close: () => host.close() };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`invalid --port ${values.port}\n`);
    process.exit(2);
  }
  const handle = await startUtilityServer({ port, ...(values.host ? { host: values.host } : {}) });
  console.log(handle.url);
  const stop = (): void => {
    void handle.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
