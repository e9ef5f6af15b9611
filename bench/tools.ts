/**
 * The tools the bench's MCP servers offer, shared by the HTTP upstream (upstream.ts) and the
 * stdio server (stdio-echo.ts) so every transport serves exactly the same work.
 *
 * - `echo {text}` returns the text;
 * - `progress {steps}` sends `steps` progress notifications (when the request carries a
 *   progress token) and then returns "done <steps>";
 * - a federation member `i` offers `TOOLS_PER_MEMBER` distinct echo tools named `m<i>_<verb>`.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';

export const TOOLS_PER_MEMBER = 20;

const VERBS = [
  'search', 'fetch', 'create', 'update', 'delete', 'list', 'get', 'count', 'rename', 'move',
  'copy', 'merge', 'split', 'tag', 'untag', 'lock', 'unlock', 'archive', 'restore', 'export',
];

function registerEcho(server: McpServer, name: string, description: string): void {
  server.registerTool(name, { description, inputSchema: { text: z.string().describe('Any text; it comes back unchanged.') } }, ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
}

/** The server of the plain upstream and of the stdio server: `echo` and `progress`. */
export function createEchoServer(): McpServer {
  const server = new McpServer({ name: 'echo', version: '0.1.0' });
  registerEcho(server, 'echo', 'Returns the text it is given.');
  server.registerTool(
    'progress',
    { description: 'Sends `steps` progress notifications, then returns.', inputSchema: { steps: z.number().int().min(0).max(100_000) } },
    async ({ steps }, extra) => {
      const progressToken = extra._meta?.progressToken;
      if (progressToken !== undefined) {
        for (let progress = 1; progress <= steps; progress++) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: steps } });
        }
      }
      return { content: [{ type: 'text', text: `done ${steps}` }] };
    },
  );
  return server;
}

/** Tool names of federation member `index` (distinct across members). */
export function memberToolNames(index: number): string[] {
  return VERBS.slice(0, TOOLS_PER_MEMBER).map((verb) => `m${index}_${verb}`);
}

/** The server of federation member `index`: TOOLS_PER_MEMBER echo tools of its own. */
export function createMemberServer(index: number): McpServer {
  const server = new McpServer({ name: `member-${index}`, version: '0.1.0' });
  for (const name of memberToolNames(index)) {
    registerEcho(server, name, `Member ${index}'s ${name.split('_')[1]} operation (the bench's stand-in: returns the text it is given).`);
  }
  return server;
}
