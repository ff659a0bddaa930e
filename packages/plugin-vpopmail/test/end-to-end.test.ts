import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Connection, Transaction, createServer, splitAddress, Tokens, type Queue, type QuailServer } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import maildirPlugin from '@quail/plugin-maildir';
import localPlugin from '@quail/plugin-local';
import queuePlugin from '@quail/plugin-queue';
import vpopmailPlugin, { VpopmailAdmin } from '../src/index.js';

let root: string;
let cleanup: () => Promise<void>;
let server: QuailServer;

async function messages(domain: string, user: string): Promise<string[]> {
  const dir = join(root, 'domains', domain, user, 'Maildir', 'new');
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
}

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot({ me: 'mx.example.com\n', locals: 'mx.example.com\n' }));
  const admin = new VpopmailAdmin(root);
  await admin.addDomain('example.com', 'pm');
  await admin.addDomain('other.example', 'pm');
  await admin.addAliasDomain('example.com', 'alias.org');
  await admin.addUser('joe@example.com', 'pw');
  await admin.addUser('catch@other.example', 'pw');
  server = createServer({ root, plugins: [queuePlugin, vpopmailPlugin, localPlugin, maildirPlugin], log: { level: 'silent' } });
  await server.start();
});
afterEach(async () => {
  await server.stop();
  await cleanup();
});

describe('through the queue: virtualdomains routing, vdelivermail, bounces, catch-all forwarding', () => {
  it('delivers to users of real and alias domains and bounces unknown users to the sender', async () => {
    const queue = server.resolve<Queue>(Tokens.Queue);
    await queue.enqueue({ sender: 'postmaster@other.example', recipients: ['joe@example.com', 'Joe@alias.org', 'nobody@example.com'] }, 'Subject: hi\n\nhello\n', { kind: 'local', uid: 0 });
    await queue.idle();
    const joe = await messages('example.com', 'joe');
    expect(joe).toHaveLength(2);
    for (const m of joe) expect(m).toMatch(/^Return-Path: <postmaster@other\.example>\nDelivered-To: joe@example\.com\nReceived: \(qmail \d+ invoked by uid 0\); .*\nSubject: hi\n\nhello\n$/);
    const bounces = await messages('other.example', 'postmaster');
    expect(bounces).toHaveLength(1);
    expect(bounces[0]).toContain('Sorry, no mailbox here by that name. (#5.1.1)');
    expect(bounces[0]).toContain('nobody@example.com');
  });

  it('a forwarding catch-all re-injects with the original sender and vdelivermail\'s Delivered-To line', async () => {
    await writeFile(join(root, 'domains', 'example.com', '.qmail-default'), "| vdelivermail '' catch@other.example\n");
    const queue = server.resolve<Queue>(Tokens.Queue);
    await queue.enqueue({ sender: 'alice@example.org', recipients: ['ghost@example.com'] }, 'Subject: lost\n\nwhere\n', { kind: 'local', uid: 0 });
    await queue.idle();
    const got = await messages('other.example', 'catch');
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^Return-Path: <alice@example\.org>\nDelivered-To: catch@other\.example\nReceived: \(qmail \d+ invoked by alias\); [^\n]*\nReturn-Path: <alice@example\.org>\nDelivered-To: ghost@example\.com\nReceived: /);
  });

  it("a user's own .qmail (copy and forward) runs through plugin-local's DotQmail service", async () => {
    await writeFile(join(root, 'domains', 'example.com', 'joe', '.qmail'), './Maildir/\n&catch@other.example\n');
    const queue = server.resolve<Queue>(Tokens.Queue);
    await queue.enqueue({ sender: 'alice@example.org', recipients: ['joe@example.com'] }, 'Subject: copy\n\nboth\n', { kind: 'local', uid: 0 });
    await queue.idle();
    expect(await messages('example.com', 'joe')).toHaveLength(1);
    const forwarded = await messages('other.example', 'catch');
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]).toContain('Subject: copy');
  });

  it('valias entries (.qmail-<alias> in the domain directory) forward, and are accepted at RCPT', async () => {
    await new VpopmailAdmin(root).addAlias('info@example.com', 'catch@other.example');
    const tx = new Transaction(new Connection({ protocol: 'smtp', remoteAddress: '192.0.2.7', remotePort: 4000, localAddress: '127.0.0.1', localPort: 25 }));
    expect(await server.hooks.rcpt.promise(tx, splitAddress('info@alias.org'))).toBeUndefined();
    expect(await server.hooks.rcpt.promise(tx, splitAddress('nobody@alias.org'))).toMatchObject({ kind: 'deny', code: 550 });
    const queue = server.resolve<Queue>(Tokens.Queue);
    await queue.enqueue({ sender: 'alice@example.org', recipients: ['info@alias.org'] }, 'Subject: alias\n\nvia valias\n', { kind: 'local', uid: 0 });
    await queue.idle();
    const forwarded = await messages('other.example', 'catch');
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]).toContain('via valias');
  });

  it('an over-quota user bounces to the sender', async () => {
    await new VpopmailAdmin(root).setQuota('joe@example.com', '100');
    const queue = server.resolve<Queue>(Tokens.Queue);
    await queue.enqueue({ sender: 'postmaster@other.example', recipients: ['joe@example.com'] }, `Subject: big\n\n${'x'.repeat(500)}\n`, { kind: 'local', uid: 0 });
    await queue.idle();
    const bounces = await messages('other.example', 'postmaster');
    expect(bounces).toHaveLength(1);
    expect(bounces[0]).toContain('user is over quota');
    expect(await readdir(join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new'))).toEqual([]);
  });
});
