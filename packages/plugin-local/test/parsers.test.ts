import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  dotQmailCandidates,
  findOwner,
  FromQuoting,
  hostileLocalPart,
  mboxFromLine,
  parseDotQmail,
  parseUsersAssign,
  programEnvironment,
  quoteAddress,
  returnPathLine,
} from '@quail/plugin-local';

describe('dot-qmail lines', () => {
  it('reads every line type, dropping comments and trailing blanks', () => {
    const parsed = parseDotQmail(
      ['# a comment', './Maildir/', '/var/mail/joe/Maildir/  ', './mbox\t', '/var/spool/mail/joe', '&joe@example.org', 'bill@example.net', '', '| preline /usr/bin/procmail'].join('\n'),
    );
    expect(parsed).toEqual({
      forwardOnly: false,
      instructions: [
        { kind: 'maildir', path: './Maildir/', line: 2 },
        { kind: 'maildir', path: '/var/mail/joe/Maildir/', line: 3 },
        { kind: 'mbox', path: './mbox', line: 4 },
        { kind: 'mbox', path: '/var/spool/mail/joe', line: 5 },
        { kind: 'forward', address: 'joe@example.org', line: 6 },
        { kind: 'forward', address: 'bill@example.net', line: 7 },
        { kind: 'program', command: ' preline /usr/bin/procmail', line: 9 },
      ],
    });
  });

  it('knows +list (forward only) and tolerates a missing final LF', () => {
    expect(parseDotQmail('+list\n&a@b')).toEqual({ forwardOnly: true, instructions: [{ kind: 'forward', address: 'a@b', line: 2 }] });
  });

  it('refuses what it cannot carry out, naming the line', () => {
    const bad: Array<[string, number, RegExp]> = [
      ['\n./Maildir/\n', 1, /first line of .qmail file is blank/],
      ['./Maildir/\n&Joe <joe@example.org>\n', 2, /bare user@host/],
      ['# x\nsomeone@example.org (comment)\n', 2, /bare user@host/],
      ['&\n', 1, /bare user@host/],
      ['|\n', 1, /without a command/],
      ['./mbox\0x\n', 1, /NUL/],
      ['+bogus\n', 1, /unknown flag/],
    ];
    for (const [text, line, reason] of bad) {
      expect(() => parseDotQmail(text), JSON.stringify(text)).toThrow(reason);
      try {
        parseDotQmail(text);
      } catch (err) {
        expect((err as { line: number }).line).toBe(line);
      }
    }
  });

  it('copes with a 10 MB line', () => {
    const long = `&${'a'.repeat(10 * 1024 * 1024)}@example.org`;
    expect(parseDotQmail(long).instructions[0]).toMatchObject({ kind: 'forward' });
  });
});

describe('users/assign', () => {
  const example = ['+:alias:7790:2108:/var/qmail/alias:-::', '+joe-:joe:507:100:/home/joe:-::', '=joe:joe:507:100:/home/joe:::', '.', ''].join('\n');

  it('follows the qmail-users(5) example: exact, longest wildcard, alias fallback', () => {
    const a = parseUsersAssign(example);
    expect(findOwner(a, 'joe')).toEqual({ user: 'joe', uid: 507, gid: 100, home: '/home/joe', dash: '', ext: '' });
    expect(findOwner(a, 'JOE-direct')).toEqual({ user: 'joe', uid: 507, gid: 100, home: '/home/joe', dash: '-', ext: 'direct' });
    expect(findOwner(a, 'bill')).toEqual({ user: 'alias', uid: 7790, gid: 2108, home: '/var/qmail/alias', dash: '-', ext: 'bill' });
  });

  it('takes the first of duplicate exact lines and stops at the . line', () => {
    const a = parseUsersAssign('=x:first:1:1:/a:::\n=x:second:2:2:/b:::\n.\n=y:after:3:3:/c:::\n');
    expect(findOwner(a, 'x')?.user).toBe('first');
    expect(findOwner(a, 'y')).toBeUndefined();
  });

  it('names the line of a malformed entry', () => {
    for (const [text, line] of [
      ['=a:b:1:1:/h:::\nnonsense\n.\n', 2],
      ['=a:b:x:1:/h:::\n', 1],
      ['=a:b:1:1:relative:::\n', 1],
      ['=a:b:1:1:/h::\n', 1],
      ['=a:b:1:1:/h:+::\n', 1],
      ['=a\0:b:1:1:/h:::\n', 1],
    ] as const) {
      expect(() => parseUsersAssign(text, 'users/assign')).toThrow(`users/assign:${line}:`);
    }
  });
});

describe('file selection', () => {
  it('tries the extension, then -default files walking back on -', () => {
    expect(dotQmailCandidates('', '')).toEqual(['.qmail']);
    expect(dotQmailCandidates('-', 'a')).toEqual(['.qmail-a', '.qmail-default']);
    expect(dotQmailCandidates('-', 'a-b')).toEqual(['.qmail-a-b', '.qmail-a-default', '.qmail-default']);
    expect(dotQmailCandidates('-', 'a-b-c')).toEqual(['.qmail-a-b-c', '.qmail-a-b-default', '.qmail-a-default', '.qmail-default']);
    expect(dotQmailCandidates('-', 'a-')).toEqual(['.qmail-a-', '.qmail-a-default', '.qmail-default']);
  });

  it('lower-cases the extension and writes dots as colons', () => {
    expect(dotQmailCandidates('-', 'John.Doe')).toEqual(['.qmail-john:doe', '.qmail-default']);
  });
});

describe('hostile local parts', () => {
  it('refuses /, .., NUL, CR, LF and a leading dot', () => {
    for (const bad of ['a/b', '../etc', 'a..b', 'a\0b', 'a\rb', 'a\nb', '.qmail', '', 'x\x7f']) expect(hostileLocalPart(bad), JSON.stringify(bad)).toBeDefined();
    for (const good of ['joe', 'joe-list', 'john.doe', 'a+b', "o'neil"]) expect(hostileLocalPart(good)).toBeUndefined();
  });
});

describe('header lines', () => {
  it('writes Return-Path as qmail-local does', () => {
    expect(returnPathLine('joe@example.org')).toBe('Return-Path: <joe@example.org>\n');
    expect(returnPathLine('')).toBe('Return-Path: <>\n');
    expect(quoteAddress('john doe@example.org')).toBe('"john doe"@example.org');
    expect(returnPathLine('a\r\nb@x')).not.toMatch(/[\r\n].*[\r\n]/);
  });

  it('writes the mbox From line in UTC with a zero-padded day', () => {
    const when = new Date(Date.UTC(2024, 2, 5, 9, 4, 1));
    expect(mboxFromLine('joe@example.org', when)).toBe('From joe@example.org Tue Mar 05 09:04:01 2024\n');
    expect(mboxFromLine('', when)).toBe('From MAILER-DAEMON Tue Mar 05 09:04:01 2024\n');
    expect(mboxFromLine('a b\tc\nd', when)).toBe('From a-b-c-d Tue Mar 05 09:04:01 2024\n');
  });
});

describe('>From quoting', () => {
  const quote = async (text: string, chunk: number) => {
    const buf = Buffer.from(text);
    const parts = [];
    for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
    const q = new FromQuoting();
    const out: Buffer[] = [];
    for await (const c of Readable.from(parts).pipe(q)) out.push(c as Buffer);
    return { text: Buffer.concat(out).toString(), newline: q.endedWithNewline };
  };

  for (const chunk of [1, 3, 4096]) {
    it(`quotes >*From lines only (chunks of ${chunk})`, async () => {
      const input = 'From a\nX: From b\n\nFrom here\n>From there\n>>From x\nFrom\nFromage\n>>> no\nFrom ';
      const expected = '>From a\nX: From b\n\n>From here\n>>From there\n>>>From x\nFrom\nFromage\n>>> no\n>From ';
      expect(await quote(input, chunk)).toEqual({ text: expected, newline: false });
      expect((await quote('a\n', chunk)).newline).toBe(true);
    });
  }
});

describe('program environment', () => {
  it('splits EXT and HOST as qmail-local does', () => {
    const env = programEnvironment({
      sender: 's@x',
      newSender: 's@x',
      recipient: 'joe-a-b-c@mail.example.com',
      user: 'joe',
      home: '/home/joe',
      local: 'joe-a-b-c',
      host: 'mail.example.com',
      ext: 'a-b-c',
      defaultPart: 'b-c',
      dtLine: 'Delivered-To: joe-a-b-c@mail.example.com\n',
      rpLine: 'Return-Path: <s@x>\n',
      ufLine: 'From s@x Tue Mar 05 09:04:01 2024\n',
    });
    expect(env).toMatchObject({ EXT: 'a-b-c', EXT2: 'b-c', EXT3: 'c', EXT4: '', HOST2: 'mail.example', HOST3: 'mail', HOST4: 'mail', DEFAULT: 'b-c' });
    expect(Object.keys(env).sort()).toEqual(
      ['PATH', 'SENDER', 'NEWSENDER', 'RECIPIENT', 'USER', 'HOME', 'HOST', 'HOST2', 'HOST3', 'HOST4', 'LOCAL', 'EXT', 'EXT2', 'EXT3', 'EXT4', 'DTLINE', 'RPLINE', 'UFLINE', 'DEFAULT'].sort(),
    );
  });
});
