import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Tokens, type QueuedMessageInfo } from '@quail/core';
import { readMaildir, startTestServer, type TestServer } from '@quail/testkit';
import { prepareRelayRoot, relayPlugins } from '../src/relay.js';

let smarthost: TestServer;
let relay: TestServer;

/** The relay's LAN is 127.0.0.0/24; 127.0.1.x plays the Internet. */
async function startRelay(smarthostPort: number): Promise<TestServer> {
  return startTestServer({
    plugins: relayPlugins(),
    control: { me: 'relay.lan.test' },
    prepare: (root) =>
      prepareRelayRoot(root, {
        me: 'relay.lan.test',
        listen: '127.0.0.1:0',
        lan: ['127.0.0.'],
        smarthost: `127.0.0.1:${smarthostPort}`,
        loginDomain: 'lan.test',
        users: { joe: 'joe-password' },
      }),
  });
}

/** The smarthost: a second quail taking mail for three domains, delivering by local part to Maildirs. */
const startSmarthost = () => {
  const domains = 'far.example\nlan.test\nrelay.lan.test';
  return startTestServer({ control: { me: 'smarthost.test', rcpthosts: domains, locals: domains }, users: ['bob', 'joe', 'root'] });
};

beforeEach(async () => {
  smarthost = await startSmarthost();
  relay = await startRelay(smarthost.smtpPort);
});
afterEach(async () => {
  await relay.stop();
  await smarthost.stop();
});

describe('smarthost relay', () => {
  it('relays for the LAN (tcprules RELAYCLIENT) without a login, through the smarthost', async () => {
    await relay.send({ from: 'printer@lan.test', to: 'bob@far.example', subject: 'toner low', localAddress: '127.0.0.20' });
    const [message] = await smarthost.waitForMessages('bob');
    expect(message!.subject).toBe('toner low');
    expect(message!.returnPath).toBe('<printer@lan.test>');
    // the smarthost's Received line names the relay's EHLO; the relay's own is below it
    const received = message!.headers.getAll('received');
    expect(received.some((r) => r.includes('by smarthost.test'))).toBe(true);
    expect(received.some((r) => r.includes('by relay.lan.test'))).toBe(true);
  });

  it('refuses to relay for an outside client that has not logged in', async () => {
    await expect(relay.send({ from: 'x@spam.example', to: 'bob@far.example', localAddress: '127.0.1.20' })).rejects.toMatchObject({
      responseCode: 553,
      response: "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
    });
  });

  it('relays for an outside client after SMTP AUTH, and refuses a wrong password', async () => {
    await expect(relay.send({ from: 'joe@lan.test', to: 'bob@far.example', auth: { user: 'joe@lan.test', pass: 'wrong' }, localAddress: '127.0.1.20' })).rejects.toMatchObject({
      responseCode: 535,
    });
    await relay.send({ from: 'joe@lan.test', to: 'bob@far.example', subject: 'from the road', auth: { user: 'joe@lan.test', pass: 'joe-password' }, localAddress: '127.0.1.20' });
    expect((await smarthost.waitForMessages('bob'))[0]!.subject).toBe('from the road');
  });

  it('sends every domain to the smarthost, even its own name and its login domain', async () => {
    const smtp = await relay.dialog({ localAddress: '127.0.0.20' });
    await smtp.command('HELO pc.lan.test');
    await smtp.command('MAIL FROM:<joe@lan.test>');
    for (const rcpt of ['bob@far.example', 'joe@lan.test', 'root@relay.lan.test']) expect((await smtp.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
    expect((await smtp.data('Subject: three\n\nhi\n')).code).toBe(250);
    await smtp.close();
    for (const [user, address] of [['bob', 'bob@far.example'], ['joe', 'joe@lan.test'], ['root', 'root@relay.lan.test']]) {
      expect((await smarthost.waitForMessages(user!))[0]!.deliveredTo).toBe(address);
    }
    expect(await readMaildir(join(relay.root, 'domains/lan.test/joe/Maildir'))).toEqual([]);
  });

  it('keeps the message queued and deferred while the smarthost is down', async () => {
    await smarthost.stop();
    await relay.send({ from: 'printer@lan.test', to: 'bob@far.example', localAddress: '127.0.0.20' });
    await relay.settle();
    const [message] = await queued(relay);
    expect(message!.recipients).toEqual([expect.objectContaining({ recipient: 'bob@far.example', channel: 'remote', state: 'deferred' })]);
    expect(message!.recipients[0]!.lastText).toMatch(/establish an SMTP connection|connection/i);
    smarthost = await startSmarthost();
  });
});

async function queued(kit: TestServer): Promise<QueuedMessageInfo[]> {
  const all: QueuedMessageInfo[] = [];
  for await (const m of kit.server.resolve(Tokens.Queue).list()) all.push(m);
  return all;
}
