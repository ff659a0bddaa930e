import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { bufferSource, createServer, Tokens, type QuailServer } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import maildirPlugin from '@quail/plugin-maildir';
import vpopmailPlugin, { VpopmailAdmin } from '@quail/plugin-vpopmail';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pop3Plugin, { Pop3ListenersToken } from '../src/index.js';
import { apopDigest, RawClient } from './helpers.js';

const DOMAIN = 'yourhostname.abbts.ch';
const MESSAGE = 'Return-Path: <om@omx.ch>\nDelivered-To: om@yourhostname.abbtS.ch\nSubject: abc\n\n';

describe('with the real vpopmail Authenticator (the preset)', () => {
  let server: QuailServer;
  let cleanup: () => Promise<void>;
  let port: number;
  let maildir: string;

  beforeEach(async () => {
    const made = await tempRoot({ me: DOMAIN, defaultdomain: DOMAIN, 'pop3d.listen': '127.0.0.1:0\n', 'pop3d.faildelay': '0\n' });
    cleanup = made.cleanup;
    const admin = new VpopmailAdmin(made.root);
    await admin.addDomain(DOMAIN, 'postmaster-pw');
    await admin.addUser(`vorname@${DOMAIN}`, 'geheim');
    server = createServer({ root: made.root, plugins: [pop3Plugin, vpopmailPlugin, maildirPlugin], log: { level: 'silent' } });
    await server.start();
    port = server.resolve(Pop3ListenersToken).bound()[0]!.port;
    const user = await server.resolve(Tokens.UserStore).lookup('vorname');
    maildir = user!.maildir;
    await server.resolve(Tokens.MailStore).deliver(maildir, bufferSource(Buffer.from(MESSAGE)));
  });
  afterEach(async () => {
    await server.stop();
    await cleanup();
  });

  it('replays the seed: bare login in the default domain, wrong password closes, then STAT/RETR/QUIT', async () => {
    const wrong = await RawClient.connect(port);
    expect(await wrong.line()).toMatch(new RegExp(`^\\+OK <\\d+\\.\\d+\\.\\d+@${DOMAIN.replace(/\./g, '\\.')}>$`));
    expect(await wrong.command('USER vorname')).toBe('+OK ');
    expect(await wrong.command('PASS abcd')).toBe('-ERR authorization failed');
    await wrong.closedByServer();

    const client = await RawClient.connect(port);
    await client.line();
    expect(await client.command('USER vorname')).toBe('+OK ');
    expect(await client.command('PASS geheim')).toBe('+OK ');
    const size = Buffer.byteLength(MESSAGE.replace(/\n/g, '\r\n'));
    expect(await client.command('STAT')).toBe(`+OK 1 ${size}`);
    expect(await client.command('RETR 1')).toBe(`+OK ${size} octets`);
    expect(await client.body()).toEqual(['Return-Path: <om@omx.ch>', 'Delivered-To: om@yourhostname.abbtS.ch', 'Subject: abc', '']);
    expect(await client.command('QUIT')).toBe('+OK ');
    await client.closedByServer();
    expect(await readdir(join(maildir, 'cur'))).toHaveLength(1);
  });

  it('logs in with APOP against the clear-text password vpopmail keeps', async () => {
    const client = await RawClient.connect(port);
    const greeting = (await client.line())!;
    const timestamp = greeting.slice(4);
    expect(await client.command(`APOP vorname@${DOMAIN} ${apopDigest(timestamp, 'geheim')}`)).toBe('+OK ');
    expect(await client.command('QUIT')).toBe('+OK ');
  });
});
