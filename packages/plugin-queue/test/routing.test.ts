import { describe, expect, it } from 'vitest';
import { routeRecipient, type RoutingControls } from '@quail/plugin-queue';

const base: RoutingControls = {
  envnoathost: 'mx.example.com',
  percenthack: ['relay.example.com'],
  locals: ['mx.example.com', 'Example.COM'],
  virtualdomains: {
    'joe@virt.example.net': 'joe-only',
    'virt.example.net': 'virt',
    '.sub.example.org': 'subs',
    'example.org': 'org',
    'stays.example.org': '',
  },
};

describe('routing (qmail-send rewrite)', () => {
  it('appends envnoathost to an address without @ and delivers it locally', () => {
    expect(routeRecipient('postmaster', base)).toEqual({ channel: 'local', recipient: 'postmaster', address: 'postmaster@mx.example.com' });
  });

  it('matches locals case-insensitively and leaves the address as it is', () => {
    expect(routeRecipient('Joe@EXAMPLE.com', base)).toEqual({ channel: 'local', recipient: 'Joe@EXAMPLE.com', address: 'Joe@EXAMPLE.com' });
  });

  it('unwinds percenthack chains while the domain is listed', () => {
    expect(routeRecipient('a%b.example%relay.example.com@relay.example.com', base).address).toBe('a@b.example');
    expect(routeRecipient('bob%far.example@relay.example.com', base)).toEqual({ channel: 'remote', recipient: 'bob%far.example@relay.example.com', address: 'bob@far.example' });
    expect(routeRecipient('bob%far.example@other.example', base).address).toBe('bob%far.example@other.example');
  });

  it('looks up virtualdomains as user, domain, dot-suffixes, then the catch-all', () => {
    expect(routeRecipient('joe@virt.example.net', base)).toMatchObject({ channel: 'local', address: 'joe-only-joe@virt.example.net', prefix: 'joe-only' });
    expect(routeRecipient('ann@virt.example.net', base)).toMatchObject({ channel: 'local', address: 'virt-ann@virt.example.net', prefix: 'virt' });
    expect(routeRecipient('x@a.sub.example.org', base)).toMatchObject({ address: 'subs-x@a.sub.example.org', prefix: 'subs' });
    expect(routeRecipient('x@sub.example.org', base)).toMatchObject({ channel: 'remote', address: 'x@sub.example.org' });
    expect(routeRecipient('x@example.org', base)).toMatchObject({ address: 'org-x@example.org' });
    const catchAll = { ...base, virtualdomains: { ...base.virtualdomains, '': 'alias-catchall' } };
    expect(routeRecipient('z@elsewhere.test', catchAll)).toMatchObject({ channel: 'local', address: 'alias-catchall-z@elsewhere.test' });
  });

  it('treats an empty prefix as an exception that goes remote, even with a catch-all', () => {
    const catchAll = { ...base, virtualdomains: { ...base.virtualdomains, '': 'alias-catchall' } };
    expect(routeRecipient('y@stays.example.org', catchAll)).toEqual({ channel: 'remote', recipient: 'y@stays.example.org', address: 'y@stays.example.org' });
  });

  it('prefers locals over virtualdomains', () => {
    expect(routeRecipient('a@mx.example.com', { ...base, virtualdomains: { 'mx.example.com': 'v' } }).channel).toBe('local');
    expect(routeRecipient('a@mx.example.com', { ...base, virtualdomains: { 'mx.example.com': 'v' } }).prefix).toBeUndefined();
  });
});
