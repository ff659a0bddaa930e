import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import remote from '@quail/plugin-remote';
import { defaultPlugins, startLoopbackDns, startTestServer, type LoopbackDns, type TestServer, type ZoneEntry } from '@quail/testkit';
import { dnsblPlugin, queryName, safeReason } from '../src/dnsbl.js';

/** Two blocklists on a real DNS server (testkit's, UDP on 127.0.0.1). Names not in the table are NXDOMAIN. */
const zone: Record<string, ZoneEntry> = {
  '2.0.0.127.bl.test': { a: ['127.0.0.2'], txt: ['listed for testing, see https://bl.test/lookup?127.0.0.2'] },
  '3.0.0.127.bl.test': { a: ['127.0.0.4'], txt: ['bad\r\n250 ok\u0000'] },
  '4.0.0.127.bl.test': { rcode: 'SERVFAIL' },
  '5.0.0.127.other.test': { a: ['127.0.0.10'] },
  '6.0.0.127.bl.test': { a: ['192.0.2.1'] },
};

let dns: LoopbackDns;

beforeAll(async () => {
  dns = await startLoopbackDns(zone);
});
afterAll(() => dns.close());

let kit: TestServer | undefined;
afterEach(async () => {
  await kit?.stop();
  kit = undefined;
});

/** smtpd, queue, local, maildir, and plugin-remote for the Resolver service over control/dnsservers. */
function start(control: Record<string, string>) {
  return startTestServer({
    plugins: [dnsblPlugin, ...defaultPlugins(), remote],
    users: ['joe'],
    control: { dnsservers: dns.address, 'dnsbl.zones': 'bl.test\nother.test', ...control },
  });
}

async function greeting(from: string): Promise<{ text: string; closed: boolean }> {
  const smtp = await kit!.dialog({ localAddress: from });
  const text = smtp.greeting.text;
  const closed = await smtp.command('NOOP').then(() => false, () => true);
  await smtp.close();
  return { text, closed };
}

describe('dnsbl on connect', () => {
  it('refuses a listed client before the greeting with the list TXT reason, and closes', async () => {
    kit = await start({});
    expect(await greeting('127.0.0.2')).toEqual({ text: '451 listed for testing, see https://bl.test/lookup?127.0.0.2 (#4.7.1)', closed: true });
    expect(dns.queries).toContain('2.0.0.127.bl.test/A');
  });

  it('lets unlisted clients in and delivers their mail', async () => {
    kit = await start({});
    expect((await greeting('127.0.0.1')).text).toBe('220 quail.test ESMTP');
    await kit.send({ from: 'ann@example.org', to: 'joe@quail.test', localAddress: '127.0.0.7' });
    expect(await kit.waitForMessages('joe')).toHaveLength(1);
  });

  it('asks every zone: a listing in the second one counts, with a reason made up when it has no TXT', async () => {
    kit = await start({ 'dnsbl.permanent': '1' });
    expect((await greeting('127.0.0.5')).text).toBe('553 your address 127.0.0.5 is listed in other.test (#5.7.1)');
  });

  it('strips CR, LF and NUL from a hostile TXT reason', async () => {
    kit = await start({});
    const { text } = await greeting('127.0.0.3');
    expect(text).toBe('451 bad 250 ok (#4.7.1)');
    expect(text).not.toMatch(/[\r\n\0]/);
  });

  it('lets a client in when a lookup fails (SERVFAIL) or answers outside 127/8', async () => {
    kit = await start({});
    expect((await greeting('127.0.0.4')).text).toBe('220 quail.test ESMTP');
    expect((await greeting('127.0.0.6')).text).toBe('220 quail.test ESMTP');
  });

  it('follows tcprules RBLSMTPD: empty skips the check, a text blocks, a leading - blocks for good', async () => {
    kit = await start({ 'tcp.smtp': '127.0.0.2:allow,RBLSMTPD=""\n127.0.0.8:allow,RBLSMTPD="go away"\n127.0.0.9:allow,RBLSMTPD="-go away for good"\n:allow\n' });
    expect((await greeting('127.0.0.2')).text).toBe('220 quail.test ESMTP');
    expect((await greeting('127.0.0.8')).text).toBe('451 go away (#4.7.1)');
    expect((await greeting('127.0.0.9')).text).toBe('553 go away for good (#5.7.1)');
  });

  it('refuses a zone that is not a DNS name, naming file and line', async () => {
    await expect(start({ 'dnsbl.zones': 'bl.test\nbad zone!' })).rejects.toThrow(/control\/dnsbl\.zones:2:/);
  });
});

describe('lookup names', () => {
  it('reverses IPv4 octets and IPv6 nibbles', () => {
    expect(queryName('192.0.2.7', 'bl.test')).toBe('7.2.0.192.bl.test');
    expect(queryName('2001:db8::1', 'bl.test')).toBe(`1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.bl.test`);
    expect(queryName('not-an-ip', 'bl.test')).toBeUndefined();
  });
  it('keeps reasons short and printable', () => {
    expect(safeReason([['a'.repeat(500)]])).toHaveLength(200);
    expect(safeReason([['\u0001\u0002']])).toBeUndefined();
  });
});
