import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Connection,
  Message,
  Transaction,
  Tokens,
  bufferSource,
  createServer,
  splitAddress,
  verdictToSmtpReply,
  type Delivery,
  type MessageParser,
  type QuailServer,
} from '@quail/core';
import { ManualClock, tempRoot } from '@quail/core/testing';
import maildirPlugin from '@quail/plugin-maildir';
import vpopmailPlugin, { VpopmailAdmin } from '../src/index.js';

let root: string;
let cleanup: () => Promise<void>;
let server: QuailServer;
let admin: VpopmailAdmin;
const domainDir = () => join(root, 'domains', 'example.com');

const BODY = 'Received: (qmail 4242 invoked from network); 5 Mar 2024 09:04:01 -0000\nSubject: hi\n\n.leading dot\n';

let messages = 0;

/** A queued message to one address; each call is a new message, as each queued message has its own id. */
function delivery(address: string, options: { prefix?: string; channel?: string; body?: string; sender?: string } = {}): Delivery {
  const parser = server.resolve<MessageParser>(Tokens.MessageParser);
  const at = address.lastIndexOf('@');
  const prefix = options.prefix ?? 'example.com';
  const routed = `${prefix}-${address.slice(0, at)}@${address.slice(at + 1)}`;
  return {
    id: 1,
    messageId: `m${++messages}`,
    sender: options.sender ?? 'alice@example.org',
    channel: options.channel ?? 'local',
    recipients: [{ recipient: address, route: { channel: options.channel ?? 'local', recipient: address, address: routed, prefix } }],
    message: new Message(bufferSource(options.body ?? BODY), parser),
    queuedAt: new Date(),
    attempt: 1,
    signal: new AbortController().signal,
  };
}

const deliver = (d: Delivery) => server.hooks.deliver.promise(d);

async function stored(maildir: string): Promise<string[]> {
  const dir = join(maildir, 'new');
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(names.sort().map((n) => readFile(join(dir, n), 'utf8')));
}

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot({ me: 'mx.example.com\n' }));
  admin = new VpopmailAdmin(root);
  await admin.addDomain('example.com', 'pm');
  await admin.addAliasDomain('example.com', 'alias.org');
  await admin.addUser('joe@example.com', 'pw');
  server = createServer({ root, plugins: [vpopmailPlugin, maildirPlugin], log: { level: 'silent' } });
  await server.start();
});
afterEach(async () => {
  await server.stop();
  await cleanup();
});

describe('vdelivermail', () => {
  it("delivers to an existing user's Maildir with Return-Path and vdelivermail's Delivered-To", async () => {
    expect(await deliver(delivery('joe@example.com'))).toEqual({ kind: 'success', text: 'did 0+0+1/' });
    expect(await stored(join(domainDir(), 'joe', 'Maildir'))).toEqual([`Return-Path: <alice@example.org>\nDelivered-To: joe@example.com\n${BODY}`]);
  });

  it('alias domains, upper case and -extensions reach the same user; the null sender shows as <>', async () => {
    await deliver(delivery('joe@alias.org'));
    await deliver(delivery('JOE@example.com'));
    await deliver(delivery('joe-lists@example.com', { sender: '' }));
    const messages = await stored(join(domainDir(), 'joe', 'Maildir'));
    expect(messages).toHaveLength(3);
    expect(messages.filter((m) => m.startsWith('Return-Path: <>\nDelivered-To: joe@example.com\n'))).toHaveLength(1);
  });

  it('a vpopmail style alias (virtualdomains alias:alias plus users/assign) delivers as the real domain', async () => {
    await mkdir(join(root, 'users'), { recursive: true });
    await writeFile(join(root, 'users', 'assign'), `+old.example-:example.com:89:89:/home/vpopmail/domains/example.com:-::\n.\n`);
    expect(await deliver(delivery('joe@old.example', { prefix: 'old.example' }))).toMatchObject({ kind: 'success' });
    expect(await stored(join(domainDir(), 'joe', 'Maildir'))).toHaveLength(1);
  });

  it('passes deliveries that are not for vpopmail domains', async () => {
    expect(await deliver(delivery('joe@example.com', { prefix: 'other.example' }))).toBeUndefined();
    expect(await deliver(delivery('joe@example.com', { channel: 'remote' }))).toBeUndefined();
    const noPrefix = delivery('joe@example.com');
    delete noPrefix.recipients[0]!.route.prefix;
    expect(await deliver(noPrefix)).toBeUndefined();
  });

  it('unknown users bounce with vdelivermail\'s text, or the domain\'s .no-user.msg', async () => {
    expect(await deliver(delivery('nobody@example.com'))).toEqual({ kind: 'failure', text: 'Sorry, no mailbox here by that name. (#5.1.1)' });
    await writeFile(join(domainDir(), '.no-user.msg'), 'No such person here.\n');
    expect(await deliver(delivery('nobody@example.com'))).toEqual({ kind: 'failure', text: 'No such person here.' });
    expect(await deliver(delivery('bad/name@example.com'))).toEqual({ kind: 'failure', text: 'vdelivermail: invalid username' });
  });

  it('delete drops mail for unknown users and still delivers to known ones', async () => {
    await writeFile(join(domainDir(), '.qmail-default'), "| /home/vpopmail/bin/vdelivermail '' delete\n");
    expect(await deliver(delivery('nobody@example.com'))).toMatchObject({ kind: 'success' });
    expect(await deliver(delivery('joe@example.com'))).toMatchObject({ kind: 'success' });
    expect(await stored(join(domainDir(), 'joe', 'Maildir'))).toHaveLength(1);
  });

  it('a catch-all directory or Maildir takes mail for unknown users', async () => {
    await admin.addUser('catchall@example.com', 'pw');
    await writeFile(join(domainDir(), '.qmail-default'), `| vdelivermail '' ${join(domainDir(), 'catchall')}\n`);
    expect(await deliver(delivery('nobody@example.com'))).toMatchObject({ kind: 'success' });
    const got = await stored(join(domainDir(), 'catchall', 'Maildir'));
    expect(got).toEqual([`Return-Path: <alice@example.org>\nDelivered-To: nobody@example.com\n${BODY}`]);
    const box = join(root, 'spool', 'Maildir');
    await writeFile(join(domainDir(), '.qmail-default'), `| vdelivermail '' ${box}/\n`);
    expect(await deliver(delivery('other@example.com'))).toMatchObject({ kind: 'success' });
    expect(await stored(box)).toHaveLength(1);
  });

  it('a forwarding catch-all needs the Queue service and says so when it is missing', async () => {
    await writeFile(join(domainDir(), '.qmail-default'), "| vdelivermail '' catch@example.org\n");
    expect(await deliver(delivery('nobody@example.com'))).toEqual({ kind: 'deferral', text: 'vdelivermail: no Queue service to forward the message with' });
  });

  it('the bounce-mail flag bounces', async () => {
    await admin.modifyUser('joe@example.com', { flags: { bounceMail: true } });
    expect(await deliver(delivery('joe@example.com'))).toEqual({ kind: 'failure', text: 'vdelivermail: account is locked email bounced joe@example.com' });
  });

  it('quota from vpasswd is enforced by the MailStore; over quota bounces with the text or .over-quota.msg', async () => {
    await admin.setQuota('joe@example.com', '300');
    expect(await deliver(delivery('joe@example.com'))).toMatchObject({ kind: 'success' });
    expect(await deliver(delivery('joe@example.com', { body: `Subject: big\n\n${'x'.repeat(400)}\n` }))).toEqual({ kind: 'failure', text: 'user is over quota' });
    await writeFile(join(domainDir(), '.over-quota.msg'), 'Mailbox full.');
    expect(await deliver(delivery('joe@example.com', { body: `Subject: big\n\n${'x'.repeat(400)}\n` }))).toEqual({ kind: 'failure', text: 'Mailbox full.' });
    expect(await stored(join(domainDir(), 'joe', 'Maildir'))).toHaveLength(1);
    await admin.setQuota('joe@example.com', 'NOQUOTA');
    expect(await deliver(delivery('joe@example.com', { body: `Subject: big\n\n${'x'.repeat(400)}\n` }))).toMatchObject({ kind: 'success' });
  });

  it('.quotawarn.msg is delivered once a day while the maildir is at 90% or more', async () => {
    await server.stop();
    const clock = new ManualClock();
    server = createServer({ root, plugins: [vpopmailPlugin, maildirPlugin], log: { level: 'silent' }, services: [[Tokens.Clock, clock]] });
    await server.start();
    await writeFile(join(root, 'domains', '.quotawarn.msg'), 'From: postmaster\nSubject: mailbox almost full\n\nPlease delete some mail.\n');
    await admin.setQuota('joe@example.com', '1000');
    const maildir = join(domainDir(), 'joe', 'Maildir');
    // 459 octets stored per message: the second one brings the maildir to 91.8%.
    const body = `Subject: part\n\n${'x'.repeat(380)}\n`;
    expect(await deliver(delivery('joe@example.com', { body }))).toMatchObject({ kind: 'success' });
    expect((await stored(maildir)).filter((m) => m.includes('mailbox almost full'))).toHaveLength(0);
    expect(await deliver(delivery('joe@example.com', { body }))).toMatchObject({ kind: 'success' });
    let warnings = (await stored(maildir)).filter((m) => m.includes('mailbox almost full'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^Return-Path: <>\nDelivered-To: joe@example\.com\nTo: joe@example\.com\nDate: .*\nFrom: postmaster\nSubject: mailbox almost full\n\nPlease delete some mail\.\n$/);
    expect(await deliver(delivery('joe@example.com', { body }))).toMatchObject({ kind: 'failure', text: 'user is over quota' });
    expect((await stored(maildir)).filter((m) => m.includes('mailbox almost full'))).toHaveLength(1);
    await clock.advance(25 * 60 * 60 * 1000);
    expect(await deliver(delivery('joe@example.com', { body }))).toMatchObject({ kind: 'failure' });
    warnings = (await stored(maildir)).filter((m) => m.includes('mailbox almost full'));
    expect(warnings).toHaveLength(2);
  });

  it('loops are refused: qmail-local\'s Delivered-To line and vdelivermail\'s', async () => {
    const looped = await deliver(delivery('joe@example.com', { body: `Delivered-To: example.com-joe@example.com\n${BODY}` }));
    expect(looped).toEqual({ kind: 'failure', text: 'This message is looping: it already has my Delivered-To line. (#5.4.6)' });
    const looped2 = await deliver(delivery('joe@example.com', { body: `Delivered-To: Joe@Example.com\n${BODY}` }));
    expect(looped2).toEqual({ kind: 'failure', text: 'vdelivermail: mail is looping for joe@example.com' });
  });

  it('a missing Maildir is recreated', async () => {
    await rm(join(domainDir(), 'joe', 'Maildir'), { recursive: true });
    expect(await deliver(delivery('joe@example.com'))).toMatchObject({ kind: 'success' });
    expect(await stored(join(domainDir(), 'joe', 'Maildir'))).toHaveLength(1);
  });

  it(".qmail files (user's own, valias, a non-vdelivermail .qmail-default) need the DotQmail service", async () => {
    await writeFile(join(domainDir(), 'joe', '.qmail'), '&elsewhere@example.org\n');
    expect(await deliver(delivery('joe@example.com'))).toMatchObject({ kind: 'deferral', text: expect.stringContaining('needs the DotQmail service') });
    await admin.addAlias('info@example.com', 'joe@example.org');
    expect(await deliver(delivery('info@example.com'))).toMatchObject({ kind: 'deferral', text: expect.stringContaining('.qmail-info needs the DotQmail service') });
    await writeFile(join(domainDir(), '.qmail-default'), "| vdelivermail ''\n");
    expect(await deliver(delivery('nobody@example.com'))).toEqual({ kind: 'deferral', text: 'vdelivermail: invalid syntax in .qmail-default file' });
  });
});

describe('chkuser at RCPT', () => {
  const rcpt = (address: string) => {
    const tx = new Transaction(new Connection({ protocol: 'smtp', remoteAddress: '192.0.2.7', remotePort: 4000, localAddress: '127.0.0.1', localPort: 25 }));
    return server.hooks.rcpt.promise(tx, splitAddress(address));
  };

  it('refuses unknown users of bounce-no-mailbox domains with chkuser\'s 550', async () => {
    const verdict = await rcpt('nobody@example.com');
    expect(verdict && verdictToSmtpReply(verdict, { code: 250, text: 'ok' })).toEqual({ code: 550, text: 'sorry, no mailbox here by that name. (#5.1.1)', close: false });
    expect(await rcpt('nobody@alias.org')).toMatchObject({ kind: 'deny', code: 550 });
    expect(await rcpt('../etc@example.com')).toMatchObject({ kind: 'deny', code: 550 });
  });

  it('passes users, -extensions, valias entries, catch-all domains and other domains', async () => {
    await admin.addAlias('info@example.com', 'joe@example.org');
    for (const address of ['joe@example.com', 'JOE@alias.org', 'joe-lists@example.com', 'info@example.com', 'someone@elsewhere.example', 'nodomain']) {
      expect(await rcpt(address), address).toBeUndefined();
    }
    await writeFile(join(domainDir(), '.qmail-default'), "| vdelivermail '' delete\n");
    expect(await rcpt('nobody@example.com')).toBeUndefined();
  });
});
