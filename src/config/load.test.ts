import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.ts';
import { loadConfigFile, loadConfigText } from './load.ts';
import { configJsonSchema } from './schema.ts';

function errorOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    loadConfigText(text, 'gw.yaml', { env });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const VALID = `listeners:
  - name: main
    port: 8080
    routes:
      - name: mcp
        path: /mcp
        backends: [weather, files]
backends:
  - name: weather
    transport: streamable-http
    url: http://127.0.0.1:9000/mcp
    headers:
      authorization: Bearer \${WEATHER_TOKEN}
  - name: files
    transport: stdio
    command: node
    args: [server.js]
`;

describe('config loading', () => {
  it('compiles a valid file into the IR with defaults filled in', () => {
    const ir = loadConfigText(VALID, 'gw.yaml', { env: { WEATHER_TOKEN: 's3cret' } });
    const route = ir.listeners[0]!.routes[0]!;
    expect(route.backends.map((b) => b.name)).toEqual(['weather', 'files']);
    expect(route.naming).toEqual({ mode: 'always', separator: '__' });
    expect(route.failureMode).toBe('failOpen');
    expect(ir.backends.get('weather')).toMatchObject({ headers: { authorization: 'Bearer s3cret' }, timeoutMs: 30_000 });
    expect(ir.backends.get('files')).toMatchObject({ scope: 'session', restart: { maxRestarts: 5 } });
    expect(ir.limits.maxBodyBytes).toBe(4 * 1024 * 1024);
    expect(ir.admin).toEqual({ host: '127.0.0.1', port: 15000 });
    expect(ir.session.generated).toBe(true);
  });

  it('lists every problem with file, line, column and document path', () => {
    const err = errorOf(`listeners:
  - name: main
    port: 99999
    routes:
      - name: mcp
        path: mcp
        backends: [nowhere]
        toolPrefix: sometimes
backends:
  - name: weather
    transport: carrier-pigeon
    url: http://x
colour: blue
`);
    const lines = err.message.split('\n').slice(1).map((l) => l.trim());
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^gw\.yaml:3:11: listeners\[0\]\.port: .*65535/),
        expect.stringMatching(/^gw\.yaml:6:15: listeners\[0\]\.routes\[0\]\.path: expected an absolute URL path/),
        expect.stringMatching(/^gw\.yaml:8:21: listeners\[0\]\.routes\[0\]\.toolPrefix: .*"always"\|"conditional"\|"never"/),
        expect.stringMatching(/^gw\.yaml:11:16: backends\[0\]\.transport: .*'streamable-http' \| 'sse' \| 'stdio'/),
        expect.stringMatching(/^gw\.yaml:13:1: colour: unknown field "colour"/),
      ]),
    );
  });

  it('reports references the schema cannot check: unknown and duplicate backends', () => {
    const err = errorOf(VALID.replace('[weather, files]', '[weather, wether, weather]'), { WEATHER_TOKEN: 'x' });
    expect(err.message).toMatch(/gw\.yaml:7:\d+: listeners\[0\]\.routes\[0\]\.backends\[1\]: unknown backend "wether" \(expected one of: weather, files\)/);
    expect(err.message).toMatch(/backends\[2\]: backend "weather" is listed twice/);
  });

  it('a missing secret is an error at its path, never an empty string', () => {
    const err = errorOf(VALID);
    expect(err.message).toMatch(/gw\.yaml:13:\d+: backends\[0\]\.headers\.authorization: environment variable WEATHER_TOKEN is not set/);
  });

  it('refuses upstream headers that are no header, span lines or frame the request', () => {
    const withHeaders = (lines: string): string => VALID.replace('      authorization: Bearer ${WEATHER_TOKEN}', lines);
    const err = errorOf(withHeaders('      "x bad": v\n      Content-Length: "5"\n      x-ok: "a\\r\\nx-injected: 1"'));
    expect(err.message).toMatch(/backends\[0\]\.headers\.x bad: expected an HTTP header name/);
    expect(err.message).toMatch(/backends\[0\]\.headers\.Content-Length: this header frames the request or the connection/);
    expect(err.message).toMatch(/backends\[0\]\.headers\.x-ok: expected a header value on one line/);
    expect(loadConfigText(withHeaders('      Host: api.example'), 'gw.yaml', { env: {} }).backends.get('weather')).toMatchObject({ headers: { Host: 'api.example' } });
  });

  it('reads ${file:...} secrets relative to the config file, with defaults and escapes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-cfg-'));
    writeFileSync(join(dir, 'token'), 'from-file\n');
    const file = join(dir, 'gw.yaml');
    writeFileSync(
      file,
      VALID.replace('Bearer ${WEATHER_TOKEN}', 'Bearer ${file:token}').replace('args: [server.js]', () => 'args: ["$${literal}", "${UNSET_VAR:-fallback}"]'),
    );
    const ir = loadConfigFile(file, { env: {} });
    expect(ir.backends.get('weather')).toMatchObject({ headers: { authorization: 'Bearer from-file' } });
    expect(ir.backends.get('files')).toMatchObject({ args: ['${literal}', 'fallback'] });
  });

  it('rejects YAML syntax errors and duplicate keys with a position', () => {
    expect(errorOf('listeners: [\n').message).toMatch(/gw\.yaml:\d+:\d+/);
    expect(errorOf('admin: {}\nadmin: {}\n').message).toMatch(/gw\.yaml:2:1: .*[Mm]ap keys must be unique/);
  });

  it('schema/config.json is the exported JSON Schema (run `npm run schema` after changing the schema)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../schema/config.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(configJsonSchema());
  });
});
