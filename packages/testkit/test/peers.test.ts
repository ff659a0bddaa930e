import { Resolver } from 'node:dns/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport } from 'nodemailer';
import { SmtpPeer, startLoopbackDns, type LoopbackDns } from '@quail/testkit';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('SmtpPeer', () => {
  it('records what a real client sends, dot-stuffing undone, and refuses the recipients it is told to', async () => {
    const peer = await SmtpPeer.start({ refuse: (rcpt) => rcpt.startsWith('gone@') });
    closers.push(() => peer.close());
    const transport = createTransport({ host: '127.0.0.1', port: peer.port, secure: false, ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'ann@example.org', to: ['bob@example.net', 'gone@example.net'] },
      raw: 'Subject: hello\r\n\r\n.a line with a dot\r\nend\r\n',
    });
    expect(info.accepted).toEqual(['bob@example.net']);
    expect(info.rejected).toEqual(['gone@example.net']);
    expect(peer.messages).toEqual([{ sender: 'ann@example.org', recipients: ['bob@example.net'], data: 'Subject: hello\n\n.a line with a dot\nend\n' }]);
  });
});

describe('startLoopbackDns', () => {
  it('answers MX, A and TXT from its table, NXDOMAIN otherwise, and lists the questions', async () => {
    const dns: LoopbackDns = await startLoopbackDns({
      'example.test': { mx: [[10, 'mx.example.test']] },
      'mx.example.test': { a: ['127.0.0.7'], txt: ['v=spf1 -all'] },
    });
    closers.push(() => dns.close());
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([dns.address]);
    expect(await resolver.resolveMx('example.test')).toEqual([{ priority: 10, exchange: 'mx.example.test' }]);
    expect(await resolver.resolve4('mx.example.test')).toEqual(['127.0.0.7']);
    expect(await resolver.resolveTxt('mx.example.test')).toEqual([['v=spf1 -all']]);
    await expect(resolver.resolve4('nowhere.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(dns.queries).toEqual(['example.test/MX', 'mx.example.test/A', 'mx.example.test/TXT', 'nowhere.test/A']);
  });
});
