import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../config/schema.ts';
import { startUtilityServer } from './utility-server.ts';

const NOTES_SERVER = fileURLToPath(new URL('./notes-server.ts', import.meta.url));

export interface EmbeddedDefault {
  readonly config: ConfigInput;
  /** Stops the in-process demo server. */
  close(): Promise<void>;
}

/**
 * The configuration `npm start` runs: the gateway in front of two bundled demo servers,
 * one over streamable HTTP (in this process) and one over stdio (a child process).
 */
export async function embeddedDefault(options: { host?: string; port?: number | undefined; adminPort?: number | undefined } = {}): Promise<EmbeddedDefault> {
  const utility = await startUtilityServer({ host: '127.0.0.1', port: 0 });
  return {
    config: {
      listeners: [
        {
          name: 'default',
          host: options.host ?? '127.0.0.1',
          port: options.port ?? 8080,
          routes: [{ name: 'mcp', path: '/mcp', backends: ['utility', 'notes'], toolPrefix: 'always' }],
        },
      ],
      backends: [
        { name: 'utility', transport: 'streamable-http', url: utility.url },
        // The running Node, not "node" from PATH: the demo server is TypeScript and needs Node 22+.
        { name: 'notes', transport: 'stdio', command: process.execPath, args: [NOTES_SERVER], scope: 'shared' },
      ],
      admin: { port: options.adminPort ?? 15000 },
    },
    close: () => utility.close(),
  };
}
