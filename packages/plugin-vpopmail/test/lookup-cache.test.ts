import { readdir, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Connection,
  Message,
  Tokens,
  Transaction,
  bufferSource,
  createServer,
  splitAddress,
  type Delivery,
  type MessageParser,
  type QuailServer,
} from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import maildirPlugin from '@quail/plugin-maildir';
import vpopmailPlugin, { VpopmailAdmin } from '../src/index.js';

// The lookups of RCPT and delivery keep what they read from a domain directory
// once it has been left alone for a while. These tests date the files back so
// that everything read is kept, then make the changes an admin makes and check
// that the very next lookup sees each of them.

let root: string;
let cleanup: () => Promise<void>;
let server: QuailServer;
let admin: VpopmailAdmin;
let messages = 0;
const domainDir = () => join(root, 'domains', 'example.com');

/** Dates a file or directory back a minute, as if untouched since. */
async function settle(...paths: string[]): Promise<void> {
  const past = new Date(Date.now() - 60_000);
  for (const path of paths) await utimes(path, past, past);
}

const settleDomain = () => settle(domainDir(), join(domainDir(), '.qmail-default'), join(domainDir(), 'vpasswd'));

function rcpt(address: string) {
  const tx = new Transaction(new Connection({ protocol: 'smtp', remoteAddress: '192.0.2.7', remotePort: 4000, localAddress: '127.0.0.1', localPort: 25 }));
  return server.hooks.rcpt.promise(tx, splitAddress(address));
}

function deliver(address: string) {
  const parser = server.resolve<MessageParser>(Tokens.MessageParser);
  const at = address.lastIndexOf('@');
  const routed = `example.com-${address.slice(0, at)}@${address.slice(at + 1)}`;
  const delivery: Delivery = {
    id: 1,
    messageId: `m${++messages}`,
    sender: 'alice@example.org',
    channel: 'local',
    recipients: [{ recipient: address, route: { channel: 'local', recipient: address, address: routed, prefix: 'example.com' } }],
    message: new Message(bufferSource('Subject: hi\n\nbody\n'), parser),
    queuedAt: new Date(),
    attempt: 1,
    signal: new AbortController().signal,
  };
  return server.hooks.deliver.promise(delivery);
}

const inMaildir = (user: string) => readdir(join(domainDir(), user, 'Maildir', 'new')).then((names) => names.length);

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot({ me: 'mx.example.com\n' }));
  admin = new VpopmailAdmin(root);
  await admin.addDomain('example.com', 'pm');
  await admin.addUser('joe@example.com', 'pw');
  server = createServer({ root, plugins: [vpopmailPlugin, maildirPlugin], log: { level: 'silent' } });
  await server.start();
  await settleDomain();
});
afterEach(async () => {
  await server.stop();
  await cleanup();
});

describe('the lookups of RCPT and delivery see every change at once', () => {
  it('a user added with vadduser is accepted and delivered to; a user deleted is refused again', async () => {
    expect(await rcpt('ann@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    expect(await deliver('ann@example.com')).toMatchObject({ kind: 'failure' });
    expect(await rcpt('ann@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    await admin.addUser('ann@example.com', 'pw');
    expect(await rcpt('ann@example.com')).toBeUndefined();
    expect(await deliver('ann@example.com')).toEqual({ kind: 'success', text: 'did 0+0+1/' });
    expect(await inMaildir('ann')).toBe(1);
    await settleDomain();
    expect(await rcpt('ann@example.com')).toBeUndefined();
    await admin.deleteUser('ann@example.com');
    expect(await rcpt('ann@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    expect(await deliver('ann@example.com')).toMatchObject({ kind: 'failure' });
  });

  it('.qmail-default edited in place takes effect with the next message, and again when edited back', async () => {
    expect(await rcpt('nobody@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    expect(await deliver('nobody@example.com')).toMatchObject({ kind: 'failure' });
    const file = join(domainDir(), '.qmail-default');
    await writeFile(file, "| vdelivermail '' delete\n");
    expect(await rcpt('nobody@example.com')).toBeUndefined();
    expect(await deliver('nobody@example.com')).toEqual({ kind: 'success', text: 'vdelivermail: mail for unknown user nobody@example.com deleted' });
    await settle(file);
    expect(await rcpt('nobody@example.com')).toBeUndefined();
    await writeFile(file, "| vdelivermail '' bounce-no-mailbox\n");
    expect(await rcpt('nobody@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    expect(await deliver('nobody@example.com')).toMatchObject({ kind: 'failure' });
  });

  it('.qmail-default removed: unknown users are refused without it too; made again: it is read', async () => {
    const file = join(domainDir(), '.qmail-default');
    await writeFile(file, "| vdelivermail '' delete\n");
    await settleDomain();
    expect(await rcpt('nobody@example.com')).toBeUndefined();
    await unlink(file);
    expect(await rcpt('nobody@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    await settle(domainDir(), join(domainDir(), 'vpasswd'));
    expect(await rcpt('nobody@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    await writeFile(file, "| vdelivermail '' delete\n");
    expect(await rcpt('nobody@example.com')).toBeUndefined();
  });

  it('a .qmail-<alias> file added is used at once, and removed is forgotten at once', async () => {
    expect(await rcpt('list@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    expect(await deliver('list@example.com')).toMatchObject({ kind: 'failure' });
    await writeFile(join(domainDir(), '.qmail-list'), '&joe@example.com\n');
    expect(await rcpt('list@example.com')).toBeUndefined();
    // the file is found: running it needs plugin-local's DotQmail service, not loaded here
    expect(await deliver('list@example.com')).toMatchObject({ kind: 'deferral', text: expect.stringContaining('.qmail-list needs the DotQmail service') });
    await settleDomain();
    expect(await rcpt('list@example.com')).toBeUndefined();
    await unlink(join(domainDir(), '.qmail-list'));
    expect(await rcpt('list@example.com')).toMatchObject({ kind: 'deny', code: 550 });
    expect(await deliver('list@example.com')).toMatchObject({ kind: 'failure' });
  });

  it("a user's Maildir removed after deliveries is made again by the next one", async () => {
    expect(await deliver('joe@example.com')).toMatchObject({ kind: 'success' });
    expect(await deliver('joe@example.com')).toMatchObject({ kind: 'success' });
    expect(await inMaildir('joe')).toBe(2);
    await rm(join(domainDir(), 'joe', 'Maildir'), { recursive: true });
    expect(await deliver('joe@example.com')).toEqual({ kind: 'success', text: 'did 0+0+1/' });
    expect(await inMaildir('joe')).toBe(1);
  });
});
