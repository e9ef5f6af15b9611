import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveSessionKey } from '../config/compile.ts';
import { OpenedSessions, openSession, sealSession, type SessionState } from './session-token.ts';

const key = deriveSessionKey('property-test-key-0123456789-0123456789');
const other = deriveSessionKey('another-key-0123456789-0123456789-abcd');
const state: SessionState = {
  sid: 'sid',
  route: 'l/r',
  owner: 'anonymous',
  protocolVersion: '2025-11-25',
  client: { capabilities: {}, clientInfo: { name: 'c' } },
  upstreams: { a: { id: 'u1', protocolVersion: '2025-11-25', features: ['tools'] } },
  iat: Math.floor(Date.now() / 1000),
};

describe('session tokens (property-based)', () => {
  it('round-trips, and only with a key it was sealed with', () => {
    const token = sealSession(state, key);
    expect(openSession(token, [key], 60_000)).toEqual(state);
    expect(openSession(token, [other, key], 60_000)).toEqual(state);
    expect(openSession(token, [other], 60_000)).toBeUndefined();
    expect(openSession(token, [key], 60_000, Date.now() + 120_000)).toBeUndefined();
  });

  it('any string that is not a token we sealed opens to nothing and never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 10_000 }), (s) => {
        expect(openSession(s, [key], 60_000)).toBeUndefined();
      }),
      { numRuns: 3000 },
    );
  });

  it('every single-character change to a real token is detected', () => {
    const token = sealSession(state, key);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), fc.constantFrom(...alphabet), (at, ch) => {
        fc.pre(token[at] !== ch);
        const tampered = token.slice(0, at) + ch + token.slice(at + 1);
        expect(openSession(tampered, [key], 60_000)).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('a token respelt in the unused bits of its last character opens to nothing', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // Sealed lengths one byte past a multiple of three leave four unused bits in the last character.
    // Of three sids one character apart, one gives such a length.
    const token = ['x', 'xy', 'xyz'].map((sid) => sealSession({ ...state, sid }, key)).find((t) => Buffer.from(t, 'base64url').length % 3 === 1)!;
    const respelt = token.slice(0, -1) + alphabet[alphabet.indexOf(token.at(-1)!) ^ 1];
    expect(Buffer.from(respelt, 'base64url').equals(Buffer.from(token, 'base64url'))).toBe(true);
    expect(openSession(token, [key], 60_000)).toEqual(expect.objectContaining({ sid: expect.any(String) }));
    expect(openSession(respelt, [key], 60_000)).toBeUndefined();
  });
});

describe('opened sessions cache', () => {
  it('answers like openSession, keeps checking expiry, and forgets when full', () => {
    const sessions = new OpenedSessions([key], 60_000, 2);
    const token = sealSession(state, key);
    expect(sessions.open(token)).toEqual(state);
    expect(sessions.open(token)).toBe(sessions.open(token));
    expect(sessions.open(token, Date.now() + 120_000)).toBeUndefined();
    expect(sessions.open(sealSession(state, other))).toBeUndefined();
    const others = [sealSession({ ...state, sid: 'b' }, key), sealSession({ ...state, sid: 'c' }, key)];
    for (const t of others) expect(sessions.open(t)?.sid).toBeDefined();
    expect(sessions.open(token)).toEqual(state);
  });

  it('returns a state only for the very token it was opened from, whatever the tokens share', () => {
    const sessions = new OpenedSessions([key], 60_000);
    const token = sealSession(state, key);
    expect(sessions.open(token)).toEqual(state);
    // Same IV (its first characters), other bytes after it: forged, so nothing opens.
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    expect(sessions.open(token.slice(0, -1) + last)).toBeUndefined();
    expect(sessions.open(`${token.slice(0, 16)}${'A'.repeat(token.length - 16)}`)).toBeUndefined();
    expect(sessions.open(token.slice(0, 16))).toBeUndefined();
    expect(sessions.open(token)).toEqual(state);
  });
});
