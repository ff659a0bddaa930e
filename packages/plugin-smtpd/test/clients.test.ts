import { writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect as tlsConnect } from 'node:tls';
import nodemailer from 'nodemailer';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@quail/core/testing';
import { Tokens } from '@quail/core';
import { fixedUsers, RawClient, removeCertDir, selfSignedPem, startSmtpd, type TestServer } from './helpers.js';

const run = promisify(execFile);

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});
afterAll(() => removeCertDir());

const users = fixedUsers({ 'joe@example.org': 'secret' });

function transport(port: number, options: Record<string, unknown> = {}) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, tls: { rejectUnauthorized: false }, ...options });
}

const mail = { from: 'sender@example.net', to: 'joe@mx.example.org', subject: 'nodemailer test', text: 'hello\n.leading dot\n' };

describe('nodemailer', () => {
  it('sends over plain SMTP', async () => {
    t = await startSmtpd();
    const info = await transport(t.port()).sendMail(mail);
    expect(info.response).toMatch(/^250 ok \d+ qp \d+$/);
    const [stored] = t.messages();
    expect(stored?.envelope).toEqual({ sender: 'sender@example.net', recipients: ['joe@mx.example.org'] });
    expect(stored?.data).toMatch(/^Received: from localhost \(HELO \?127\.0\.0\.1\?\) \(127\.0\.0\.1\)\n {2}by mx\.example\.org with SMTP; /);
    expect(stored?.data).toContain('\n.leading dot\n');
    expect(stored?.data).not.toContain('\r');
  });

  it('sends over STARTTLS (TLS 1.2 or later) and the Received line notes the cipher', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem() });
    const info = await transport(t.port(), { ignoreTLS: false, requireTLS: true }).sendMail(mail);
    expect(info.response).toMatch(/^250 ok/);
    expect(t.messages()[0]?.data).toMatch(/\n {2}by mx\.example\.org with ESMTPS \([A-Z0-9_-]+ encrypted\); /);
    const c = await RawClient.open(t.port());
    await c.reply();
    expect(await c.command('EHLO x')).toBe('250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS');
    expect(await c.command('STARTTLS now')).toBe('501 Syntax error (no parameters allowed) (#5.5.4)');
  });

  it('a STARTTLS session frees its concurrencyincoming slot when it ends', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem(), concurrencyincoming: '1' });
    for (let i = 0; i < 3; i++) {
      // with the one slot still taken, this connection would wait for it forever
      const info = await transport(t.port(), { ignoreTLS: false, requireTLS: true }).sendMail(mail);
      expect(info.response).toMatch(/^250 ok/);
    }
    const c = await RawClient.open(t.port());
    expect(await c.reply()).toBe('220 mx.example.org ESMTP');
  });

  it('offers STARTTLS once servercert.pem appears and the server reloads', async () => {
    t = await startSmtpd();
    const before = await RawClient.open(t.port());
    await before.reply();
    expect(await before.command('EHLO x')).toBe('250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME');
    await writeFile(`${t.root}/control/servercert.pem`, selfSignedPem());
    expect(await t.server.reload()).toBe(true);
    const info = await transport(t.port(), { ignoreTLS: false, requireTLS: true }).sendMail(mail);
    expect(info.response).toMatch(/^250 ok/);
    expect(t.messages()[0]?.data).toMatch(/ with ESMTPS \(/);
  });

  it('refuses TLS below 1.2', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem() });
    await expect(transport(t.port(), { ignoreTLS: false, requireTLS: true, tls: { rejectUnauthorized: false, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' } }).sendMail(mail)).rejects.toThrow();
    expect(t.messages()).toEqual([]);
  });

  it('authenticates with PLAIN and LOGIN and may then relay', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem() }, [users]);
    for (const method of ['PLAIN', 'LOGIN']) {
      const info = await transport(t.port(), { ignoreTLS: false, requireTLS: true, authMethod: method, auth: { user: 'joe@example.org', pass: 'secret' } }).sendMail({
        ...mail,
        to: 'someone@far.example',
      });
      expect(info.response).toMatch(/^250 ok/);
    }
    const stored = t.messages();
    expect(stored.map((m) => m.envelope.recipients)).toEqual([['someone@far.example'], ['someone@far.example']]);
    expect(stored[0]?.data).toMatch(/^Received: from localhost \(HELO \?127\.0\.0\.1\?\) \(joe@example\.org@127\.0\.0\.1\)\n {2}by mx\.example\.org with ESMTPSA \(/);
    await expect(
      transport(t.port(), { ignoreTLS: false, requireTLS: true, auth: { user: 'joe@example.org', pass: 'wrong' } }).sendMail(mail),
    ).rejects.toThrow(/535 authentication failed/);
  });
});

describe('relay matrix', () => {
  it('local rcpt ok; foreign refused without RELAYCLIENT or AUTH, accepted with either', async () => {
    t = await startSmtpd({ 'tcp.smtp': '127.0.0.2:allow,RELAYCLIENT=""\n127.0.0.3:allow,FORCETLS="1"\n:allow\n' }, [users]);
    const plain = await RawClient.open(t.port());
    await plain.reply();
    expect(await plain.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
    expect(await plain.command('RCPT TO:<joe@mx.example.org>')).toBe('250 ok');
    expect(await plain.command('RCPT TO:<x@far.example>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");

    const relay = await RawClient.open(t.port(), '127.0.0.2');
    await relay.reply();
    await relay.command('MAIL FROM:<a@example.net>');
    expect(await relay.command('RCPT TO:<x@far.example>')).toBe('250 ok');

    // loopback may AUTH over plain text
    const authed = await RawClient.open(t.port());
    await authed.reply();
    expect(await authed.command('EHLO c')).toBe('250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN');
    expect(await authed.command(`AUTH PLAIN ${Buffer.from('\0joe@example.org\0secret').toString('base64')}`)).toBe('235 ok, go ahead (#2.0.0)');
    expect(await authed.command('AUTH PLAIN')).toBe("503 you're already authenticated (#5.5.0)");
    await authed.command('MAIL FROM:<joe@example.org>');
    expect(await authed.command('RCPT TO:<x@far.example>')).toBe('250 ok');

    // a client whose rule wants TLS first gets neither AUTH nor relaying over plain text
    const remote = await RawClient.open(t.port(), '127.0.0.3');
    await remote.reply();
    expect(await remote.command('EHLO c')).toBe('250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME');
    expect(await remote.command(`AUTH PLAIN ${Buffer.from('\0joe@example.org\0secret').toString('base64')}`)).toBe(
      '538 encryption required for requested authentication mechanism (#5.7.11)',
    );
    await remote.command('MAIL FROM:<joe@example.org>');
    expect(await remote.command('RCPT TO:<x@far.example>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
  });
});

describe('AUTH exchange', () => {
  it('handles LOGIN prompts, cancel, broken base64, AUTH in a transaction, and closes after too many failures', async () => {
    t = await startSmtpd({ 'smtpd.authfailures': '2' }, [users]);
    const c = await RawClient.open(t.port());
    await c.reply();
    expect(await c.command('AUTH CRAM-MD5')).toBe('504 auth type unimplemented (#5.5.1)');
    expect(await c.command('AUTH LOGIN')).toBe('334 VXNlcm5hbWU6');
    expect(await c.command('*')).toBe('501 auth exchange canceled (#5.0.0)');
    expect(await c.command('AUTH PLAIN !!!not-base64')).toBe('501 malformed auth input (#5.5.4)');
    expect(await c.command('AUTH PLAIN')).toBe('334 ');
    expect(await c.command('abc')).toBe('501 malformed auth input (#5.5.4)');
    expect(await c.command(`AUTH PLAIN ${Buffer.from('no-nul-bytes').toString('base64')}`)).toBe('501 malformed auth input (#5.5.4)');
    await c.command('MAIL FROM:<a@example.net>');
    expect(await c.command('AUTH LOGIN')).toBe('503 no auth during mail transaction (#5.5.0)');
    await c.command('RSET');
    expect(await c.command(`AUTH LOGIN ${Buffer.from('joe@example.org').toString('base64')}`)).toBe('334 UGFzc3dvcmQ6');
    expect(await c.command(Buffer.from('bad').toString('base64'))).toBe('535 authentication failed (#5.7.1)');
    expect(await c.command('AUTH LOGIN')).toBe('334 VXNlcm5hbWU6');
    expect(await c.command(Buffer.from('joe@example.org').toString('base64'))).toBe('334 UGFzc3dvcmQ6');
    expect(await c.command(Buffer.from('worse').toString('base64'))).toBe('535 authentication failed (#5.7.1)');
    await c.waitClosed();
  });

  it('waits before answering a failed attempt (control/smtpd.authfaildelay, on the Clock service)', async () => {
    const clock = new ManualClock();
    t = await startSmtpd({ 'smtpd.authfaildelay': '5000' }, [users], { services: [[Tokens.Clock, clock]] });
    const c = await RawClient.open(t.port());
    await c.reply();
    c.write(`AUTH PLAIN ${Buffer.from('\0joe@example.org\0nope').toString('base64')}\r\n`);
    await expect.poll(() => clock.pending).toBe(1);
    expect(c.received).not.toContain('535');
    await clock.advance(4999);
    expect(c.received).not.toContain('535');
    await clock.advance(1);
    expect(await c.reply()).toBe('535 authentication failed (#5.7.1)');
  });
});

describe('submission and smtps', () => {
  it('submission wants AUTH before MAIL; smtps speaks TLS from the first byte', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem(), 'submission.listen': '127.0.0.1:0', 'smtps.listen': '127.0.0.1:0' }, [users]);
    const sub = await RawClient.open(t.port('submission'));
    await sub.reply();
    expect(await sub.command('MAIL FROM:<joe@example.org>')).toBe('530 authentication required (#5.7.0)');
    const info = await transport(t.port('submission'), { ignoreTLS: false, requireTLS: true, auth: { user: 'joe@example.org', pass: 'secret' } }).sendMail({ ...mail, to: 'x@far.example' });
    expect(info.response).toMatch(/^250 ok/);
    const tlsInfo = await transport(t.port('smtps'), { secure: true, auth: { user: 'joe@example.org', pass: 'secret' } }).sendMail({ ...mail, to: 'y@far.example' });
    expect(tlsInfo.response).toMatch(/^250 ok/);
    expect(t.messages().map((m) => m.envelope.recipients[0]).sort()).toEqual(['x@far.example', 'y@far.example']);
  });

  it('refuses to start SMTPS without control/servercert.pem', async () => {
    await expect(startSmtpd({ 'smtps.listen': '127.0.0.1:0' })).rejects.toThrow('control/smtps.listen: SMTPS needs control/servercert.pem');
  });

  it('refuses a servercert.pem without a key, naming the file', async () => {
    const certOnly = selfSignedPem().replace(/-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n?/, '');
    await expect(startSmtpd({ 'servercert.pem': certOnly })).rejects.toThrow(/control\/servercert\.pem:\d+: expected one private key, found 0/);
  });

  it('survives TLS handshake garbage on the smtps port', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem(), 'smtps.listen': '127.0.0.1:0' });
    const garbage = await RawClient.open(t.port('smtps'));
    garbage.write(Buffer.from('\x16\x03\x01\x00\x05hello this is not a client hello\r\n'.repeat(20), 'latin1'));
    await garbage.waitClosed();
    const ok = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: t!.port('smtps'), rejectUnauthorized: false }, () => undefined);
      s.once('data', (d: Buffer) => {
        resolve(d.toString());
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(ok).toBe('220 mx.example.org ESMTP\r\n');
  });
});

describe('other clients', () => {
  it('Python smtplib sends with EHLO, pipelining and the null sender', async () => {
    t = await startSmtpd();
    const script = [
      'import smtplib, sys',
      's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)',
      's.ehlo("python.example")',
      'r = s.sendmail("", ["joe@mx.example.org", "ann@mx.example.org"], b"Subject: smtplib\\r\\n\\r\\n.dot line\\r\\nbody\\r\\n")',
      'print(s.noop()[0]); s.quit(); print("sent", r)',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script, String(t.port())], { timeout: 30_000 });
    expect(stdout).toBe('250\nsent {}\n');
    const [stored] = t.messages();
    expect(stored?.envelope).toEqual({ sender: '', recipients: ['joe@mx.example.org', 'ann@mx.example.org'] });
    expect(stored?.data).toMatch(/\(HELO python\.example\) \(127\.0\.0\.1\)\n.*\nSubject: smtplib\n\n\.dot line\nbody\n$/);
  });

  it('swaks sends plain and with STARTTLS + AUTH', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem() }, [users]);
    const base = ['--server', '127.0.0.1', '--port', String(t.port()), '--from', 'swaks@example.net', '--helo', 'swaks.example', '--timeout', '20'];
    const plain = await run('swaks', [...base, '--to', 'joe@mx.example.org'], { timeout: 30_000 });
    expect(plain.stdout).toMatch(/<- {2}250 ok \d+ qp \d+/);
    const tls = await run('swaks', [...base, '--to', 'far@far.example', '--tls', '--auth', 'LOGIN', '--auth-user', 'joe@example.org', '--auth-password', 'secret'], { timeout: 30_000 });
    expect(tls.stdout).toMatch(/<~ {1,2}235 ok, go ahead \(#2\.0\.0\)/);
    expect(tls.stdout).toMatch(/<~ {1,2}250 ok \d+ qp \d+/);
    expect(t.messages().map((m) => m.envelope.recipients[0]).sort()).toEqual(['far@far.example', 'joe@mx.example.org']);
  });
});
