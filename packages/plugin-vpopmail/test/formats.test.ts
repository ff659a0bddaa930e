import { describe, expect, it } from 'vitest';
import { parseDefaultAction, shellWords } from '../src/domain-default.js';
import { applyFlags, FlagBits, flagsFromGid } from '../src/flags.js';
import { domainName, requireAddress, requirePassword, userName } from '../src/names.js';
import { normaliseQuota, quotaFromField, usagePercent } from '../src/quota.js';
import { extensionFiles } from '../src/recipients.js';
import { formatVpasswdLine, parseVpasswd } from '../src/vpasswd.js';

describe('vpasswd lines', () => {
  it('reads 7 and 8 field lines, CRLF, a missing final LF, and keeps file order', () => {
    const text = [
      'postmaster:$1$Rt7xQ2aB$Y6v0f3:1:0:Postmaster:/home/vpopmail/domains/example.com/postmaster:NOQUOTA:Secr3t',
      'joe:$6$k3JqL0pXwZ1yTbCd$9wQ:1:2050:Joe Bloggs:/home/vpopmail/domains/example.com/joe:52428800S\r',
      'Ann:x:2:0:Ann:/d/ann:NOQUOTA:',
    ].join('\n');
    const parsed = parseVpasswd(text, 'vpasswd');
    expect(parsed.warnings).toEqual([]);
    expect([...parsed.users.keys()]).toEqual(['postmaster', 'joe', 'ann']);
    expect(parsed.users.get('postmaster')).toMatchObject({ uid: 1, gid: 0, gecos: 'Postmaster', quota: 'NOQUOTA', clear: 'Secr3t' });
    expect(parsed.users.get('joe')).toMatchObject({ gid: 2050, quota: '52428800S' });
    expect(parsed.users.get('joe')!.clear).toBeUndefined();
    expect(parsed.users.get('ann')).toMatchObject({ uid: 2, clear: '' });
  });

  it('skips bad lines with a warning naming file and line, and keeps them verbatim for rewrites', () => {
    const text = ['good:h:1:0:g:/d/good:NOQUOTA', 'short:h:1:0', 'bad/name:h:1:0:g:/d/x:NOQUOTA', 'flags:h:1:abc:g:/d/f:NOQUOTA', 'nul\0:h:1:0:g:/d:NOQUOTA', '', 'after:h:1:0:g:/d/after:NOQUOTA'].join('\n');
    const parsed = parseVpasswd(text, '/r/domains/x.com/vpasswd');
    expect([...parsed.users.keys()]).toEqual(['good', 'after']);
    expect(parsed.warnings).toEqual([
      '/r/domains/x.com/vpasswd:2: 4 fields, 7 or 8 expected; line skipped',
      '/r/domains/x.com/vpasswd:3: invalid user name "bad/name"; line skipped',
      '/r/domains/x.com/vpasswd:4: flags field (4) is not a number: "abc"; line skipped',
      '/r/domains/x.com/vpasswd:5: contains a NUL byte; line skipped',
    ]);
    expect(parsed.lines.map((l) => l.raw).join('\n')).toBe(text);
  });

  it('escapes line breaks of a bad name in the warning, U+2028 and CR included, so it stays one log line', () => {
    const parsed = parseVpasswd('bad\u2028na\rme:h:1:0:g:/d:NOQUOTA\n', 'vpasswd');
    expect(parsed.warnings).toEqual(['vpasswd:1: invalid user name "bad\\u2028na\\rme"; line skipped']);
  });

  it('the first line of a duplicated name wins, as with vpasswd.cdb', () => {
    const parsed = parseVpasswd('a1:h1:1:0:g:/d:NOQUOTA\na1:h2:1:0:g:/d:NOQUOTA\n', 'f');
    expect(parsed.users.get('a1')!.passwd).toBe('h1');
  });

  it('formats field 8 only when clear passwords are kept', () => {
    const e = { name: 'joe', passwd: '$6$s$h', uid: 1, gid: 0, gecos: 'Joe', dir: '/d/joe', quota: 'NOQUOTA', clear: 'pw' };
    expect(formatVpasswdLine(e, true)).toBe('joe:$6$s$h:1:0:Joe:/d/joe:NOQUOTA:pw');
    expect(formatVpasswdLine(e, false)).toBe('joe:$6$s$h:1:0:Joe:/d/joe:NOQUOTA');
  });
});

describe('names', () => {
  it('lower-cases and accepts what vpopmail accepts', () => {
    expect(userName('Joe.Bloggs')).toBe('joe.bloggs');
    expect(userName("o'neil+tag=x_y~z")).toBe("o'neil+tag=x_y~z");
    expect(domainName('Example.COM')).toBe('example.com');
    expect(requireAddress('JOE@Example.com')).toEqual({ user: 'joe', domain: 'example.com' });
    expect(requireAddress('joe%example.com')).toEqual({ user: 'joe', domain: 'example.com' });
    expect(requireAddress('joe', 'example.com')).toEqual({ user: 'joe', domain: 'example.com' });
  });

  it('refuses names that could leave their directory or break a vpasswd line', () => {
    for (const bad of ['a:b', 'a/b', '..', '.', '.hidden', 'a b', 'a\nb', 'a\0b', 'a@b', 'a,b', 'a<b>', '', 'x'.repeat(65), 'tab\t']) {
      expect(userName(bad), JSON.stringify(bad)).toBeUndefined();
    }
    for (const bad of ['a..b', '../etc', 'x/y.com', '-a.com', 'a-.com', 'a.com.', '.a.com', 'ex ample.com', 'a\n.com', 'ab', 'a:b.com', 'a\0.com', `${'a'.repeat(95)}.c`]) {
      expect(domainName(bad), JSON.stringify(bad)).toBeUndefined();
    }
    expect(() => requireAddress('joe')).toThrow(/full email address/);
    expect(() => requireAddress('../../etc/passwd@example.com')).toThrow(/Invalid user name/);
  });

  it('refuses passwords that would break the line', () => {
    for (const bad of ['a:b', 'a\nb', 'a\rb', 'a\0b', '', 'x'.repeat(129)]) expect(() => requirePassword(bad)).toThrow();
    expect(requirePassword('contraseña ñ!')).toBe('contraseña ñ!');
  });
});

describe('quota', () => {
  it("normalises vsetuserquota's inputs", () => {
    expect(normaliseQuota('NOQUOTA')).toBe('NOQUOTA');
    expect(normaliseQuota('noquota')).toBe('NOQUOTA');
    expect(normaliseQuota('10M')).toBe('10485760S');
    expect(normaliseQuota('10MB')).toBe('10485760S');
    expect(normaliseQuota('500K')).toBe('512000S');
    expect(normaliseQuota('1000000')).toBe('1000000S');
    expect(normaliseQuota('5000000S,1000C')).toBe('5000000S,1000C');
    expect(normaliseQuota('1000C')).toBe('1000C');
    for (const bad of ['', '10X', '-5', '0', 'S', '5S,6S', '1e6', '99999999999999999999', '5S;rm']) expect(() => normaliseQuota(bad), bad).toThrow(/Invalid quota/);
  });

  it('reads field 7', () => {
    expect(quotaFromField('NOQUOTA')).toBeUndefined();
    expect(quotaFromField('52428800S')).toEqual({ bytes: 52428800 });
    expect(quotaFromField('5000S,10C')).toEqual({ bytes: 5000, messages: 10 });
    expect(quotaFromField('1000000')).toEqual({ bytes: 1000000 });
    expect(quotaFromField('garbage')).toBeUndefined();
    expect(usagePercent({ bytes: 1000, messages: 10 }, { bytes: 500, messages: 9 })).toBe(90);
  });
});

describe('flags', () => {
  it('maps the gid bits as vpopmail defines them', () => {
    expect(FlagBits).toMatchObject({ noPassword: 1, noPop: 2, noWebmail: 4, noImap: 8, bounceMail: 16, noRelay: 32, noDialup: 64, noSmtp: 2048, qaAdmin: 4096, override: 8192 });
    const f = flagsFromGid(2 + 16 + 2048);
    expect(f).toMatchObject({ noPop: true, bounceMail: true, noSmtp: true, noImap: false, noPassword: false });
    expect(applyFlags(0, { noPop: true, noSmtp: true })).toBe(2050);
    expect(applyFlags(2050, { noPop: false })).toBe(2048);
    expect(() => applyFlags(0, { bogus: true })).toThrow(/Unknown vpopmail flag/);
  });
});

describe('.qmail-default', () => {
  it('reads the vdelivermail instruction', () => {
    expect(parseDefaultAction("| /home/vpopmail/bin/vdelivermail '' bounce-no-mailbox\n")).toEqual({ kind: 'bounce' });
    expect(parseDefaultAction('|vdelivermail "" delete')).toEqual({ kind: 'delete' });
    expect(parseDefaultAction("| vdelivermail '' catch@example.org")).toEqual({ kind: 'forward', address: 'catch@example.org' });
    expect(parseDefaultAction("| vdelivermail '' /home/vpopmail/domains/x.com/all")).toEqual({ kind: 'directory', path: '/home/vpopmail/domains/x.com/all' });
    expect(parseDefaultAction("| vdelivermail '' /var/mail/all/Maildir/")).toEqual({ kind: 'maildir', path: '/var/mail/all/Maildir/' });
    expect(parseDefaultAction("| vdelivermail bounce-no-mailbox")).toMatchObject({ kind: 'invalid' });
    expect(parseDefaultAction("| vdelivermail '' notanaddress")).toMatchObject({ kind: 'invalid' });
    expect(parseDefaultAction('&someone@example.org\n')).toEqual({ kind: 'dot-qmail' });
    expect(parseDefaultAction('| preline /usr/bin/ezmlm-send ~/list')).toEqual({ kind: 'dot-qmail' });
    expect(shellWords(`a 'b c' "d\\"e" f\\ g`)).toEqual(['a', 'b c', 'd"e', 'f g']);
  });

  it("lists qmail-local's extension files", () => {
    expect(extensionFiles('joe')).toEqual(['.qmail-joe']);
    expect(extensionFiles('list-owner-x')).toEqual(['.qmail-list-owner-x', '.qmail-list-owner-default', '.qmail-list-default']);
    expect(extensionFiles('J.Doe')).toEqual(['.qmail-j:doe']);
    expect(extensionFiles('../x')).toEqual([]);
    expect(extensionFiles('default')).toEqual([]);
  });
});
