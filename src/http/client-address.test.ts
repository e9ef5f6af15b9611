import { describe, expect, it } from 'vitest';
import { clientNetwork, ClientAddressResolver } from './client-address.ts';

describe('client addresses', () => {
  it('count an IPv4 client by its address, however it is written, and an IPv6 client by its /64', () => {
    expect(clientNetwork('203.0.113.9')).toBe('203.0.113.9');
    expect(clientNetwork('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(clientNetwork('2001:db8:1:2:aaaa::1')).toBe(clientNetwork('2001:db8:1:2:bbbb:cccc:dddd:2'));
    expect(clientNetwork('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:db8:1:3::1')).not.toBe(clientNetwork('2001:db8:1:2::1'));
    expect(clientNetwork('not an address')).toBe('not an address');
  });

  it('take X-Forwarded-For only from a trusted proxy, from the right', () => {
    const resolver = new ClientAddressResolver(['10.0.0.0/8']);
    expect(resolver.resolve('10.0.0.1', '198.51.100.7, 203.0.113.9, 10.0.0.2')).toBe('203.0.113.9');
    expect(resolver.resolve('192.0.2.1', '203.0.113.9')).toBe('192.0.2.1');
  });
});
