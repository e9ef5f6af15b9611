/**
 * "notes": a demo MCP server over stdio with an in-memory note store.
 *
 * Run: node src/demo/notes-server.ts
 *
 * stdout carries the protocol, so every diagnostic goes to stderr.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';

export interface Note {
  id: string;
  title: string;
  body: string;
  tags: string[];
  createdAt: string;
}

const noteShape = z.object({
  id: z.string(),
  title: z.string(),
  body: z.string(),
  tags: z.array(z.string()),
  createdAt: z.string(),
});

const SEED: Array<Pick<Note, 'title' | 'body' | 'tags'>> = [
  {
    title: 'Connecting a client to Switchboard',
    body: 'Point your MCP client at the gateway URL instead of each server. Switchboard federates the upstream servers and prefixes their tools so names never collide.',
    tags: ['switchboard', 'setup'],
  },
  {
    title: 'Tool-level authorization',
    body: 'Policies decide which agent identity may call which upstream tool. Denied calls are rejected at the gateway and never reach the server.',
    tags: ['switchboard', 'security'],
  },
  {
    title: 'Reading the audit log',
    body: 'Every tool call that passes through Switchboard is recorded with the caller identity, the upstream server and the outcome, so incidents can be traced end to end.',
    tags: ['switchboard', 'audit'],
  },
];

export class NoteStore {
  #notes = new Map<string, Note>();
  #nextId = 1;

  add(input: { title: string; body: string; tags?: string[] | undefined }): Note {
    const note: Note = {
      id: `note-${this.#nextId++}`,
      title: input.title,
      body: input.body,
      // Tags are compared case-insensitively everywhere, so normalise once here.
      tags: [...new Set((input.tags ?? []).map((t) => t.trim().toLowerCase()).filter(Boolean))],
      createdAt: new Date().toISOString(),
    };
    this.#notes.set(note.id, note);
    return note;
  }

  get(id: string): Note | undefined {
    return this.#notes.get(id);
  }

  list(tag?: string): Note[] {
    const all = [...this.#notes.values()];
    if (!tag) return all;
    const wanted = tag.trim().toLowerCase();
    return all.filter((n) => n.tags.includes(wanted));
  }

  search(query: string): Note[] {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    return this.list().filter(
      (n) => n.title.toLowerCase().includes(q) || n.body.toLowerCase().includes(q) || n.tags.some((t) => t.includes(q)),
    );
  }

  delete(id: string): boolean {
    return this.#notes.delete(id);
  }
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

function notFound(id: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: `No note with id "${id}"` }] };
}

/** Builds the server without connecting it, so tests can attach any transport. */
export function createNotesServer(store: NoteStore = seededStore()): McpServer {
  const server = new McpServer(
    { name: 'notes', title: 'Notes', version: '0.1.0' },
    { instructions: 'An in-memory notebook. Use search_notes or list_notes to find notes before reading them.' },
  );

  server.registerTool(
    'add_note',
    {
      title: 'Add note',
      description: 'Store a new note and return it with its assigned id.',
      inputSchema: {
        title: z.string().min(1).describe('Short title'),
        body: z.string().describe('Note text'),
        tags: z.array(z.string()).optional().describe('Optional tags'),
      },
      outputSchema: { note: noteShape },
      // Adding never overwrites anything, which the spec's default (destructive) would not convey.
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ title, body, tags }) => {
      const note = store.add({ title, body, tags });
      server.sendResourceListChanged();
      return { content: [{ type: 'text', text: `Added ${note.id}: ${note.title}` }], structuredContent: { note } };
    },
  );

  server.registerTool(
    'list_notes',
    {
      title: 'List notes',
      description: 'List all notes, optionally only those carrying a tag.',
      inputSchema: { tag: z.string().optional().describe('Only notes with this tag') },
      outputSchema: { notes: z.array(noteShape) },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ tag }) => {
      const notes = store.list(tag);
      const text = notes.length ? notes.map((n) => `${n.id}: ${n.title} [${n.tags.join(', ')}]`).join('\n') : 'No notes.';
      return { content: [{ type: 'text', text }], structuredContent: { notes } };
    },
  );

  server.registerTool(
    'get_note',
    {
      title: 'Get note',
      description: 'Fetch one note by id.',
      inputSchema: { id: z.string().describe('Note id, e.g. note-1') },
      outputSchema: { note: noteShape },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ id }) => {
      const note = store.get(id);
      if (!note) return notFound(id);
      return { content: [{ type: 'text', text: json(note) }], structuredContent: { note } };
    },
  );

  server.registerTool(
    'search_notes',
    {
      title: 'Search notes',
      description: 'Case-insensitive substring search over titles, bodies and tags.',
      inputSchema: { query: z.string().min(1).describe('Text to look for') },
      outputSchema: { notes: z.array(noteShape) },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ query }) => {
      const notes = store.search(query);
      const text = notes.length ? notes.map((n) => `${n.id}: ${n.title}`).join('\n') : `Nothing matches "${query}".`;
      return { content: [{ type: 'text', text }], structuredContent: { notes } };
    },
  );

  server.registerTool(
    'delete_note',
    {
      title: 'Delete note',
      description: 'Delete a note by id.',
      inputSchema: { id: z.string().describe('Note id') },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ id }) => {
      if (!store.delete(id)) return notFound(id);
      server.sendResourceListChanged();
      return { content: [{ type: 'text', text: `Deleted ${id}` }] };
    },
  );

  server.registerResource(
    'all-notes',
    'notes://all',
    { title: 'All notes', description: 'Every note as a JSON array', mimeType: 'application/json' },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: json(store.list()) }] }),
  );

  server.registerResource(
    'note',
    new ResourceTemplate('notes://note/{id}', {
      list: () => ({
        resources: store.list().map((n) => ({ uri: `notes://note/${n.id}`, name: n.id, title: n.title, mimeType: 'application/json' })),
      }),
      complete: { id: (value) => store.list().map((n) => n.id).filter((id) => id.startsWith(value)) },
    }),
    { title: 'Note', description: 'A single note as JSON', mimeType: 'application/json' },
    (uri, { id }) => {
      const noteId = String(id);
      const note = store.get(noteId);
      // Resource reads have no isError channel; an exception becomes a JSON-RPC error for the client.
      if (!note) throw new Error(`No note with id "${noteId}"`);
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: json(note) }] };
    },
  );

  server.registerPrompt(
    'summarize_notes',
    {
      title: 'Summarize notes',
      description: 'Ask the model for a short summary of the notes, optionally only those with a tag.',
      argsSchema: { tag: z.string().optional().describe('Only summarize notes with this tag') },
    },
    ({ tag }) => {
      const notes = store.list(tag);
      const scope = tag ? `tagged "${tag}"` : 'in my notebook';
      const listing = notes.map((n) => `## ${n.title}\n${n.body}`).join('\n\n') || '(no notes)';
      return {
        description: `Summary of ${notes.length} note(s) ${scope}`,
        messages: [
          {
            role: 'user',
            content: { type: 'text', text: `Summarize the following notes ${scope} in a few bullet points.\n\n${listing}` },
          },
        ],
      };
    },
  );

  return server;
}

export function seededStore(): NoteStore {
  const store = new NoteStore();
  for (const note of SEED) store.add(note);
  return store;
}

function log(message: string): void {
  process.stderr.write(`[notes] ${message}\n`);
}

async function main(): Promise<void> {
  const server = createNotesServer();
  const transport = new StdioServerTransport();

  let shuttingDown = false;
  const shutdown = async (reason: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log(`shutting down (${reason})`);
    await server.close().catch(() => {});
    process.exit(0);
  };

  // The SDK's stdio transport never notices EOF by itself; without this the client's
  // "close stdin and wait" shutdown would have to fall back to SIGTERM.
  process.stdin.once('end', () => void shutdown('stdin closed'));
  process.stdin.once('close', () => void shutdown('stdin closed'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  await server.connect(transport);
  log('ready on stdio');
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    log(`fatal: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  });
}
