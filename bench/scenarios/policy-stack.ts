/**
 * Scenario (g): tools/call through the gateway with the policy stack on (JWT authentication
 * against a JWKS served by the runner, 20 CEL rules, audit to a file in the temp directory)
 * against the plain gateway of scenario (a), both in front of one upstream. The load sends
 * `authorization: Bearer <token>` on every request to the policy gateway.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { SHORT_SETTINGS } from '../args.ts';
import { gatewayConfig, httpBackend, policyStack } from '../gateway-config.ts';
import { startIssuer, type Issuer } from '../jwks.ts';
import { Processes } from '../processes.ts';
import type { Scenario } from '../scenario.ts';

const SUBJECT = 'bench-client';

/** What the audit log recorded: a check that the stack really ran (records are dropped, not waited for, when the file is slow). */
function auditSummary(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return `(g) policy stack: no audit file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const record = JSON.parse(line) as { method?: string; decision?: string; outcome?: string };
    const key = [record.method, record.decision, record.outcome].filter(Boolean).join(' ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return `(g) policy stack: the audit file got ${total} records (${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}), ${(text.length / 2 ** 20).toFixed(1)} MiB`;
}
const AUDIENCE = 'https://switchboard.bench/mcp';

export function policyStackScenario(): Scenario {
  const processes = new Processes();
  let issuer: Issuer | undefined;
  let auditDir: string | undefined;
  const notes: string[] = [];
  const scenario: Scenario = {
    id: 'g',
    name: '(g) policy stack',
    targets: [],
    // Four rounds, not two: its ratio moved by ±0.07 between runs of one tree with two.
    defaults: { ...SHORT_SETTINGS, rounds: 4 },
    measuresAgainst: true,
    async setup(ctx) {
      issuer = await startIssuer();
      auditDir = mkdtempSync(join(os.tmpdir(), 'switchboard-bench-'));
      const upstream = await processes.upstream();
      const backends = [httpBackend('echo', upstream.url)];
      const plain = await processes.gateway(ctx, gatewayConfig(backends), 'gateway');
      const stack = (auditFile: string): ReturnType<typeof policyStack> =>
        policyStack({ issuer: issuer!.issuer, audience: AUDIENCE, subject: SUBJECT, jwksUrl: issuer!.jwksUrl, allowedTool: 'echo', auditFile: join(auditDir!, auditFile) });
      const guarded = await processes.gateway(ctx, gatewayConfig(backends, stack('audit.jsonl')), 'gateway+policy');
      const token = await issuer.token(SUBJECT, AUDIENCE);
      const load = { mode: 'call', tool: 'echo__echo', headers: { authorization: `Bearer ${token}` } } as const;
      // Another commit's policy gateway (--against), with an audit file of its own.
      const earlier = await processes.againstTarget(ctx, gatewayConfig(backends, stack('audit-against.jsonl')), 'gateway+policy', load, upstream.child);
      scenario.targets = [
        { name: 'gateway (a)', url: plain.url, load: { mode: 'call', tool: 'echo__echo' }, server: plain.child, behind: upstream.child },
        ...(earlier ? [earlier] : []),
        { name: 'gateway+policy', url: guarded.url, load, server: guarded.child, behind: upstream.child, alsoAgainst: earlier ? [earlier] : [] },
      ];
    },
    async teardown() {
      scenario.targets = [];
      await processes.stopAll();
      await issuer?.close();
      if (auditDir) {
        notes.push(auditSummary(join(auditDir, 'audit.jsonl')));
        rmSync(auditDir, { recursive: true, force: true });
      }
    },
    notes: () => notes,
  };
  return scenario;
}
