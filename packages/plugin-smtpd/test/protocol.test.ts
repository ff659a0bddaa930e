import { writeFile } from 'node:fs/promises';
import { Tokens } from '@quail/core';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, startSmtpd, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

/** Opens a session and consumes the greeting. */
async function session(port: number, from?: string): Promise<RawClient> {
  const c = await RawClient.open(port, from);
  expect(await c.reply()).toMatch(/^220 /);
  return c;
}

describe('qmail-smtpd replies (reference 2.3)', () => {
  it('answers every command with qmail texts', async () => {
    t = await startSmtpd({ smtpgreeting: 'mx.example.org welcome here' });
    const c = await RawClient.open(t.port());
    expect(await c.reply()).toBe('220 mx.example.org welcome here ESMTP');
    expect(await c.command('HELO client.example.net')).toBe('250 mx.example.org welcome here');
    expect(await c.command('RCPT TO:<a@mx.example.org>')).toBe('503 MAIL first (#5.5.1)');
    expect(await c.command('DATA')).toBe('503 MAIL first (#5.5.1)');
    expect(await c.command('MAIL FROM:<>')).toBe('250 ok');
    expect(await c.command('DATA')).toBe('503 RCPT first (#5.5.1)');
    expect(await c.command('RSET')).toBe('250 flushed');
    expect(await c.command('RCPT TO:<a@mx.example.org>')).toBe('503 MAIL first (#5.5.1)');
    expect(await c.command('NOOP')).toBe('250 ok');
    expect(await c.command('VRFY joe')).toBe("252 send some mail, i'll try my best");
    expect(await c.command('HELP')).toBe('214 qmail home page: http://pobox.com/~djb/qmail.html');
    expect(await c.command('EXPN list')).toBe('502 unimplemented (#5.5.1)');
    expect(await c.command('')).toBe('502 unimplemented (#5.5.1)');
    expect(await c.command('STARTTLS')).toBe('502 unimplemented (#5.5.1)');
    expect(await c.command('AUTH PLAIN')).toBe('502 unimplemented (#5.5.1)');
    expect(await c.command(`MAIL FROM:<${'a'.repeat(900)}@x>`)).toBe('555 syntax error (#5.5.4)');
    expect(await c.command('mail from:<joe@example.net>')).toBe('250 ok');
    expect(await c.command(`RCPT TO:<${'b'.repeat(901)}>`)).toBe('555 syntax error (#5.5.4)');
    expect(await c.command('quit')).toBe('221 mx.example.org welcome here');
    await c.waitClosed();
  });

  it('advertises SIZE when databytes is set and enforces it on SIZE= and on the stream', async () => {
    t = await startSmtpd({ databytes: '100' });
    const c = await session(t.port());
    expect(await c.command('EHLO client')).toBe('250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100');
    expect(await c.command('MAIL FROM:<a@example.net> SIZE=101')).toBe('552 sorry, that message size exceeds my databytes limit (#5.3.4)');
    expect(await c.command('MAIL FROM:<a@example.net> SIZE=100')).toBe('250 ok');
    expect(await c.command('RCPT TO:<joe@mx.example.org>')).toBe('250 ok');
    expect(await c.command('DATA')).toBe('354 go ahead');
    expect(await c.command(`Subject: big\r\n\r\n${'x'.repeat(200)}\r\n.`)).toBe('552 sorry, that message size exceeds my databytes limit (#5.3.4)');
    // the session goes on; exactly 100 bytes after CRLF->LF is accepted
    expect(await c.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<joe@mx.example.org>')).toBe('250 ok');
    expect(await c.command('DATA')).toBe('354 go ahead');
    expect(await c.command(`${'y'.repeat(98)}\r\n\r\n.`)).toMatch(/^250 ok \d+ qp \d+$/);
    const messages = t.messages();
    expect(messages).toHaveLength(1);
    expect(messages[0]!.data.endsWith(`${'y'.repeat(98)}\n\n`)).toBe(true);
    expect(t.spoolFiles().filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses badmailfrom senders at every RCPT (exact and @domain entries)', async () => {
    t = await startSmtpd({ badmailfrom: 'spammer@example.net\n@junk.example\n' });
    const c = await session(t.port());
    for (const sender of ['spammer@example.net', 'SPAMMER@Example.NET', 'anyone@junk.example']) {
      expect(await c.command(`MAIL FROM:<${sender}>`)).toBe('250 ok');
      expect(await c.command('RCPT TO:<joe@mx.example.org>')).toBe('553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)');
    }
    expect(await c.command('MAIL FROM:<friend@example.net>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<joe@mx.example.org>')).toBe('250 ok');
  });

  it('limits recipients per message (control/maxrcpt)', async () => {
    t = await startSmtpd({ maxrcpt: '2' });
    const c = await session(t.port());
    expect(await c.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<a@mx.example.org>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<b@mx.example.org>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<c@mx.example.org>')).toBe('452 sorry, too many recipients (#4.5.3)');
  });

  it('refuses a looping message (100 Received/Delivered-To lines) and accepts 99', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    const send = async (hops: number) => {
      expect(await c.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
      expect(await c.command('RCPT TO:<joe@mx.example.org>')).toBe('250 ok');
      expect(await c.command('DATA')).toBe('354 go ahead');
      return c.command(`${'Received: x\r\n'.repeat(hops - 1)}Delivered-To: y\r\n\r\nReceived: in the body\r\n.`);
    };
    expect(await send(100)).toBe('554 too many hops, this message is looping (#5.4.6)');
    expect(await send(99)).toMatch(/^250 ok/);
    expect(t.messages()).toHaveLength(1);
  });

  it('undoes dot-stuffing, stores LF line ends and passes 8-bit data untouched', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    await c.command('MAIL FROM:<a@example.net> BODY=8BITMIME');
    await c.command('RCPT TO:<joe@mx.example.org>');
    await c.command('DATA');
    c.write(Buffer.from('Subject: caf\xc3\xa9\r\n\r\n..leading dot\r\n\xff\xfe\x00 bin\r\n.\r\n', 'latin1'));
    expect(await c.reply()).toMatch(/^250 ok/);
    const stored = t.messages()[0]!.raw;
    const text = stored.toString('latin1');
    expect(text.slice(text.indexOf('Subject'))).toBe('Subject: caf\xc3\xa9\n\n.leading dot\n\xff\xfe\x00 bin\n');
  });

  it('answers a bare LF in DATA with qmail 451 text, closes, and queues nothing', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    await c.command('MAIL FROM:<a@example.net>');
    await c.command('RCPT TO:<joe@mx.example.org>');
    await c.command('DATA');
    c.write('Subject: x\r\n\r\nbare\nlf\r\n.\r\n');
    expect(await c.reply()).toBe('451 See http://pobox.com/~djb/docs/smtplf.html.');
    await c.waitClosed();
    expect(t.messages()).toEqual([]);
    await expect.poll(() => t!.spoolFiles()).toEqual([]);
  });

  it('takes bare LF as a line end when control/smtpd.allowbarelf is 1', async () => {
    t = await startSmtpd({ 'smtpd.allowbarelf': '1' });
    const c = await session(t.port());
    await c.command('MAIL FROM:<a@example.net>');
    await c.command('RCPT TO:<joe@mx.example.org>');
    await c.command('DATA');
    c.write('Subject: x\n\nbare\nlf\n.\n');
    expect(await c.reply()).toMatch(/^250 ok/);
    expect(t.messages()[0]!.data).toMatch(/\nSubject: x\n\nbare\nlf\n$/);
  });

  it('answers pipelined commands in order', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    c.write('EHLO c\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<x@mx.example.org>\r\nRCPT TO:<y@elsewhere.example>\r\nRCPT TO:<z@mx.example.org>\r\nDATA\r\n');
    expect(await c.reply()).toMatch(/^250-mx\.example\.org/);
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe('354 go ahead');
    c.write('Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.net>\r\nRCPT TO:<w@mx.example.org>\r\nDATA\r\nSubject: q\r\n\r\n.\r\nQUIT\r\n');
    expect(await c.reply()).toMatch(/^250 ok \d+ qp \d+$/);
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe('354 go ahead');
    expect(await c.reply()).toMatch(/^250 ok \d+ qp \d+$/);
    expect(await c.reply()).toBe('221 mx.example.org');
    const envelopes = t.messages().map((m) => m.envelope);
    expect(envelopes).toContainEqual({ sender: 'a@example.net', recipients: ['x@mx.example.org', 'z@mx.example.org'] });
    expect(envelopes).toContainEqual({ sender: 'b@example.net', recipients: ['w@mx.example.org'] });
  });

  it('in strict mode wants HELO first, a HELO argument and bracketed paths', async () => {
    t = await startSmtpd({ 'smtpd.strict': '1' });
    const c = await session(t.port());
    expect(await c.command('MAIL FROM:<a@example.net>')).toBe('503 send HELO/EHLO first (#5.5.1)');
    expect(await c.command('EHLO')).toBe('501 syntax: HELO/EHLO hostname (#5.5.4)');
    expect(await c.command('EHLO client.example.net')).toMatch(/^250-/);
    expect(await c.command('MAIL FROM: a@example.net')).toBe('555 syntax error (#5.5.4)');
    expect(await c.command('MAIL FROM:<a@example.net> BODY=9BIT')).toBe('501 syntax error in parameters (#5.5.4)');
    expect(await c.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
  });

  it('answers an idle client with 451 timeout (#4.4.2) after timeoutsmtpd', async () => {
    t = await startSmtpd({ timeoutsmtpd: '1' });
    const c = await session(t.port());
    expect(await c.reply()).toBe('451 timeout (#4.4.2)');
    await c.waitClosed();
  });
});

describe('relay control', () => {
  it('accepts rcpthosts domains (with the .domain rule) and refuses others', async () => {
    t = await startSmtpd({ rcpthosts: 'example.org\n.example.com\n', morercpthosts: 'more.example\n' });
    const c = await session(t.port());
    expect(await c.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<a@example.org>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<a@EXAMPLE.ORG>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<a@sub.example.com>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<a@more.example>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<a@example.com>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    expect(await c.command('RCPT TO:<a@sub.example.org>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    expect(await c.command('RCPT TO:<a@[127.0.0.1]>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    expect(await c.command('RCPT TO:<postmaster>')).toBe('250 ok');
  });

  it('replaces a literal of this host ([127.0.0.1]) with localiphost before the check', async () => {
    t = await startSmtpd({ localiphost: 'mx.example.org' });
    const c = await session(t.port());
    await c.command('MAIL FROM:<a@example.net>');
    expect(await c.command('RCPT TO:<joe@[127.0.0.1]>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<joe@[192.0.2.99]>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    await c.command('DATA');
    expect(await c.command('Subject: literal\r\n\r\n.')).toMatch(/^250 ok/);
    expect(t.messages()[0]!.envelope.recipients).toEqual(['joe@mx.example.org']);
  });

  it('lets RELAYCLIENT clients relay anywhere and appends its value', async () => {
    t = await startSmtpd({ 'tcp.smtp': '127.0.0.2:allow,RELAYCLIENT="@fixme.example"\n127.:allow,RELAYCLIENT=""\n' });
    const c = await session(t.port());
    expect(await c.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<joe@far.example>')).toBe('250 ok');
    expect(await c.command('DATA')).toBe('354 go ahead');
    expect(await c.command('Subject: relay\r\n\r\n.')).toMatch(/^250 ok/);
    const d = await session(t.port(), '127.0.0.2');
    expect(await d.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
    expect(await d.command('RCPT TO:<joe>')).toBe('250 ok');
    expect(await d.command('DATA')).toBe('354 go ahead');
    expect(await d.command('Subject: fixme\r\n\r\n.')).toMatch(/^250 ok/);
    const rcpts = t.messages().flatMap((m) => m.envelope.recipients).sort();
    expect(rcpts).toEqual(['joe@far.example', 'joe@fixme.example']);
  });
});

describe('tcprules (control/tcp.smtp)', () => {
  it('closes a denied client without a greeting and serves the others', async () => {
    t = await startSmtpd({ 'tcp.smtp': '127.0.0.2:deny\n:allow\n' });
    const denied = await RawClient.open(t.port(), '127.0.0.2');
    await denied.waitClosed();
    expect(denied.received).toBe('');
    const allowed = await session(t.port(), '127.0.0.3');
    expect(await allowed.command('NOOP')).toBe('250 ok');
  });

  it('applies a new rules file after a reload, and keeps the old one when the new one is broken', async () => {
    t = await startSmtpd({ 'tcp.smtp': ':allow\n' });
    await writeFile(`${t.root}/control/tcp.smtp`, '127.0.0.4:deny\n:allow\n');
    expect(await t.server.reload()).toBe(true);
    const denied = await RawClient.open(t.port(), '127.0.0.4');
    await denied.waitClosed();
    expect(denied.received).toBe('');
    await writeFile(`${t.root}/control/tcp.smtp`, '127.0.0.4:maybe\n');
    expect(await t.server.reload()).toBe(false);
    const still = await RawClient.open(t.port(), '127.0.0.4');
    await still.waitClosed();
    expect(still.received).toBe('');
  });

  it('refuses to start with a broken rules file, naming file and line', async () => {
    await expect(startSmtpd({ 'tcp.smtp': '127.:allow\n10.:allow,X="unterminated\n' })).rejects.toThrow('control/tcp.smtp:2: variable X: missing closing "');
  });

  it('holds the greeting for GREETDELAY seconds and rejects early talkers then', async () => {
    t = await startSmtpd({ 'tcp.smtp': '127.0.0.5:allow,GREETDELAY="1"\n:allow\n' });
    const early = await RawClient.open(t.port(), '127.0.0.5');
    early.write('EHLO early\r\n');
    expect(await early.reply()).toBe('421 mx.example.org You talk too soon');
    await early.waitClosed();
    const patient = await RawClient.open(t.port(), '127.0.0.5');
    expect(await patient.reply()).toBe('220 mx.example.org ESMTP');
  });

  it('answers a client that talks before the greeting when there is no GREETDELAY', async () => {
    t = await startSmtpd();
    const c = await RawClient.open(t.port());
    c.write('NOOP\r\n');
    expect(await c.reply()).toBe('220 mx.example.org ESMTP');
    expect(await c.reply()).toBe('250 ok');
  });

  it('limits connections per IP with a 421', async () => {
    t = await startSmtpd({ 'smtpd.maxperip': '2' });
    const a = await session(t.port());
    const b = await session(t.port());
    const c = await RawClient.open(t.port());
    expect(await c.reply()).toBe('421 too many connections from your address, try again later (#4.7.0)');
    await c.waitClosed();
    const other = await session(t.port(), '127.0.0.6');
    expect(await other.command('NOOP')).toBe('250 ok');
    a.close();
    await b.command('QUIT');
  });

  it('makes connections beyond concurrencyincoming wait for a free slot', async () => {
    t = await startSmtpd({ concurrencyincoming: '1' });
    const a = await session(t.port());
    const b = await RawClient.open(t.port());
    expect(await a.command('NOOP')).toBe('250 ok');
    expect(b.received).toBe('');
    expect(await a.command('QUIT')).toBe('221 mx.example.org');
    expect(await b.reply()).toBe('220 mx.example.org ESMTP');
  });
});

describe('remote host names (tcpserver -h / -H)', () => {
  it('with smtpd.resolvehost asks the Resolver, matches =host rules and names the host in Received', async () => {
    const names: Record<string, string[]> = { '127.0.0.7': ['client.example.net.'], '127.0.0.8': ['evil\r\nname'] };
    const resolver = {
      reverse: async (ip: string) => names[ip] ?? [],
      resolveMx: async () => [],
      resolve4: async () => [],
      resolve6: async () => [],
      resolveTxt: async () => [],
    };
    t = await startSmtpd({ 'smtpd.resolvehost': '1', 'tcp.smtp': '=.example.net:allow,RELAYCLIENT=""\n:allow\n' }, [], { services: [[Tokens.Resolver, resolver]] });
    const named = await session(t.port(), '127.0.0.7');
    await named.command('HELO client.example.net');
    await named.command('MAIL FROM:<a@example.net>');
    expect(await named.command('RCPT TO:<x@far.example>')).toBe('250 ok');
    await named.command('DATA');
    expect(await named.command('Subject: named\r\n\r\n.')).toMatch(/^250 ok/);
    const injected = await session(t.port(), '127.0.0.8');
    await injected.command('MAIL FROM:<a@example.net>');
    expect(await injected.command('RCPT TO:<x@far.example>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    expect(t.messages()[0]!.data).toMatch(/^Received: from client\.example\.net \(127\.0\.0\.7\)\n/);
  });
});
