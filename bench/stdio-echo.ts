/**
 * The bench's stdio MCP server: the same `echo` and `progress` tools as upstream.ts, over
 * stdin/stdout (SDK McpServer + StdioServerTransport). Started by the process under test
 * (Switchboard with a stdio backend, or mcp-proxy), never by the runner directly.
 *
 * Exits when its stdin closes, so it cannot outlive the process that started it.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createEchoServer } from './tools.ts';

const server = createEchoServer();
const transport = new StdioServerTransport();
const leave = (): never => process.exit(0);
process.stdin.once('end', leave);
process.stdin.once('close', leave);
process.once('SIGTERM', leave);
process.once('SIGINT', leave);
await server.connect(transport);
