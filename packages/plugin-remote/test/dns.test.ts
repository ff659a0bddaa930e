import { afterEach, describe, expect, it } from 'vitest';
import { Tokens, type DeliveryResult } from '@quail/core';
import { findDestinations, SmtpRoutes } from '../src/index.js';
import { ConfiguredResolver } from '../src/dns-servers.js';
import { startDns, startPeer, startQuail, type Fixture, type ZoneEntry } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function dns(zone: Record<string, ZoneEntry>) {
  const server = await startDns(zone);
  cleanups.push(server.close);
  return server;
}

async function quail(files: Record<string, string>): Promise<Fixture> {
  const q = await startQuail(files);
  cleanups.push(q.stop);
  return q;
}

async function peerOn(host: string) {
  const p = await startPeer({ host });
  cleanups.push(p.close);
  return p;
}

describe('destinations from DNS (a real DNS server on loopback)', () => {
  it('delivers to the best MX, falling back to the next one when it does not answer', async () => {
    const sink = await peerOn('127.0.0.2');
    const zone = await dns({
      'example.org': { mx: [[20, 'mx2.example.org'], [10, 'mx1.example.org']] },
      'mx1.example.org': { a: ['127.0.0.3'] },
      'mx2.example.org': { a: ['127.0.0.2'] },
    });
    const q = await quail({ dnsservers: `${zone.address}\n`, 'remote.port': `${sink.port}\n` });
    const [result] = (await q.deliver(['ann@example.org'])) as DeliveryResult[];
    expect(result).toMatchObject({ kind: 'success' });
    expect(result!.text).toMatch(/^127\.0\.0\.2 accepted message\./);
    expect(zone.queries).toContain('example.org/MX');
    expect(sink.messages[0]!.to).toEqual(['ann@example.org']);
  });

  it('uses the address records of a domain without MX (implicit MX)', async () => {
    const sink = await peerOn('127.0.0.1');
    const zone = await dns({ 'plain.test': { a: ['127.0.0.1'] } });
    const q = await quail({ dnsservers: `${zone.address}\n`, 'remote.port': `${sink.port}\n` });
    const [result] = (await q.deliver(['x@plain.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
  });

  it('fails a domain with a null MX (RFC 7505) without connecting', async () => {
    const zone = await dns({ 'nullmx.test': { mx: [[0, '']], a: ['127.0.0.1'] } });
    const q = await quail({ dnsservers: `${zone.address}\n` });
    const [result] = (await q.deliver(['x@nullmx.test'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'failure', text: 'Sorry, nullmx.test does not accept mail: it publishes a null MX (RFC 7505). (#5.1.10)' });
  });

  it("fails a domain that does not exist with qmail's text", async () => {
    const zone = await dns({});
    const q = await quail({ dnsservers: `${zone.address}\n` });
    const [result] = (await q.deliver(['x@nowhere.test'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'failure', text: "Sorry, I couldn't find any host named nowhere.test. (#5.1.2)" });
  });

  it('defers when DNS fails temporarily', async () => {
    const zone = await dns({ 'broken.test': { rcode: 'SERVFAIL' } });
    const q = await quail({ dnsservers: `${zone.address}\n` });
    const [result] = (await q.deliver(['x@broken.test'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: "Sorry, I couldn't find any host by that name. (#4.1.2)" });
  });

  it('fails a domain whose exchangers have no addresses', async () => {
    const zone = await dns({ 'empty.test': { mx: [[10, 'mx.empty.test']] }, 'mx.empty.test': {} });
    const q = await quail({ dnsservers: `${zone.address}\n` });
    const [result] = (await q.deliver(['x@empty.test'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'failure', text: "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)" });
  });

  it('never sends to itself: an MX named as control/me loops back', async () => {
    const zone = await dns({ 'loop.test': { mx: [[10, 'quail.test']] }, 'quail.test': { a: ['127.0.0.5'] } });
    const q = await quail({ dnsservers: `${zone.address}\n` });
    const [result] = (await q.deliver(['x@loop.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('failure');
    expect(result!.text).toContain("Although I'm listed as a best-preference MX or A for that host");
    expect(result!.text).toContain('(#5.4.6)');
  });

  it('treats an MX whose address is ours (control/moreipme) as a loop, and keeps only better exchangers', async () => {
    const sink = await peerOn('127.0.0.2');
    const zone = await dns({
      'ours-best.test': { mx: [[10, 'me.ours.test'], [20, 'other.ours.test']] },
      'ours-second.test': { mx: [[20, 'me.ours.test'], [10, 'other.ours.test']] },
      'me.ours.test': { a: ['127.0.0.9'] },
      'other.ours.test': { a: ['127.0.0.2'] },
    });
    const q = await quail({ dnsservers: `${zone.address}\n`, moreipme: '127.0.0.9\n', 'remote.port': `${sink.port}\n` });
    const [best] = (await q.deliver(['x@ours-best.test'])) as DeliveryResult[];
    expect(best!.kind).toBe('failure');
    expect(best!.text).toContain('(#5.4.6)');
    const [second] = (await q.deliver(['x@ours-second.test'])) as DeliveryResult[];
    expect(second!.kind).toBe('success');
    expect(sink.messages).toHaveLength(1);
  });

  it('sends to an address literal without asking DNS', async () => {
    const sink = await peerOn('127.0.0.2');
    const zone = await dns({});
    const q = await quail({ dnsservers: `${zone.address}\n`, 'remote.port': `${sink.port}\n` });
    const [result] = (await q.deliver(['x@[127.0.0.2]'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(zone.queries).toEqual([]);
  });

  it('defers with #4.4.1 when no exchanger accepts a connection', async () => {
    const zone = await dns({ 'dead.test': { mx: [[10, 'mx.dead.test']] }, 'mx.dead.test': { a: ['127.0.0.3'] } });
    const sink = await peerOn('127.0.0.2');
    const q = await quail({ dnsservers: `${zone.address}\n`, 'remote.port': `${sink.port}\n` });
    const [result] = (await q.deliver(['x@dead.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('deferral');
    expect(result!.text).toMatch(/^Sorry, I wasn't able to establish an SMTP connection\. \(#4\.4\.1\)\nconnect to 127\.0\.0\.3:\d+ failed: ECONNREFUSED$/);
  });

  it('provides the Resolver service asking the servers of control/dnsservers', async () => {
    const zone = await dns({ 'svc.test': { mx: [[5, 'mx.svc.test']] } });
    const q = await quail({ dnsservers: `${zone.address}\n` });
    const resolver = q.server.resolve(Tokens.Resolver);
    expect(resolver).toBeInstanceOf(ConfiguredResolver);
    expect(await resolver.resolveMx('svc.test')).toEqual([{ exchange: 'mx.svc.test', priority: 5 }]);
  });

  it('smtproutes with an empty relay means: use the MX records', async () => {
    const sink = await peerOn('127.0.0.2');
    const zone = await dns({ 'mx.test': { mx: [[10, 'in.mx.test']] }, 'in.mx.test': { a: ['127.0.0.2'] } });
    const q = await quail({ dnsservers: `${zone.address}\n`, 'remote.port': `${sink.port}\n`, smtproutes: 'mx.test:\n:127.0.0.3:1\n' });
    const [result] = (await q.deliver(['x@mx.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
  });

  it('smtproutes with a relay name looks up its address records only', async () => {
    const sink = await peerOn('127.0.0.2');
    const zone = await dns({ 'relay.test': { a: ['127.0.0.2'], mx: [[10, 'elsewhere.test']] } });
    const q = await quail({ dnsservers: `${zone.address}\n`, smtproutes: `.routed.test:relay.test:${sink.port}\n` });
    const [result] = (await q.deliver(['x@deep.routed.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(zone.queries.some((qn) => qn.endsWith('/MX'))).toBe(false);
  });
});

describe('exchanger order', () => {
  it('orders by preference and draws lots among equal preferences', async () => {
    const zone = await dns({
      'tie.test': { mx: [[10, 'a.tie.test'], [10, 'b.tie.test'], [5, 'first.tie.test']] },
      'a.tie.test': { a: ['127.0.0.11'] },
      'b.tie.test': { a: ['127.0.0.12'] },
      'first.tie.test': { a: ['127.0.0.10'] },
    });
    const resolver = new ConfiguredResolver(() => [zone.address]);
    const order = async (draws: number[]) => {
      let i = 0;
      const found = await findDestinations('tie.test', {
        resolver,
        routes: new SmtpRoutes({}),
        port: 25,
        isOwnName: () => false,
        isOwnIp: () => false,
        random: () => draws[i++ % draws.length]!,
      });
      return found.kind === 'hosts' ? found.candidates.map((c) => c.host) : [];
    };
    const seen = new Set<string>();
    for (const draws of [[0.1, 0.9, 0.5], [0.9, 0.1, 0.5]]) {
      // The draw list is consumed in record order: a, b, first.
      const hosts = await order(draws);
      expect(hosts[0]).toBe('first.tie.test');
      seen.add(hosts.slice(1).join(','));
    }
    expect(seen).toEqual(new Set(['a.tie.test,b.tie.test', 'b.tie.test,a.tie.test']));
  });
});
