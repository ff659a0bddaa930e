import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixMessage, qmailDate, type InjectDefaults } from '../src/inject.js';
import { assertBuilt, quail, tempDir } from './helpers.js';

const defaults: InjectDefaults = {
  user: 'joe',
  host: 'mx.example.com',
  defaulthost: 'mx.example.com',
  defaultdomain: 'example.com',
  plusdomain: 'plus.example.com',
  idhost: 'id.example.com',
  now: new Date(Date.UTC(2024, 2, 5, 9, 4, 1)),
  pid: 4242,
};

function fix(message: string, recipients: string[] = [], source: 'args' | 'header' | 'args-else-header' | 'both' = 'args-else-header', sender?: string, d: Partial<InjectDefaults> = {}) {
  const r = fixMessage({ input: Buffer.from(message, 'latin1'), recipients, source, ...(sender !== undefined && { sender }) }, { ...defaults, ...d });
  return { ...r, text: r.message.toString('latin1') };
}

describe('qmail-inject header fixing (unit)', () => {
  it('adds Date, Message-ID and From, and Cc: recipient list not shown without To/Cc', () => {
    const r = fix('Subject: hi\n\nbody\n', ['bob@example.org']);
    expect(r.text).toBe(
      'Date: 5 Mar 2024 09:04:01 -0000\nMessage-ID: <20240305090401.4242.qmail@id.example.com>\nFrom: joe@mx.example.com\nCc: recipient list not shown: ;\nSubject: hi\n\nbody\n',
    );
    expect(r.sender).toBe('joe@mx.example.com');
    expect(r.recipients).toEqual(['bob@example.org']);
  });

  it('keeps fields that are present and qualifies addresses', () => {
    const r = fix('From: Alice <alice>\nTo: bob, carol@mail, "Dan D." <dan@host+>, eve@x.org (Eve)\nDate: yesterday\nMessage-ID: <x@y>\n\nhi\n');
    expect(r.text).toContain('From: Alice <alice@mx.example.com>\n');
    expect(r.text).toContain('To: bob@mx.example.com, carol@mail.example.com, "Dan D." <dan@host.plus.example.com>, eve@x.org (Eve)\n');
    expect(r.text).toContain('Date: yesterday\n');
    expect(r.text).not.toMatch(/^Message-ID: <2024/m);
    expect(r.recipients).toEqual(['bob@mx.example.com', 'carol@mail.example.com', 'dan@host.plus.example.com', 'eve@x.org']);
  });

  it('deletes Bcc, Return-Path and Content-Length but still sends to Bcc recipients, and takes the sender from Return-Path', () => {
    const r = fix('To: a@x.org\nBcc: secret@x.org,\n  other@x.org\nReturn-Path: <bounces@x.org>\nContent-Length: 3\n\nabc\n', [], 'header');
    expect(r.text).not.toMatch(/^(Bcc|Return-Path|Content-Length):/im);
    expect(r.text).not.toContain('other@x.org');
    expect(r.recipients).toEqual(['a@x.org', 'secret@x.org', 'other@x.org']);
    expect(r.sender).toBe('bounces@x.org');
    expect(fix('To: a@x.org\nReturn-Path: <bounces@x.org>\n\n', [], 'header', undefined, { flags: 's' }).sender).toBe('joe@mx.example.com');
  });

  it('takes recipients as -a, -h, -A and -H say', () => {
    const msg = 'To: head@x.org\n\nbody\n';
    expect(fix(msg, ['arg@x.org'], 'args').recipients).toEqual(['arg@x.org']);
    expect(fix(msg, ['arg@x.org'], 'header').recipients).toEqual(['head@x.org']);
    expect(fix(msg, ['arg@x.org'], 'args-else-header').recipients).toEqual(['arg@x.org']);
    expect(fix(msg, [], 'args-else-header').recipients).toEqual(['head@x.org']);
    expect(fix(msg, ['arg@x.org'], 'both').recipients).toEqual(['arg@x.org', 'head@x.org']);
  });

  it('works in resent mode when Resent- fields are present', () => {
    const r = fix('From: a@x.org\nTo: b@x.org\nDate: then\nMessage-ID: <old@x>\nResent-To: c@x.org\n\nbody\n', [], 'header');
    expect(r.text).toMatch(/^Resent-Date: 5 Mar 2024 09:04:01 -0000$/m);
    expect(r.text).toMatch(/^Resent-Message-ID: <20240305090401\.4242\.qmail@id\.example\.com>$/m);
    expect(r.text).toMatch(/^Resent-From: joe@mx\.example\.com$/m);
    expect(r.recipients).toEqual(['c@x.org']);
  });

  it('turns CRLF into LF, honours -f (and -f "" for the null sender), and strips source routes', () => {
    const r = fix('To: <@relay.x.org:b@x.org>\r\nSubject: crlf\r\n\r\nline 1\r\nline 2\r\n', [], 'header', '');
    expect(r.text).toContain('To: <b@x.org>\n');
    expect(r.text.endsWith('\nline 1\nline 2\n')).toBe(true);
    expect(r.text).not.toContain('\r');
    expect(r.sender).toBe('');
    expect(fix('\nbody', ['b@x.org'], 'args', 'list').sender).toBe('list@mx.example.com');
  });

  it('uses a name for From, comment style with QMAILINJECT=c, and deletes From/Message-ID with f/i', () => {
    expect(fix('\n', ['b@x.org'], 'args', undefined, { name: 'Joe Q. Public' }).text).toMatch(/^From: "Joe Q. Public" <joe@mx\.example\.com>$/m);
    expect(fix('\n', ['b@x.org'], 'args', undefined, { name: 'Joe', flags: 'c' }).text).toMatch(/^From: joe@mx\.example\.com \(Joe\)$/m);
    const r = fix('From: x@y.org\nMessage-ID: <a@b>\n\n', ['b@x.org'], 'args', undefined, { flags: 'fi' });
    expect(r.text).not.toContain('x@y.org');
    expect(r.text).not.toContain('<a@b>');
    expect(r.text).toMatch(/^From: joe@mx\.example\.com$/m);
  });

  it('refuses a message without recipients and hostile addresses', () => {
    expect(() => fix('Subject: none\n\n')).toThrow(/no recipients/);
    expect(() => fix('\n', ['a b@x.org'])).toThrow(/bad recipient/);
    expect(() => fix('\n', ['a\0b@x.org'])).toThrow(/bad recipient/);
    expect(() => fix('\n', ['b@x.org'], 'args', 'evil>\r\nRCPT TO:<x@y>')).toThrow(/bad sender/);
  });

  it('treats a body without a header as body, and survives a 10 MB line', () => {
    const r = fix('just text, no header\nmore\n', ['b@x.org']);
    expect(r.text.endsWith('\n\njust text, no header\nmore\n')).toBe(true);
    const big = `Subject: big\n\n${'z'.repeat(10 * 1024 * 1024)}\n`;
    expect(fix(big, ['b@x.org']).message.length).toBeGreaterThan(10 * 1024 * 1024);
  });

  it("formats dates as qmail does", () => {
    expect(qmailDate(new Date(Date.UTC(2024, 11, 31, 23, 5, 9)))).toBe('31 Dec 2024 23:05:09 -0000');
  });
});

describe('quail inject / sendmail (the command)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  beforeAll(async () => {
    assertBuilt();
    ({ dir, cleanup } = await tempDir());
    root = join(dir, 'root');
    await quail(['init', root, '--me', 'mx.example.com']);
    await writeFile(join(root, 'control', 'idhost'), 'id.example.com\n');
    await writeFile(join(root, 'control', 'defaultdomain'), 'example.com\n');
  });
  afterAll(() => cleanup());

  it('prints the fixed message with -n, using control files and the environment', async () => {
    const r = await quail(['inject', '-n', '--root', root, 'bob'], {
      input: 'To: bob\r\nBcc: hidden@x.org\r\nSubject: test\r\n\r\nhello\r\n',
      env: { QMAILUSER: 'alice', QMAILNAME: 'Alice Example', QMAILHOST: '' },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Date: \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d -0000$/m);
    expect(r.stdout).toMatch(/^Message-ID: <\d{14}\.\d+\.qmail@id\.example\.com>$/m);
    expect(r.stdout).toMatch(/^From: Alice Example <alice@mx\.example\.com>$/m);
    expect(r.stdout).toMatch(/^To: bob@mx\.example\.com$/m);
    expect(r.stdout).not.toContain('Bcc');
    expect(r.stdout).not.toContain('\r');
    expect(r.stdout.endsWith('\n\nhello\n')).toBe(true);
  });

  it('QMAILDEFAULTHOST and QMAILIDHOST override the control files', async () => {
    const r = await quail(['inject', '-n', '--root', root, 'x@y.org'], { input: 'To: carol\n\n', env: { QMAILDEFAULTHOST: 'other.example', QMAILIDHOST: 'ids.example' } });
    expect(r.stdout).toMatch(/^To: carol@other\.example$/m);
    expect(r.stdout).toMatch(/@ids\.example>$/m);
  });

  it('exits 100 in one line when there are no recipients', async () => {
    const r = await quail(['inject', '--root', root], { input: 'Subject: nobody\n\nhi\n' });
    expect(r.code).toBe(100);
    expect(r.stderr).toBe('quail inject: no recipients\n');
  });

  it('sendmail refuses unknown options and -bs in one line', async () => {
    expect((await quail(['sendmail', '--root', root, '-Z'], { input: '' })).stderr).toBe('quail sendmail: unknown option -Z\n');
    const bs = await quail(['sendmail', '--root', root, '-bs'], { input: '' });
    expect(bs.code).toBe(100);
    expect(bs.stderr).toMatch(/^quail sendmail: -bs \(SMTP on stdin\) is not supported/);
  });

  it('queues durably without a daemon: the queue lists the message with its envelope', async () => {
    const r = await quail(['sendmail', '-t', '-i', '-oi', '-f', 'alice@example.org', '--root', root], {
      input: 'To: bob@example.net\nCc: carol@example.net\nSubject: queued\n\nhello\n',
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const q = await quail(['queue', '--root', root]);
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/^messages in queue: 1$/m);
    expect(q.stdout).toMatch(/^\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT {2}#\S+ {2}\d+ {2}<alice@example\.org> $/m);
    expect(q.stdout).toMatch(/^\tremote\tbob@example\.net$/m);
    expect(q.stdout).toMatch(/^\tremote\tcarol@example\.net$/m);
    const s = await quail(['qstat', '--root', root]);
    expect(s.stdout).toBe('messages in queue: 1\nmessages in queue but not yet preprocessed: 0\n');
  });
});
