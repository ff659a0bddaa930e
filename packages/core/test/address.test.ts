import { describe, expect, it } from 'vitest';
import { domainSuffixes, matchesHostList, splitAddress, normaliseIp } from '@quail/core';

describe('addresses', () => {
  it('split at the last @, keeping the address as given and the domain lower-cased for lookups', () => {
    expect(splitAddress('"a@b"@Example.TEST')).toEqual({ address: '"a@b"@Example.TEST', local: '"a@b"', domain: 'example.test' });
    expect(splitAddress('vorname')).toEqual({ address: 'vorname', local: 'vorname', domain: '' });
    expect(splitAddress('')).toEqual({ address: '', local: '', domain: '' });
  });

  it('list qmail lookup suffixes longest first', () => {
    expect(domainSuffixes('A.b.c')).toEqual(['a.b.c', '.b.c', '.c']);
    expect(domainSuffixes('localhost')).toEqual(['localhost']);
  });

  it('match rcpthosts entries exactly or by .suffix', () => {
    const hosts = new Set(['example.test', '.sub.test']);
    expect(matchesHostList('example.test', hosts)).toBe(true);
    expect(matchesHostList('x.example.test', hosts)).toBe(false);
    expect(matchesHostList('a.sub.test', hosts)).toBe(true);
    expect(matchesHostList('sub.test', hosts)).toBe(false);
    expect(matchesHostList('', hosts)).toBe(true);
  });

  it('show IPv4-mapped addresses as IPv4', () => {
    expect(normaliseIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normaliseIp('::1')).toBe('::1');
  });
});

describe('deliveryKey', () => {
  it('is stable for one delivery and differs by message, recipient and part', async () => {
    const { deliveryKey } = await import('@quail/core');
    const d = { messageId: 'm1', queuedAt: new Date(1_700_000_000_500) };
    expect(deliveryKey(d, 'a@x.test')).toBe(deliveryKey({ ...d }, 'a@x.test'));
    expect(deliveryKey(d, 'a@x.test')).toMatch(/^1700000000\.M500000Q[0-9a-f]{24}$/);
    expect(deliveryKey({ ...d, queuedAt: new Date(1_700_000_000_007) }, 'a@x.test') < deliveryKey({ ...d, queuedAt: new Date(1_700_000_000_120) }, 'a@x.test')).toBe(true);
    const keys = new Set([deliveryKey(d, 'a@x.test'), deliveryKey(d, 'b@x.test'), deliveryKey(d, 'a@x.test', 'line 2'), deliveryKey({ ...d, messageId: 'm2' }, 'a@x.test')]);
    expect(keys.size).toBe(4);
  });
});

describe('Connection.signal', () => {
  it('aborts on close, whether it was asked for before or after', async () => {
    const { Connection } = await import('@quail/core');
    const make = () => new Connection({ protocol: 'smtp', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 25 });
    const early = make();
    const signal = early.signal;
    expect(signal.aborted).toBe(false);
    early.closed();
    expect(signal.aborted).toBe(true);
    const late = make();
    late.closed();
    expect(late.signal.aborted).toBe(true);
  });
});
