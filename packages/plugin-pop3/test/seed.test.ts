import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { login, RawClient, startPop3, type Pop3Fixture } from './helpers.js';

/** The message of the seed session (shared/seeds/004), as quail stores it (LF line ends). */
const SEED_MESSAGE = [
  'Return-Path: <om@omx.ch>',
  'Delivered-To: om@yourhostname.abbtS.ch',
  'Received: (qmail 6459 invoked from network); 22 Jan 2008 11:00:09 -0000',
  'Received: from localhost (HELO ) (127.0.0.1)',
  '  by yourhostname.abbtS.ch with SMTP; 22 Jan 2008 11:00:09 -0000',
  'Subject: abc',
  '',
  '',
].join('\n');

describe('the seed POP3 session, replayed over a socket', () => {
  let pop: Pop3Fixture;
  beforeEach(async () => {
    pop = await startPop3();
    const user = await pop.addUser('vorname', 'geheim');
    await pop.deliver(user, SEED_MESSAGE);
  });
  afterEach(() => pop.cleanup());

  it('refuses a wrong password with qmail-popup text and closes', async () => {
    const client = await RawClient.connect(pop.port);
    expect(await client.line()).toMatch(/^\+OK <\d+\.\d+\.\d+@pop\.example\.com>$/);
    expect(await client.command('USER vorname')).toBe('+OK ');
    expect(await client.command('PASS abcd')).toBe('-ERR authorization failed');
    await client.closedByServer();
    expect(pop.auth.asked.map((c) => [c.mechanism, c.username, c.password])).toEqual([['USER', 'vorname', 'abcd']]);
  });

  it('logs in with the bare name, STAT, RETR 1, QUIT', async () => {
    const client = await RawClient.connect(pop.port);
    await login(client, 'vorname', 'geheim');
    // qmail-pop3d showed the stored (LF) size, 260; quail shows the octets RETR sends (RFC 1939).
    expect(Buffer.byteLength(SEED_MESSAGE)).toBe(260);
    const crlfSize = Buffer.byteLength(SEED_MESSAGE.replace(/\n/g, '\r\n'));
    expect(await client.command('STAT')).toBe('+OK 1 267');
    const before = Buffer.concat(client.received).length;
    expect(await client.command('RETR 1')).toBe(`+OK ${crlfSize} octets`);
    const body = await client.body();
    expect(body.join('\n') + '\n').toBe(SEED_MESSAGE);
    const wire = Buffer.concat(client.received).subarray(before).toString('latin1');
    const message = wire.slice(wire.indexOf('\r\n') + 2, wire.length - '.\r\n'.length);
    expect(Buffer.byteLength(message, 'latin1')).toBe(crlfSize);
    expect(await client.command('QUIT')).toBe('+OK ');
    await client.closedByServer();
    expect(pop.auth.asked[0]?.username).toBe('vorname');
  });
});
