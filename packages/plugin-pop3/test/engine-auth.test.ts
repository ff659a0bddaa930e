import { createHmac } from 'node:crypto';
import { ManualClock } from '@quail/core/testing';
import { accept, defer, deny } from '@quail/core';
import { afterEach, describe, expect, it } from 'vitest';
import { apopDigest, mailboxWith, startEngine, TableAuthenticator, type EngineFixture } from './helpers.js';

/** Waits until the session has set its delay timer (the authenticator answers asynchronously). */
async function timerSet(clock: ManualClock): Promise<void> {
  while (clock.pending === 0) await new Promise((resolve) => setImmediate(resolve));
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('Pop3Session: AUTHORIZATION state', () => {
  let e: EngineFixture;
  afterEach(() => e?.cleanup());

  it('greets with the APOP timestamp when the authenticator can check APOP, and without it otherwise', async () => {
    e = await startEngine();
    expect(e.transport.take()).toEqual([`+OK ${e.session.timestamp}`]);
    expect(e.session.timestamp).toMatch(/^<\d+\.\d+\.\d+@pop\.example\.com>$/);
    const other = e.another();
    expect(other.session.timestamp).not.toBe(e.session.timestamp);
    await e.cleanup();
    e = await startEngine({ auth: new TableAuthenticator(['USER', 'PLAIN']) });
    expect(e.transport.take()).toEqual(['+OK pop.example.com POP3 ready']);
  });

  it('answers the qmail-popup commands with qmail-popup texts', async () => {
    e = await startEngine();
    e.transport.take();
    expect(await e.say('USER')).toEqual(['-ERR syntax error']);
    expect(await e.say('PASS x')).toEqual(['-ERR USER first']);
    expect(await e.say('USER joe')).toEqual(['+OK ']);
    expect(await e.say('PASS')).toEqual(['-ERR syntax error']);
    expect(await e.say('APOP joe')).toEqual(['-ERR syntax error']);
    expect(await e.say('noop')).toEqual(['+OK ']);
    for (const cmd of ['STAT', 'LIST', 'RETR 1', 'DELE 1', 'UIDL', 'TOP 1 1', 'RSET', 'LAST', 'XYZZY', '']) {
      expect(await e.say(cmd)).toEqual(['-ERR authorization first']);
    }
    expect(await e.say('QUIT')).toEqual(['+OK ']);
    expect(e.transport.closed).toBe(true);
    expect(e.session.state).toBe('closed');
  });

  it('logs in with USER/PASS (a later USER replaces the name; the password keeps its spaces)', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe', 'pass word', []);
    e.transport.take();
    await e.say('USER someone');
    await e.say('user joe');
    expect(await e.say('PASS pass word')).toEqual(['+OK ']);
    expect(e.session.state).toBe('transaction');
    expect(e.connection.user).toBe('joe@example.com');
    expect(e.auth.asked[0]).toMatchObject({ mechanism: 'USER', service: 'pop3', username: 'joe', password: 'pass word', remoteAddress: '127.0.0.1' });
  });

  it('closes after one failed PASS or APOP, as qmail-popup does, and counts the failure for the address', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe', 'secret', []);
    e.transport.take();
    await e.say('USER joe');
    expect(await e.say('PASS wrong')).toEqual(['-ERR authorization failed']);
    expect(e.transport.closed).toBe(true);
    expect(e.throttle.failures('127.0.0.1')).toBe(1);
    const second = e.another();
    second.transport.take();
    expect(await second.say(`APOP joe ${'0'.repeat(32)}`)).toEqual(['-ERR authorization failed']);
    expect(second.transport.closed).toBe(true);
    expect(e.throttle.failures('127.0.0.1')).toBe(2);
  });

  it('adds [AUTH] to a failed login once the client has asked CAPA (RFC 3206)', async () => {
    e = await startEngine();
    e.transport.take();
    await e.say('CAPA');
    await e.say('USER nobody');
    expect(await e.say('PASS x')).toEqual(['-ERR [AUTH] authorization failed']);
  });

  it('accepts a correct APOP digest over the greeting timestamp and refuses a replayed one', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe@example.com', 'tanstaaf', []);
    e.transport.take();
    const digest = apopDigest(e.session.timestamp, 'tanstaaf');
    expect(await e.say(`APOP joe@example.com ${digest.toUpperCase()}`)).toEqual(['+OK ']);
    expect(e.auth.asked[0]).toMatchObject({ mechanism: 'APOP', challenge: e.session.timestamp, response: digest });
    const replay = e.another();
    replay.transport.take();
    expect(await replay.say(`APOP joe@example.com ${digest}`)).toEqual(['-ERR authorization failed']);
  });

  it('refuses APOP when the authenticator has no clear-text passwords', async () => {
    e = await startEngine({ auth: new TableAuthenticator(['USER', 'PLAIN', 'LOGIN']) });
    e.transport.take();
    expect(await e.say(`APOP joe ${'a'.repeat(32)}`)).toEqual(['-ERR APOP is not available here']);
    expect(e.transport.closed).toBe(false);
  });

  it('lists capabilities (RFC 2449) before and after login', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe', 'secret', []);
    e.transport.take();
    expect(await e.say('CAPA')).toEqual([
      '+OK Capability list follows',
      'TOP',
      'UIDL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'PIPELINING',
      'USER',
      'SASL PLAIN LOGIN CRAM-MD5',
      'STLS',
      'IMPLEMENTATION quail',
      '.',
    ]);
    await e.say('USER joe');
    await e.say('PASS secret');
    expect(await e.say('CAPA')).toEqual(['+OK Capability list follows', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'IMPLEMENTATION quail', '.']);
  });

  it('refuses plain-text logins on an unencrypted non-local connection until STLS', async () => {
    e = await startEngine({ settings: { plaintextWithoutTls: false }, remoteAddress: '192.0.2.7' });
    await mailboxWith(e, 'joe', 'secret', []);
    e.transport.take();
    const capa = await e.say('CAPA');
    expect(capa).not.toContain('USER');
    expect(capa).toContain('SASL CRAM-MD5');
    expect(capa).toContain('STLS');
    const refused = '-ERR [AUTH] plain-text logins need an encrypted connection: use STLS first';
    expect(await e.say('USER joe')).toEqual([refused]);
    expect(await e.say(`AUTH PLAIN ${b64('\0joe\0secret')}`)).toEqual([refused]);
    expect(await e.say('AUTH LOGIN')).toEqual([refused]);
    expect(e.auth.asked).toEqual([]);
    expect(await e.say('STLS')).toEqual(['+OK Begin TLS negotiation']);
    expect(e.connection.tls?.protocol).toBe('TLSv1.3');
    const after = await e.say('CAPA');
    expect(after).toContain('USER');
    expect(after).toContain('SASL PLAIN LOGIN CRAM-MD5');
    expect(after).not.toContain('STLS');
    expect(await e.say('STLS')).toEqual(['-ERR Command not permitted when TLS active']);
    await e.say('USER joe');
    expect(await e.say('PASS secret')).toEqual(['+OK ']);
  });

  it('forgets USER given before STLS, and closes when the handshake fails', async () => {
    e = await startEngine();
    e.transport.take();
    await e.say('USER joe');
    await e.say('STLS');
    expect(await e.say('PASS secret')).toEqual(['-ERR USER first']);
    const broken = e.another();
    broken.transport.take();
    broken.transport.tlsFails = true;
    expect(await broken.say('STLS')).toEqual(['+OK Begin TLS negotiation']);
    expect(broken.transport.closed).toBe(true);
    const noCert = e.another({ tlsAvailable: false });
    noCert.transport.take();
    expect(await noCert.say('STLS')).toEqual(['-ERR STLS is not available: no certificate configured']);
    expect(await noCert.say('CAPA')).not.toContain('STLS');
  });

  it('runs SASL PLAIN with an initial response and with a continuation (RFC 5034)', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe', 'secret', []);
    e.transport.take();
    expect(await e.say(`AUTH PLAIN ${b64('joe\0joe\0secret')}`)).toEqual(['+OK ']);
    const two = e.another();
    await mailboxWith(e, 'ann', 'pw', []);
    two.transport.take();
    expect(await two.say('AUTH plain')).toEqual(['+ ']);
    expect(await two.say(b64('\0ann\0pw'))).toEqual(['+OK ']);
    expect(e.auth.asked.map((c) => [c.mechanism, c.username, c.password])).toEqual([
      ['PLAIN', 'joe', 'secret'],
      ['PLAIN', 'ann', 'pw'],
    ]);
  });

  it('runs SASL LOGIN with and without an initial response', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe', 'secret', []);
    e.transport.take();
    expect(await e.say('AUTH LOGIN')).toEqual([`+ ${b64('Username:')}`]);
    expect(await e.say(b64('joe'))).toEqual([`+ ${b64('Password:')}`]);
    expect(await e.say(b64('secret'))).toEqual(['+OK ']);
    await e.say('QUIT');
    const two = e.another();
    two.transport.take();
    expect(await two.say(`AUTH LOGIN ${b64('joe')}`)).toEqual([`+ ${b64('Password:')}`]);
    expect(await two.say(b64('secret'))).toEqual(['+OK ']);
  });

  it('runs SASL CRAM-MD5 against the challenge it sent', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe', 'secret', []);
    e.transport.take();
    const [challengeLine] = await e.say('AUTH CRAM-MD5');
    const challenge = Buffer.from(challengeLine!.slice(2), 'base64').toString();
    expect(challenge).toMatch(/^<\d+\.[0-9a-f]+@pop\.example\.com>$/);
    const digest = createHmac('md5', 'secret').update(challenge).digest('hex');
    expect(await e.say(b64(`joe ${digest}`))).toEqual(['+OK ']);
  });

  it('handles cancelled, malformed and failing SASL exchanges without closing early', async () => {
    e = await startEngine();
    e.transport.take();
    expect(await e.say('AUTH')).toEqual(['+OK SASL mechanisms follow', 'PLAIN', 'LOGIN', 'CRAM-MD5', '.']);
    expect(await e.say('AUTH GSSAPI')).toEqual(['-ERR unsupported authentication mechanism']);
    expect(await e.say('AUTH PLAIN a b c')).toEqual(['-ERR syntax error']);
    expect(await e.say('AUTH PLAIN !!!notbase64')).toEqual(['-ERR invalid base64 in the authentication exchange']);
    expect(await e.say('AUTH PLAIN')).toEqual(['+ ']);
    expect(await e.say('abc')).toEqual(['-ERR invalid base64 in the authentication exchange']);
    expect(await e.say('AUTH PLAIN =')).toEqual(['-ERR malformed PLAIN credentials']);
    expect(await e.say('AUTH LOGIN')).toHaveLength(1);
    expect(await e.say('*')).toEqual(['-ERR authentication cancelled']);
    expect(await e.say(`AUTH CRAM-MD5 ${b64('x')}`)).toEqual(['-ERR CRAM-MD5 takes no initial response']);
    expect(await e.say(`AUTH PLAIN ${b64('boss\0joe\0secret')}`)).toEqual(['-ERR [AUTH] authorization identity differs from the login']);
    expect(e.auth.asked).toEqual([]);
    expect(await e.say(`AUTH PLAIN ${b64('\0joe\0bad')}`)).toEqual(['-ERR [AUTH] authorization failed']);
    expect(e.transport.closed).toBe(false);
    expect(await e.say(`AUTH PLAIN ${b64('\0joe\0bad')}`)).toEqual(['-ERR [AUTH] authorization failed']);
    expect(e.transport.closed).toBe(true);
  });

  it('reports a broken or temporarily failing authenticator as [SYS/TEMP] and does not count it as a wrong password', async () => {
    e = await startEngine();
    e.auth.failWith = new Error('database unreachable');
    e.transport.take();
    await e.say('USER joe');
    expect(await e.say('PASS secret')).toEqual(['-ERR [SYS/TEMP] authentication is temporarily unavailable, try again later']);
    expect(e.transport.closed).toBe(true);
    expect(e.throttle.failures('127.0.0.1')).toBe(0);
  });

  it('refuses users whose flags forbid POP', async () => {
    e = await startEngine();
    const user = await mailboxWith(e, 'joe', 'secret', []);
    user.flags.noPop = true;
    e.transport.take();
    await e.say('USER joe');
    expect(await e.say('PASS secret')).toEqual(['-ERR authorization failed']);
  });

  it('lets auth hook verdicts refuse a login before the authenticator is asked', async () => {
    e = await startEngine();
    await mailboxWith(e, 'joe', 'secret', []);
    const seen: unknown[] = [];
    e.hooks.auth.tapPromise('limits', async (conn, attempt) => {
      seen.push({ protocol: conn.protocol, ...attempt });
      if (attempt.username === 'blocked') return deny(535, 'logins from here are blocked');
      if (attempt.username === 'later') return defer(454, 'too many connections, try later');
      return undefined;
    });
    e.transport.take();
    await e.say('USER blocked');
    expect(await e.say('PASS x')).toEqual(['-ERR [AUTH] logins from here are blocked']);
    const two = e.another();
    two.transport.take();
    await two.say('USER later');
    expect(await two.say('PASS x')).toEqual(['-ERR [SYS/TEMP] too many connections, try later']);
    expect(e.auth.asked).toEqual([]);
    const three = e.another();
    three.transport.take();
    await three.say('USER joe');
    expect(await three.say('PASS secret')).toEqual(['+OK ']);
    expect(seen).toEqual([
      { protocol: 'pop3', mechanism: 'USER', username: 'blocked', failures: 0 },
      { protocol: 'pop3', mechanism: 'USER', username: 'later', failures: 0 },
      { protocol: 'pop3', mechanism: 'USER', username: 'joe', failures: 0 },
    ]);
  });

  it('logs in a user an auth hook vouched for, looked up in the UserStore, without asking the authenticator', async () => {
    const table = new TableAuthenticator();
    e = await startEngine({
      auth: table,
      userStore: { lookup: async (login) => table.users.get(login)?.user, hasDomain: async () => true },
    });
    await mailboxWith(e, 'joe', 'secret', ['Subject: hi\n\nhello\n']);
    e.hooks.auth.tapPromise('sso', async (_conn, attempt) => (attempt.username === 'joe' || attempt.username === 'nobody' ? accept() : undefined));
    e.transport.take();
    await e.say('USER joe');
    expect(await e.say('PASS anything')).toEqual(['+OK ']);
    expect(await e.say('STAT')).toEqual(['+OK 1 22']);
    const unknown = e.another();
    unknown.transport.take();
    await unknown.say('USER nobody');
    expect(await unknown.say('PASS anything')).toEqual(['-ERR authorization failed']);
    expect(e.auth.asked).toEqual([]);
  });

  it('holds back the answer to a failed login, longer for an address that keeps failing', async () => {
    const clock = new ManualClock();
    e = await startEngine({ clock, settings: { failDelayMs: 2000 } });
    e.transport.take();
    await e.say('USER joe');
    const answered = e.session.handle(Buffer.from('PASS wrong'));
    await timerSet(clock);
    await clock.advance(1999);
    expect(e.transport.take()).toEqual([]);
    await clock.advance(1);
    await answered;
    expect(e.transport.take()).toEqual(['-ERR authorization failed']);
    const again = e.another();
    again.transport.take();
    await again.say('USER joe');
    const second = again.session.handle(Buffer.from('PASS wrong'));
    await timerSet(clock);
    await clock.advance(3999);
    expect(again.transport.take()).toEqual([]);
    await clock.advance(1);
    await second;
    expect(again.transport.take()).toEqual(['-ERR authorization failed']);
  });

  it('closes after too many bad commands in a row, and a good command resets the count', async () => {
    e = await startEngine({ settings: { maxBadCommands: 3 } });
    e.transport.take();
    for (let i = 0; i < 3; i++) await e.say('BOGUS');
    await e.say('NOOP');
    for (let i = 0; i < 3; i++) expect(await e.say('BOGUS')).toEqual(['-ERR authorization first']);
    expect(await e.say('BOGUS')).toEqual(['-ERR authorization first; too many bad commands, closing']);
    expect(e.transport.closed).toBe(true);
    expect(await e.say('NOOP')).toEqual([]);
  });

  it('answers NUL bytes and over-long lines with -ERR and keeps serving', async () => {
    e = await startEngine();
    e.transport.take();
    expect(await e.say(Buffer.from('USER jo\0e'))).toEqual(['-ERR NUL byte in command']);
    e.session.tooLong();
    expect(e.transport.take()).toEqual(['-ERR line too long']);
    expect(await e.say('NOOP')).toEqual(['+OK ']);
  });
});
