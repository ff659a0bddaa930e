import { access, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import { VpopmailAdmin, formatDomainInfo, formatUserInfo } from '../src/index.js';
import { VpopmailStore } from '../src/store.js';
import { verifyPassword } from '../src/passwords.js';
import { pythonCrypt } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let admin: VpopmailAdmin;

const control = (file: string) => readFile(join(root, 'control', file), 'utf8');
const vpasswd = (domain: string) => readFile(join(root, 'domains', domain, 'vpasswd'), 'utf8');
const exists = (path: string) => access(path).then(() => true, () => false);

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot({ me: 'mx.example.net\n', rcpthosts: '# local\nmx.example.net\n', locals: 'mx.example.net\nexample.com\n' }));
  admin = new VpopmailAdmin(root);
});
afterEach(() => cleanup());

describe('vadddomain / vdeldomain / vaddaliasdomain / vdominfo', () => {
  it('adds a domain as vadddomain does: directory, vpasswd, postmaster, .qmail-default, control files', async () => {
    const { postmasterPassword } = await admin.addDomain('Example.COM', 'Secr3t');
    expect(postmasterPassword).toBe('Secr3t');
    const dir = join(root, 'domains', 'example.com');
    expect(await readFile(join(dir, '.qmail-default'), 'utf8')).toBe("| vdelivermail '' bounce-no-mailbox\n");
    const line = (await vpasswd('example.com')).trimEnd().split(':');
    expect(line).toEqual(['postmaster', expect.stringMatching(/^\$6\$/), '1', '0', 'Postmaster', join(dir, 'postmaster'), 'NOQUOTA', 'Secr3t']);
    expect(pythonCrypt('Secr3t', line[1]!)).toBe(line[1]);
    for (const sub of ['cur', 'new', 'tmp']) expect((await stat(join(dir, 'postmaster', 'Maildir', sub))).isDirectory()).toBe(true);
    expect(await control('rcpthosts')).toBe('# local\nmx.example.net\nexample.com\n');
    expect(await control('virtualdomains')).toBe('example.com:example.com\n');
    expect(await control('locals')).toBe('mx.example.net\n');
    await expect(admin.addDomain('example.com')).rejects.toMatchObject({ code: ErrorCodes.PERMANENT, message: 'Domain already exists: example.com' });
  });

  it('moves on to morercpthosts once rcpthosts has 50 entries, as vpopmail does', async () => {
    await writeFile(join(root, 'control', 'rcpthosts'), Array.from({ length: 50 }, (_, i) => `d${i}.example`).join('\n') + '\n');
    await admin.addDomain('example.com', 'pw1');
    expect(await control('rcpthosts')).not.toContain('example.com');
    expect(await control('morercpthosts')).toBe('example.com\n');
    await admin.deleteDomain('example.com');
    expect(await control('morercpthosts')).toBe('');
  });

  it('makes a random postmaster password when none is given', async () => {
    const { postmasterPassword } = await admin.addDomain('example.org');
    expect(postmasterPassword).toMatch(/^[A-Za-z0-9]{14}$/);
    const hash = (await vpasswd('example.org')).split(':')[1]!;
    expect(verifyPassword(postmasterPassword, hash)).toBe(true);
  });

  it('alias domains: either order, listed in rcpthosts and virtualdomains, refused twice', async () => {
    await admin.addDomain('example.com', 'pw1');
    await admin.addAliasDomain('example.com', 'alias.org');
    await admin.addAliasDomain('other.net', 'example.com');
    expect(await control('virtualdomains')).toBe('example.com:example.com\nalias.org:example.com\nother.net:example.com\n');
    expect(await control('rcpthosts')).toContain('alias.org\nother.net\n');
    await expect(admin.addAliasDomain('alias.org', 'example.com')).rejects.toThrow(/Domain already exists: alias.org/);
    await expect(admin.addAliasDomain('nowhere.net', 'gone.net')).rejects.toThrow(/Domain does not exist/);
    const infos = await admin.domainInfo();
    expect(infos.map((i) => [i.domain, i.realDomain, i.users])).toEqual([
      ['example.com', 'example.com', 1],
      ['alias.org', 'example.com', 1],
      ['other.net', 'example.com', 1],
    ]);
    const [alias] = await admin.domainInfo('alias.org');
    expect(formatDomainInfo(alias!)).toBe(
      `domain: alias.org (alias of example.com)\nuid:    ${alias!.uid}\ngid:    ${alias!.gid}\ndir:    ${join(root, 'domains', 'example.com')}\nusers:  1\n`,
    );
    // Users of the real domain are users of the alias domain.
    await admin.addUser('joe@alias.org', 'pw');
    expect((await admin.userInfo('joe@example.com')).address).toBe('joe@example.com');
  });

  it('vdeldomain removes the domain and its control lines; aliases need force', async () => {
    await admin.addDomain('example.com', 'pw1');
    await admin.addAliasDomain('example.com', 'alias.org');
    await expect(admin.deleteDomain('example.com')).rejects.toThrow('Alias domains exist: alias.org; use force to delete the domain and all its aliases');
    await admin.deleteDomain('alias.org');
    expect(await control('virtualdomains')).toBe('example.com:example.com\n');
    await admin.addAliasDomain('example.com', 'alias.org');
    await admin.deleteDomain('example.com', { force: true });
    expect(await control('virtualdomains')).toBe('');
    expect(await control('rcpthosts')).toBe('# local\nmx.example.net\n');
    expect(await readdir(join(root, 'domains'))).not.toContain('example.com');
    expect((await readdir(join(root, 'domains'))).filter((n) => n.startsWith('.deleted'))).toEqual([]);
    await expect(admin.deleteDomain('example.com')).rejects.toThrow('Domain does not exist: example.com');
  });
});

describe('vadduser / vdeluser / vpasswd / vuserinfo / vmoduser / vsetuserquota', () => {
  beforeEach(async () => {
    await admin.addDomain('example.com', 'pm-pass');
  });

  it('adds users with the exact vpasswd line, lower-cased, random password on request', async () => {
    await admin.addUser('Joe@Example.com', 'hunter2', { gecos: 'Joe Bloggs', quota: '50M' });
    const { password } = await admin.addUser('ann@example.com');
    const lines = (await vpasswd('example.com')).split('\n');
    expect(lines[1]).toMatch(new RegExp(`^joe:\\$6\\$[^:]+:1:0:Joe Bloggs:${join(root, 'domains/example.com/joe')}:52428800S:hunter2$`));
    expect(lines[2]).toMatch(new RegExp(`^ann:\\$6\\$[^:]+:1:0:ann:.*/ann:NOQUOTA:${password}$`));
    expect(lines[3]).toBe('');
    await expect(admin.addUser('joe@example.com', 'x1')).rejects.toThrow('User already exists: joe@example.com');
    await expect(admin.addUser('joe@nowhere.com', 'x1')).rejects.toThrow('Domain does not exist: nowhere.com');
    await expect(admin.addUser('j@example.com', 'x1')).rejects.toThrow(/Illegal username/);
  });

  it('a bare user name takes control/defaultdomain', async () => {
    await writeFile(join(root, 'control', 'defaultdomain'), 'example.com\n');
    await admin.addUser('bare', 'pw');
    expect((await admin.userInfo('bare@example.com')).name).toBe('bare');
    expect((await admin.userInfo('bare')).address).toBe('bare@example.com');
  });

  it('vpasswd: new hash with new salt and new clear text; the old password stops working', async () => {
    await admin.addUser('correo@example.com', 'vieja');
    const before = await admin.userInfo('correo@example.com');
    await admin.setPassword('correo@example.com', 'contraseña');
    const after = await admin.userInfo('correo@example.com');
    expect(after.clearPassword).toBe('contraseña');
    expect(after.passwd).not.toBe(before.passwd);
    expect(verifyPassword('contraseña', after.passwd)).toBe(true);
    expect(verifyPassword('vieja', after.passwd)).toBe(false);
    expect(pythonCrypt('contraseña', after.passwd)).toBe(after.passwd);
    await admin.modifyUser('correo@example.com', { flags: { noPassword: true } });
    await expect(admin.setPassword('correo@example.com', 'otra')).rejects.toThrow(/Password changes are disabled/);
    await expect(admin.setPassword('nobody@example.com', 'otra')).rejects.toThrow('User does not exist: nobody@example.com');
  });

  it('vmoduser sets and clears flag bits and the comment', async () => {
    await admin.addUser('joe@example.com', 'pw');
    await admin.modifyUser('joe@example.com', { flags: { noPop: true, noSmtp: true, bounceMail: true }, gecos: 'Joe B' });
    let info = await admin.userInfo('joe@example.com');
    expect(info.gid).toBe(2 + 16 + 2048);
    expect(info.flags).toMatchObject({ noPop: true, noSmtp: true, bounceMail: true, noImap: false });
    expect(info.gecos).toBe('Joe B');
    await admin.modifyUser('joe@example.com', { flags: { bounceMail: false } });
    info = await admin.userInfo('joe@example.com');
    expect(info.gid).toBe(2050);
    const text = formatUserInfo(info);
    expect(text).toContain('name:   joe\n');
    expect(text).toContain('clear passwd: pw\n');
    expect(text).toContain('flags:  2050\n        pop access closed\n        smtp access is closed\n');
    expect(text).toContain('usage:     NOQUOTA');
    await expect(admin.modifyUser('joe@example.com', { gecos: 'a:b' })).rejects.toThrow(/Comments may not contain/);
  });

  it('vsetuserquota normalises, rewrites field 7 and the first line of maildirsize; usage is counted', async () => {
    await admin.addUser('joe@example.com', 'pw');
    const maildir = join(root, 'domains/example.com/joe/Maildir');
    await writeFile(join(maildir, 'new', '1700000000.1.host,S=300'), 'x'.repeat(300));
    await writeFile(join(maildir, 'cur', '1700000001.1.host,S=700:2,S'), 'y'.repeat(700));
    await writeFile(join(maildir, 'cur', '1700000002.1.host:2,ST'), 'trashed');
    await writeFile(join(maildir, 'maildirsize'), '1000S\n300 1\n700 1\n');
    await admin.setQuota('joe@example.com', '10K');
    expect(await readFile(join(maildir, 'maildirsize'), 'utf8')).toBe('10240S\n300 1\n700 1\n');
    const info = await admin.userInfo('joe@example.com');
    expect(info.quota).toBe('10240S');
    expect(info.usage).toEqual({ bytes: 1000, messages: 2 });
    expect(info.usagePercent).toBe(9);
    expect(formatUserInfo(info)).toContain('quota:     10240S\nusage:     9% (1000 bytes, 2 messages)');
    await admin.setQuota('joe@example.com', 'NOQUOTA');
    expect(await exists(join(maildir, 'maildirsize'))).toBe(false);
    expect((await admin.userInfo('joe@example.com')).quota).toBe('NOQUOTA');
    await expect(admin.setQuota('joe@example.com', '10 M')).rejects.toThrow(/Invalid quota/);
  });

  it('vuserinfo -D lists every account in file order with hash and clear password', async () => {
    await admin.addUser('joe@example.com', 'pw-joe');
    await admin.addUser('ann@example.com', 'pw-ann');
    const users = await admin.listUsers('example.com');
    expect(users.map((u) => [u.name, u.clearPassword])).toEqual([
      ['postmaster', 'pm-pass'],
      ['joe', 'pw-joe'],
      ['ann', 'pw-ann'],
    ]);
    expect(users.every((u) => u.passwd.startsWith('$6$'))).toBe(true);
  });

  it('vdeluser removes the line and the directory; the catch-all account is refused', async () => {
    await admin.addUser('joe@example.com', 'pw');
    await admin.addUser('catch@example.com', 'pw');
    await admin.deleteUser('joe@example.com');
    expect(await vpasswd('example.com')).not.toMatch(/^joe:/m);
    expect(await exists(join(root, 'domains/example.com/joe'))).toBe(false);
    await expect(admin.deleteUser('joe@example.com')).rejects.toThrow('User does not exist: joe@example.com');
    await writeFile(join(root, 'domains/example.com/.qmail-default'), "| vdelivermail '' catch@example.com\n");
    await expect(admin.deleteUser('catch@example.com')).rejects.toThrow("can't delete catchall account catch@example.com");
  });

  it('without clear passwords field 8 is not written and a password change drops an old one', async () => {
    await admin.addUser('joe@example.com', 'pw1');
    const noClear = new VpopmailAdmin(root, { clearPasswords: false });
    await noClear.addUser('ann@example.com', 'pw2');
    await noClear.setPassword('joe@example.com', 'pw3');
    const text = await vpasswd('example.com');
    expect(text).toMatch(/^ann:\$6\$[^:]+:1:0:ann:[^:]+:NOQUOTA$/m);
    expect(text).toMatch(/^joe:\$6\$[^:]+:1:0:joe:[^:]+:NOQUOTA$/m);
    await writeFile(join(root, 'control', 'vpopmail.clearpasswd'), '0\n');
    expect((await new VpopmailAdmin(root).listUsers('example.com'))[0]!.clearPassword).toBeUndefined();
  });

  it('rewrites keep lines they cannot read (with a warning), and remove a stale vpasswd.cdb', async () => {
    const file = join(root, 'domains/example.com/vpasswd');
    await writeFile(file, (await vpasswd('example.com')) + 'broken:line\n');
    await writeFile(join(root, 'domains/example.com/vpasswd.cdb'), 'stale');
    const warnings: string[] = [];
    admin = new VpopmailAdmin(root, { warn: (w) => warnings.push(w) });
    await admin.addUser('joe@example.com', 'pw');
    expect((await admin.listUsers('example.com')).map((u) => u.name)).toEqual(['postmaster', 'joe']);
    expect(warnings).toEqual([`${file}:2: 2 fields, 7 or 8 expected; line skipped`]);
    const lines = (await vpasswd('example.com')).split('\n');
    expect(lines[1]).toBe('broken:line');
    expect(lines[2]).toMatch(/^joe:/);
    expect(await exists(join(root, 'domains/example.com/vpasswd.cdb'))).toBe(false);
  });
});

describe('valias', () => {
  beforeEach(async () => {
    await admin.addDomain('example.com', 'pm');
  });

  it('adds, lists and deletes .qmail-<alias> files', async () => {
    await admin.addAlias('Info@example.com', 'joe@example.org');
    await admin.addAlias('info@example.com', 'ann@example.org');
    await admin.addAlias('j.doe@example.com', 'jd@example.org');
    expect(await readFile(join(root, 'domains/example.com/.qmail-info'), 'utf8')).toBe('joe@example.org\nann@example.org\n');
    expect(await exists(join(root, 'domains/example.com/.qmail-j:doe'))).toBe(true);
    await expect(admin.addAlias('info@example.com', 'joe@example.org')).rejects.toThrow('alias info@example.com -> joe@example.org already exists.');
    expect(await admin.listAliases('example.com')).toEqual([
      { alias: 'info@example.com', targets: ['joe@example.org', 'ann@example.org'] },
      { alias: 'j.doe@example.com', targets: ['jd@example.org'] },
    ]);
    expect(await admin.listAliases('info@example.com')).toEqual([{ alias: 'info@example.com', targets: ['joe@example.org', 'ann@example.org'] }]);
    await admin.deleteAlias('info@example.com', 'joe@example.org');
    expect(await readFile(join(root, 'domains/example.com/.qmail-info'), 'utf8')).toBe('ann@example.org\n');
    await admin.deleteAlias('info@example.com');
    expect(await exists(join(root, 'domains/example.com/.qmail-info'))).toBe(false);
    await expect(admin.deleteAlias('info@example.com')).rejects.toThrow('alias info@example.com does not exist');
  });

  it('refuses hostile targets and the default name', async () => {
    for (const bad of ['', 'a b@c', 'x@y\n|rm -rf /', 'joe@example.org\0', 'noatsign', '#comment@x']) {
      await expect(admin.addAlias('info@example.com', bad), JSON.stringify(bad)).rejects.toMatchObject({ code: ErrorCodes.INVALID });
    }
    await expect(admin.addAlias('default@example.com', 'a@b.org')).rejects.toThrow(/default/);
  });
});

describe('hostile input', () => {
  beforeEach(async () => {
    await admin.addDomain('example.com', 'pm');
  });

  const badUsers = ['../evil', 'a/b', 'a:b', 'a b', 'a\nb', 'a\0b', '.', '..', '.hidden', 'x'.repeat(65), 'a\tb'];
  const badDomains = ['../etc', 'a/b.com', 'a:b.com', 'ex ample.com', 'a\n.com', 'a\0b.com', '..', '.', 'x'.repeat(97) + '.com', 'a..b.com', ''];

  it('refuses bad user names with one-line errors, and writes nothing', async () => {
    const before = await vpasswd('example.com');
    for (const user of badUsers) {
      const err = await admin.addUser(`${user}@example.com`, 'pw').catch((e: Error) => e);
      expect(err, JSON.stringify(user)).toMatchObject({ code: ErrorCodes.INVALID });
      expect((err as Error).message).not.toMatch(/\n/);
    }
    expect(await vpasswd('example.com')).toBe(before);
    expect((await readdir(join(root, 'domains/example.com'))).sort()).toEqual(['.qmail-default', 'postmaster', 'vpasswd']);
  });

  it('refuses bad domain names in every command', async () => {
    for (const d of badDomains) {
      await expect(admin.addDomain(d, 'pw'), JSON.stringify(d)).rejects.toMatchObject({ code: ErrorCodes.INVALID });
      await expect(admin.addUser(`joe@${d}`, 'pw'), JSON.stringify(d)).rejects.toMatchObject({ code: ErrorCodes.INVALID });
      await expect(admin.addAliasDomain(d, 'example.com'), JSON.stringify(d)).rejects.toMatchObject({ code: ErrorCodes.INVALID });
      await expect(admin.deleteDomain(d), JSON.stringify(d)).rejects.toMatchObject({ code: ErrorCodes.INVALID });
    }
    expect((await readdir(join(root, 'domains'))).filter((n) => !n.startsWith('.'))).toEqual(['example.com']);
  });

  it('refuses passwords with ":" or line breaks, and over-long comments', async () => {
    for (const pw of ['a:b', 'a\nb', 'a\r\nb', 'nul\0']) {
      await expect(admin.addUser('joe@example.com', pw)).rejects.toMatchObject({ code: ErrorCodes.INVALID });
      await expect(admin.setPassword('postmaster@example.com', pw)).rejects.toMatchObject({ code: ErrorCodes.INVALID });
    }
    await expect(admin.addUser('joe@example.com', 'pw', { gecos: 'x'.repeat(65) })).rejects.toThrow(/Comment longer/);
    await expect(admin.addUser('joe@example.com', 'pw', { gecos: 'a\nb' })).rejects.toThrow(/Comments may not contain/);
  });

  it('a user name that is already a file or directory in the domain directory is refused', async () => {
    await mkdir(join(root, 'domains/example.com/stray'));
    await expect(admin.addUser('stray@example.com', 'pw')).rejects.toThrow(/User directory already exists/);
    await expect(admin.addUser('vpasswd@example.com', 'pw')).rejects.toThrow(/Illegal username: vpasswd/);
    await expect(admin.addUser('vpasswd.cdb@example.com', 'pw')).rejects.toThrow(/Illegal username: vpasswd.cdb/);
    expect(await vpasswd('example.com')).not.toMatch(/^(stray|vpasswd):/m);
  });

  it('a missing domain directory is a clear error, and the store serves other domains', async () => {
    await writeFile(join(root, 'control', 'virtualdomains'), 'example.com:example.com\ngone.org:gone.org\n');
    await expect(admin.addUser('joe@gone.org', 'pw')).rejects.toThrow('Domain does not exist: gone.org');
    await expect(admin.userInfo('joe@gone.org')).rejects.toThrow('Domain does not exist: gone.org');
    const store = new VpopmailStore(root);
    expect(await store.lookup('joe@gone.org')).toBeUndefined();
    expect(await store.lookup('postmaster@example.com')).toMatchObject({ address: 'postmaster@example.com' });
  });
});
