import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, Tokens, type Authenticator, type QuailServer, type UserStore } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import maildirPlugin from '@quail/plugin-maildir';
import vpopmailPlugin from '../src/index.js';
import { apopDigest, cramMd5Digest } from '../src/passwords.js';
import { openssl, python } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let server: QuailServer;
let logLines: string[];

/** A domain directory as real vpopmail writes it: absolute /home/vpopmail paths, a hashed subdirectory, hashes from other tools. */
async function writeVpopmailDomain(): Promise<Record<string, string>> {
  const [des, pyMd5] = python("import crypt, sys; print(crypt.crypt(sys.argv[1], 'q7')); print(crypt.crypt(sys.argv[1], crypt.METHOD_MD5))", 'des-pw');
  const hashes: Record<string, string> = {
    md5user: openssl('passwd', '-1', 'md5-pw'),
    sha256user: openssl('passwd', '-5', 'sha256-pw'),
    sha512user: openssl('passwd', '-6', 'contraseña'),
    desuser: des!,
    pymd5: pyMd5!,
  };
  const home = '/home/vpopmail/domains/real.example';
  const lines = [
    `postmaster:${openssl('passwd', '-1', 'pm-pw')}:1:0:Postmaster:${home}/postmaster:NOQUOTA:pm-pw`,
    `md5user:${hashes.md5user}:1:0:md5user:${home}/md5user:NOQUOTA:md5-pw`,
    `sha256user:${hashes.sha256user}:1:0:x:${home}/sha256user:NOQUOTA`,
    `sha512user:${hashes.sha512user}:1:0:x:${home}/0/sha512user:52428800S:contraseña`,
    `desuser:${hashes.desuser}:1:0:x:${home}/desuser:NOQUOTA:des-pw`,
    `pymd5:${hashes.pymd5}:1:0:x:${home}/pymd5:NOQUOTA:des-pw`,
    'broken:line:with:too-few',
    `nopop:${openssl('passwd', '-6', 'pw')}:1:2:x:${home}/nopop:NOQUOTA:pw`,
    `nosmtp:${openssl('passwd', '-6', 'pw')}:1:2048:x:${home}/nosmtp:NOQUOTA:pw`,
    `nohash::1:0:x:${home}/nohash:NOQUOTA:`,
    `escape:${openssl('passwd', '-6', 'pw')}:1:0:x:/home/vpopmail/domains/real.example/../../../../etc:NOQUOTA:pw`,
  ];
  const dir = join(root, 'domains', 'real.example');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'vpasswd'), lines.join('\n'));
  await writeFile(join(dir, '.qmail-default'), "| /home/vpopmail/bin/vdelivermail '' bounce-no-mailbox\n");
  return hashes;
}

async function startServer(extra: Record<string, string> = {}): Promise<void> {
  for (const [file, text] of Object.entries(extra)) await writeFile(join(root, 'control', file), text);
  logLines = [];
  server = createServer({ root, plugins: [vpopmailPlugin, maildirPlugin], log: { level: 'warn', write: (l) => void logLines.push(l) } });
  await server.start();
}

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot({
    me: 'mx.example.net\n',
    defaultdomain: 'real.example\n',
    virtualdomains: 'real.example:real.example\nalias.example:real.example\n',
  }));
  await writeVpopmailDomain();
});
afterEach(async () => {
  if (server?.state === 'running') await server.stop();
  await cleanup();
});

const login = (username: string, password: string, service = 'pop3') =>
  server.resolve<Authenticator>(Tokens.Authenticator).authenticate({ mechanism: 'USER', service, username, password });

describe('logins against a directory written by vpopmail', () => {
  it('hashes from openssl -1/-5/-6 and Python crypt (DES, MD5) log in; wrong passwords do not', async () => {
    await startServer();
    const cases: Array<[string, string]> = [
      ['md5user', 'md5-pw'],
      ['sha256user', 'sha256-pw'],
      ['sha512user', 'contraseña'],
      ['desuser', 'des-pw'],
      ['pymd5', 'des-pw'],
      ['postmaster', 'pm-pw'],
    ];
    for (const [user, pw] of cases) {
      expect(await login(`${user}@real.example`, pw), user).toMatchObject({ ok: true, user: { address: `${user}@real.example` } });
      expect(await login(`${user}@real.example`, `${pw}!`), user).toEqual({ ok: false, reason: 'bad-credentials' });
    }
    expect(await login('nobody@real.example', 'x')).toEqual({ ok: false, reason: 'bad-credentials' });
    expect(await login('nohash@real.example', '')).toEqual({ ok: false, reason: 'bad-credentials' });
    expect(await login('nohash@real.example', 'anything')).toEqual({ ok: false, reason: 'bad-credentials' });
  });

  it('oversized logins and passwords are refused without hashing them', async () => {
    await startServer();
    expect(await login('sha512user@real.example', 'x'.repeat(10 * 1024 * 1024))).toEqual({ ok: false, reason: 'bad-credentials' });
    expect(await login(`${'a'.repeat(10 * 1024 * 1024)}@real.example`, 'contraseña')).toEqual({ ok: false, reason: 'bad-credentials' });
    expect(await login(`sha512user@${'b'.repeat(1024 * 1024)}.example`, 'contraseña')).toEqual({ ok: false, reason: 'bad-credentials' });
  });

  it('logins are lower-cased, a bare name uses control/defaultdomain, alias domains log in as the real one', async () => {
    await startServer();
    expect(await login('SHA512User@Real.Example', 'contraseña')).toMatchObject({ ok: true, user: { address: 'sha512user@real.example' } });
    expect(await login('sha512user', 'contraseña')).toMatchObject({ ok: true, user: { domain: 'real.example' } });
    expect(await login('sha512user@alias.example', 'contraseña')).toMatchObject({ ok: true, user: { address: 'sha512user@real.example' } });
    expect(await login('sha512user%real.example', 'contraseña')).toMatchObject({ ok: true });
    for (const hostile of ['../sha512user@real.example', 'sha512user@../real.example', 'sha512user@real.example\0', 'sha512user\n@real.example', 'sha512user@real.example/']) {
      expect(await login(hostile, 'contraseña'), JSON.stringify(hostile)).toEqual({ ok: false, reason: 'bad-credentials' });
    }
  });

  it('maps vpopmail paths into the server root and never outside the domain directory', async () => {
    await startServer();
    const store = server.resolve<UserStore>(Tokens.UserStore);
    const domainDir = join(root, 'domains', 'real.example');
    expect(await store.lookup('md5user@real.example')).toMatchObject({ home: join(domainDir, 'md5user'), maildir: join(domainDir, 'md5user', 'Maildir') });
    expect(await store.lookup('sha512user@real.example')).toMatchObject({ home: join(domainDir, '0', 'sha512user'), quota: { bytes: 52428800 } });
    expect(await store.lookup('escape@real.example')).toMatchObject({ home: join(domainDir, 'escape') });
    expect(await store.hasDomain('alias.example')).toBe(true);
    expect(await store.hasDomain('elsewhere.example')).toBe(false);
  });

  it('a line with too few fields is skipped with a warning naming file and line', async () => {
    await startServer();
    expect(await login('md5user@real.example', 'md5-pw')).toMatchObject({ ok: true });
    expect(logLines.join('')).toContain(`${join(root, 'domains/real.example/vpasswd')}:7: 4 fields, 7 or 8 expected; line skipped`);
  });

  it('flags: NO_POP refuses POP3 only, NO_SMTP refuses SMTP AUTH only', async () => {
    await startServer();
    expect(await login('nopop@real.example', 'pw', 'pop3')).toMatchObject({ ok: false, reason: 'disabled' });
    expect(await login('nopop@real.example', 'pw', 'smtp')).toMatchObject({ ok: true, user: { flags: { noPop: true } } });
    expect(await login('nosmtp@real.example', 'pw', 'smtp')).toMatchObject({ ok: false, reason: 'disabled' });
    expect(await login('nosmtp@real.example', 'pw', 'pop3')).toMatchObject({ ok: true });
    // A closed account with a wrong password says nothing about the flags.
    expect(await login('nopop@real.example', 'wrong', 'pop3')).toEqual({ ok: false, reason: 'bad-credentials' });
  });

  it('APOP and CRAM-MD5 work from the clear-text field and are offered only when it is kept', async () => {
    await startServer();
    const auth = server.resolve<Authenticator>(Tokens.Authenticator);
    expect(auth.mechanisms()).toEqual(['USER', 'PLAIN', 'LOGIN', 'APOP', 'CRAM-MD5']);
    const ts = '<4301.1709629500@mx.example.net>';
    expect(await auth.authenticate({ mechanism: 'APOP', service: 'pop3', username: 'md5user@real.example', challenge: ts, response: apopDigest(ts, 'md5-pw') })).toMatchObject({ ok: true });
    expect(await auth.authenticate({ mechanism: 'APOP', service: 'pop3', username: 'md5user@real.example', challenge: ts, response: apopDigest(ts, 'nope') })).toMatchObject({ ok: false });
    expect(await auth.authenticate({ mechanism: 'CRAM-MD5', service: 'smtp', username: 'sha512user@real.example', challenge: ts, response: cramMd5Digest(ts, 'contraseña').toUpperCase() })).toMatchObject({ ok: true });
    // No clear text on the line: APOP cannot succeed, not even with the digest of an empty password.
    expect(await auth.authenticate({ mechanism: 'APOP', service: 'pop3', username: 'sha256user@real.example', challenge: ts, response: apopDigest(ts, '') })).toMatchObject({ ok: false });
    expect(await auth.authenticate({ mechanism: 'APOP', service: 'pop3', username: 'nohash@real.example', challenge: ts, response: apopDigest(ts, '') })).toMatchObject({ ok: false });
    await server.stop();

    await startServer({ 'vpopmail.clearpasswd': '0\n' });
    const plain = server.resolve<Authenticator>(Tokens.Authenticator);
    expect(plain.mechanisms()).toEqual(['USER', 'PLAIN', 'LOGIN']);
    expect(await plain.authenticate({ mechanism: 'APOP', service: 'pop3', username: 'md5user@real.example', challenge: ts, response: apopDigest(ts, 'md5-pw') })).toMatchObject({ ok: false });
  });

  it('a bad control/vpopmail.clearpasswd is a config error naming the file', async () => {
    await expect(startServer({ 'vpopmail.clearpasswd': 'yes\n' })).rejects.toThrow(/control\/vpopmail.clearpasswd:1/);
  });
});
