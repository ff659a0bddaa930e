import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type DeliveryResult } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import remote, { SmtpRoutes, parseRouteValue, parseTlsDestinations, tlsPolicyFor } from '../src/index.js';
import { parseDnsServers } from '../src/dns-servers.js';
import { parseIpList } from '../src/own-host.js';
import { startPeer, startQuail } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const fail = (at: number | string, reason: string): never => {
  throw new Error(`${at}: ${reason}`);
};

describe('control/smtproutes entries', () => {
  it('reads relay, port, bracketed addresses and credentials', () => {
    expect(parseRouteValue('a.test', 'relay.example.com')).toEqual({ key: 'a.test', relay: 'relay.example.com' });
    expect(parseRouteValue('a.test', 'Relay.Example.com.:2525')).toEqual({ key: 'a.test', relay: 'relay.example.com', port: 2525 });
    expect(parseRouteValue('a.test', '[192.0.2.7]:26')).toEqual({ key: 'a.test', relay: '192.0.2.7', port: 26 });
    expect(parseRouteValue('a.test', '192.0.2.7')).toEqual({ key: 'a.test', relay: '192.0.2.7' });
    expect(parseRouteValue('a.test', '[2001:db8::1]:587')).toEqual({ key: 'a.test', relay: '2001:db8::1', port: 587 });
    expect(parseRouteValue('', 'smart.test:587 me@isp.test s3cret with spaces')).toEqual({
      key: '',
      relay: 'smart.test',
      port: 587,
      credentials: { user: 'me@isp.test', password: 's3cret with spaces' },
    });
    expect(parseRouteValue('a.test', '')).toEqual({ key: 'a.test' });
  });

  it.each([
    ['relay:0', /port "0"/],
    ['relay:99999', /port "99999"/],
    ['relay:25x', /port "25x"/],
    ['[192.0.2.7', /unclosed \[/],
    ['[not-an-ip]:25', /not an IP address/],
    ['[192.0.2.7]x', /unexpected "x"/],
    ['../../etc/passwd', /neither a host name nor an IP address/],
    ['bad_host!:25', /neither a host name nor an IP address/],
    ['relay:25 onlyuser', /user name and a password/],
    [':25', /a port needs a relay/],
    [':25 user pass', /credentials need a relay/],
  ])('refuses %j', (value, reason) => {
    expect(() => parseRouteValue('a.test', value)).toThrow(reason);
  });

  it("looks up the domain, then each .suffix, then the default key (qmail's order)", () => {
    const routes = new SmtpRoutes({ 'a.b.test': 'exact.test', '.b.test': 'suffix.test', '': 'default.test', 'bad.test': 'x:0' });
    const relay = (d: string) => {
      const r = routes.lookup(d);
      return r.kind === 'route' ? r.route.relay : r.kind;
    };
    expect(relay('a.b.test')).toBe('exact.test');
    expect(relay('c.a.b.test')).toBe('suffix.test');
    expect(relay('b.test')).toBe('default.test');
    expect(relay('bad.test')).toBe('invalid');
    expect(routes.problems).toEqual(['control/smtproutes: entry "bad.test": port "0" is not a number from 1 to 65535']);
    expect(new SmtpRoutes({}).lookup('x.test')).toEqual({ kind: 'none' });
  });

  it('defers recipients whose route is invalid, naming the entry, and delivers the others', async () => {
    const sink = await startPeer();
    cleanups.push(sink.close);
    const q = await startQuail({ smtproutes: `good.test:127.0.0.1:${sink.port}\nbad.test:127.0.0.1:notaport\n` });
    cleanups.push(q.stop);
    const [bad] = (await q.deliver(['x@bad.test'])) as DeliveryResult[];
    expect(bad).toEqual({
      kind: 'deferral',
      text: 'Sorry, control/smtproutes is invalid for this domain: entry "bad.test": port "notaport" is not a number from 1 to 65535 (#4.3.5)',
    });
    const [good] = (await q.deliver(['x@good.test'])) as DeliveryResult[];
    expect(good!.kind).toBe('success');
  });

  it('takes a changed smtproutes on reload', async () => {
    const first = await startPeer();
    const second = await startPeer();
    cleanups.push(first.close, second.close);
    const q = await startQuail({ smtproutes: `r.test:127.0.0.1:${first.port}\n` });
    cleanups.push(q.stop);
    await q.deliver(['x@r.test']);
    await q.writeControl('smtproutes', `r.test:127.0.0.1:${second.port}\n`);
    expect(await q.server.reload()).toBe(true);
    await q.deliver(['y@r.test']);
    expect(first.messages.map((m) => m.to[0])).toEqual(['x@r.test']);
    expect(second.messages.map((m) => m.to[0])).toEqual(['y@r.test']);
  });
});

describe('control/tlsdestinations', () => {
  it('reads levels and CA files, and looks up domain, suffix, relay, default', () => {
    const table = parseTlsDestinations({ 'a.test': 'verify:/etc/ssl/ca.pem', '.b.test': 'encrypt', 'smart.test': 'none', '': 'MAY' }, fail);
    expect(tlsPolicyFor(table, 'a.test')).toEqual({ level: 'verify', caFile: '/etc/ssl/ca.pem' });
    expect(tlsPolicyFor(table, 'x.b.test')).toEqual({ level: 'encrypt' });
    expect(tlsPolicyFor(table, 'c.test', 'smart.test')).toEqual({ level: 'none' });
    expect(tlsPolicyFor(table, 'c.test')).toEqual({ level: 'may' });
    expect(tlsPolicyFor({}, 'c.test')).toEqual({ level: 'may' });
  });

  it.each([
    [{ 'a.test': 'sometimes' }, /a\.test: unknown TLS level "sometimes"/],
    [{ 'a.test': 'may:/etc/ca.pem' }, /only used with the verify level/],
    [{ 'a.test': 'verify:../ca.pem' }, /absolute path/],
  ])('refuses %j', (raw, reason) => {
    expect(() => parseTlsDestinations(raw, fail)).toThrow(reason);
  });

  it('a bad line stops the server from starting, naming file and line', async () => {
    const { root, cleanup } = await tempRoot({ tlsdestinations: '# policy\na.test:verify\nb.test:perhaps\n' });
    cleanups.push(cleanup);
    const server = createServer({ root, plugins: [remote], log: { level: 'silent' } });
    await expect(server.start()).rejects.toThrow('control/tlsdestinations:3: unknown TLS level "perhaps"');
  });
});

describe('control/dnsservers, moreipme, notipme', () => {
  it('accepts ip, ip:port and [ipv6]:port', () => {
    expect(parseDnsServers(['192.0.2.53', '127.0.0.1:5353', '::1', '[::1]:5353'], fail)).toEqual(['192.0.2.53', '127.0.0.1:5353', '::1', '[::1]:5353']);
  });

  it.each([['dns.example.com'], ['127.0.0.1:99999'], ['[::1'], ['1.2.3.4\r\nevil'], ['']])('refuses %j', (line) => {
    expect(() => parseDnsServers([line], fail)).toThrow(/^0: /);
  });

  it('a bad dnsservers line stops the server from starting, naming file and line', async () => {
    const { root, cleanup } = await tempRoot({ dnsservers: '127.0.0.1\nname.server.test\n' });
    cleanups.push(cleanup);
    const server = createServer({ root, plugins: [remote], log: { level: 'silent' } });
    await expect(server.start()).rejects.toThrow('control/dnsservers:2: "name.server.test" is not an IP address');
  });

  it('reads addresses for moreipme/notipme, with or without brackets', () => {
    expect(parseIpList(['192.0.2.1', '[2001:DB8::1]', '::ffff:10.0.0.1'], fail)).toEqual(['192.0.2.1', '2001:db8::1', '10.0.0.1']);
    expect(() => parseIpList(['localhost'], fail)).toThrow('0: "localhost" is not an IP address');
  });

  it('refuses out-of-range numbers in its own files', async () => {
    const { root, cleanup } = await tempRoot({ 'remote.reuse': '0\n' });
    cleanups.push(cleanup);
    const server = createServer({ root, plugins: [remote], log: { level: 'silent' } });
    await expect(server.start()).rejects.toThrow(/control\/remote\.reuse:1: /);
  });
});
