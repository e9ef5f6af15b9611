import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BUILTIN_PATTERNS, DEFAULT_BUILTINS, Redactor } from './redaction.ts';

const ALL_BUILTINS = Object.keys(BUILTIN_PATTERNS);

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const PKCS8 = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const PKCS1 = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
const JWT = `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url({ sub: 'alice', exp: 1 })}.c2lnbmF0dXJlX2J5dGVz-_x`;
const GITHUB = `ghp_${'A1b2C3d4E5'.repeat(4)}`;

describe('built-in patterns', () => {
  const redactor = new Redactor(ALL_BUILTINS, []);

  const cases: Array<[string, string, string]> = [
    ['aws-access-key-id', 'key AKIAIOSFODNN7EXAMPLE here', 'key [REDACTED:aws-access-key-id] here'],
    ['aws-access-key-id (temporary)', 'ASIAY34FZKBOKMUTVV7A', '[REDACTED:aws-access-key-id]'],
    ['github-token', `token=${GITHUB};`, 'token=[REDACTED:github-token];'],
    ['github-token (fine-grained)', `github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz`, '[REDACTED:github-token]'],
    ['slack-token', 'xoxb-123456789012-abcdefABCDEF', '[REDACTED:slack-token]'],
    ['jwt', `Authorization: Bearer ${JWT}`, 'Authorization: Bearer [REDACTED:jwt]'],
    ['jwt (unsigned)', `${base64url({ alg: 'none' })}.${base64url({ sub: 'a' })}.`, '[REDACTED:jwt]'],
    ['private-key (pkcs8)', `before\n${PKCS8}after`, 'before\n[REDACTED:private-key]\nafter'],
    ['private-key (pkcs1)', PKCS1.trim(), '[REDACTED:private-key]'],
    ['private-key (truncated)', 'x -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA', 'x [REDACTED:private-key]'],
    ['private-key (in JSON text)', JSON.stringify({ key: PKCS8 }), '{"key":"[REDACTED:private-key]\\n"}'],
    ['email', 'write to alice.smith+tag@mail.example.co.uk today', 'write to [REDACTED:email] today'],
    ['credit-card', 'card 4111 1111 1111 1111, exp 12/30', 'card [REDACTED:credit-card], exp 12/30'],
    ['credit-card (dashes)', '5500-0000-0000-0004', '[REDACTED:credit-card]'],
  ];
  for (const [name, input, expected] of cases) {
    it(`redacts ${name}`, () => {
      expect(redactor.text(input)).toBe(expected);
    });
  }

  it('leaves look-alikes alone', () => {
    const clean = [
      'AKIAIOSFODNN7EXAMPL', // one short
      'XAKIAIOSFODNN7EXAMPLE', // inside a longer token
      'ghp_short',
      'eyJhbGciOiJIUzI1NiJ9 alone',
      'abc.eyJ.x',
      '-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC\n-----END PUBLIC KEY-----',
      'card 4111 1111 1111 1112', // fails Luhn
      'order 1234567890123', // fails Luhn
      'not an email: a@b',
      'version 1.2.3 at 10:00',
    ];
    for (const text of clean) expect(redactor.text(text), text).toBe(text);
  });

  it('secrets are on by default, personal data is opt-in', () => {
    expect(DEFAULT_BUILTINS).not.toContain('email');
    expect(DEFAULT_BUILTINS).not.toContain('credit-card');
    const defaults = new Redactor(DEFAULT_BUILTINS, []);
    expect(defaults.text('a@example.com 4111111111111111 AKIAIOSFODNN7EXAMPLE')).toBe('a@example.com 4111111111111111 [REDACTED:aws-access-key-id]');
  });

  it('stays linear on hostile text', () => {
    // Each of these makes a backtracking-prone pattern quadratic or worse; here they finish at once.
    const hostile = [
      '-----BEGIN PRIVATE KEY-----'.repeat(20_000),
      `-----BEGIN RSA PRIVATE KEY-----${'- '.repeat(200_000)}`,
      `eyJ${'a'.repeat(300_000)}`,
      'eyJa.'.repeat(60_000),
      `${'a'.repeat(300_000)}@`,
      `a@${'b.'.repeat(150_000)}`,
      `a@${'b'.repeat(300_000)}`,
      '1 '.repeat(150_000),
      '1'.repeat(300_000),
      'AKIA'.repeat(75_000),
      `ghp_${'a'.repeat(300_000)}`,
    ];
    for (const text of hostile) redactor.text(text);
  });
});

describe('Redactor', () => {
  it('redacts text content, resource text and every string of structuredContent', () => {
    const redactor = new Redactor(DEFAULT_BUILTINS, [{ name: 'ticket', regex: 'TICKET-\\d+' }]);
    const result = {
      content: [
        { type: 'text', text: 'key AKIAIOSFODNN7EXAMPLE and TICKET-42' },
        { type: 'image', data: 'AKIAIOSFODNN7EXAMPLE', mimeType: 'image/png' },
        { type: 'resource', resource: { uri: 'file:///a', text: `token ${GITHUB}` } },
        { type: 'resource_link', uri: 'file:///b', name: 'AKIAIOSFODNN7EXAMPLE' },
      ],
      structuredContent: { list: [{ deep: { token: JWT } }, 'TICKET-7'], AKIAIOSFODNN7EXAMPLE: 'key names stay', n: 5 },
      isError: false,
    };
    const before = structuredClone(result);
    const { result: out, redactions } = redactor.redact(result);
    expect(redactions).toBe(5);
    expect(out).toEqual({
      content: [
        { type: 'text', text: 'key [REDACTED:aws-access-key-id] and [REDACTED:ticket]' },
        { type: 'image', data: 'AKIAIOSFODNN7EXAMPLE', mimeType: 'image/png' },
        { type: 'resource', resource: { uri: 'file:///a', text: 'token [REDACTED:github-token]' } },
        { type: 'resource_link', uri: 'file:///b', name: 'AKIAIOSFODNN7EXAMPLE' },
      ],
      structuredContent: { list: [{ deep: { token: '[REDACTED:jwt]' } }, '[REDACTED:ticket]'], AKIAIOSFODNN7EXAMPLE: 'key names stay', n: 5 },
      isError: false,
    });
    // Copy-on-write: the input is untouched and untouched parts are shared.
    expect(result).toEqual(before);
    expect(out).not.toBe(result);
    expect((out.content as unknown[])[1]).toBe(result.content[1]);
    expect((out.content as unknown[])[3]).toBe(result.content[3]);
  });

  it('returns the same object when nothing matches', () => {
    const redactor = new Redactor(ALL_BUILTINS, [{ name: 'ticket', regex: 'TICKET-\\d+' }]);
    const result = { content: [{ type: 'text', text: 'nothing to see' }], structuredContent: { a: ['b', { c: 'd' }] } };
    const { result: out, redactions } = redactor.redact(result);
    expect(out).toBe(result);
    expect(redactions).toBe(0);
    // Card-like numbers that fail the checksum do not count as changes either.
    const cards = { content: [{ type: 'text', text: '4111 1111 1111 1112' }] };
    expect(redactor.redact(cards).result).toBe(cards);
  });

  it('keeps a "__proto__" key an ordinary property', () => {
    const redactor = new Redactor(DEFAULT_BUILTINS, []);
    const result = JSON.parse('{"structuredContent":{"__proto__":{"k":"AKIAIOSFODNN7EXAMPLE"}}}') as Record<string, unknown>;
    const { result: out } = redactor.redact(result);
    const structured = out.structuredContent as Record<string, unknown>;
    expect(Object.getPrototypeOf(structured)).toBe(Object.prototype);
    expect(Object.hasOwn(structured, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"structuredContent":{"__proto__":{"k":"[REDACTED:aws-access-key-id]"}}}');
  });

  it('applies every pattern to the original text: no pattern sees another’s marker, the earlier wins on overlap', () => {
    const redactor = new Redactor(['aws-access-key-id'], [
      { name: 'word-key', regex: 'key' },
      { name: 'upper', regex: '[A-Z0-9]{8,}' },
    ]);
    expect(redactor.text('key AKIAIOSFODNN7EXAMPLE PLAINCAPS1 keyAKIA')).toBe(
      '[REDACTED:word-key] [REDACTED:aws-access-key-id] [REDACTED:upper] [REDACTED:word-key]AKIA',
    );
    const { redactions } = redactor.redact({ content: [{ type: 'text', text: 'key AKIAIOSFODNN7EXAMPLE' }] });
    expect(redactions).toBe(2);
  });

  it('supports inline flags in custom patterns', () => {
    const redactor = new Redactor([], [{ name: 'internal-host', regex: '(?i:[a-z0-9-]+\\.corp\\.example)' }]);
    expect(redactor.text('see DB01.Corp.Example now')).toBe('see [REDACTED:internal-host] now');
  });

  it('validates patterns when built, naming the bad one', () => {
    expect(() => new Redactor([], [{ name: 'broken', regex: '(unclosed' }])).toThrow(/redaction pattern "broken": invalid regex/);
    expect(() => new Redactor([], [{ name: 'empty', regex: 'a*' }])).toThrow(/redaction pattern "empty": matches the empty string/);
    expect(() => new Redactor(['nope'], [])).toThrow(/unknown built-in redaction pattern "nope"/);
    expect(() => new Redactor(['jwt'], [{ name: 'jwt', regex: 'x' }])).toThrow(/defined twice/);
    expect(() => new Redactor([], [{ name: 'bad name]', regex: 'x' }])).toThrow(/must be 1-64/);
  });
});
