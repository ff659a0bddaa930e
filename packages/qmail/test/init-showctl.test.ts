import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertBuilt, quail, tempDir } from './helpers.js';

const COMMANDS = ['init', 'start', 'ctl', 'inject', 'sendmail', 'showctl', 'queue', 'qstat', 'vadddomain', 'vdeldomain', 'vaddaliasdomain', 'vadduser', 'vdeluser', 'vpasswd', 'vuserinfo', 'vmoduser', 'vsetuserquota', 'valias', 'vdominfo', 'demo'];

beforeAll(assertBuilt);

describe('quail --help', () => {
  it('lists every command', async () => {
    const r = await quail(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it.each(COMMANDS)('%s --help prints usage and examples', async (c) => {
    const r = await quail([c, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: quail ${c}`));
    expect(r.stdout).toMatch(/\nexamples:\n {2}\S/);
  });

  it('refuses an unknown command in one line with a non-zero exit', async () => {
    const r = await quail(['frobnicate']);
    expect(r.code).toBe(100);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it('refuses an unknown option in one line', async () => {
    const r = await quail(['showctl', '--bogus']);
    expect(r.code).toBe(100);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^quail showctl: Unknown option '--bogus'/)]);
  });
});

describe('quail init', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it("writes qmail's defaults, the listeners and a self-signed certificate", async () => {
    const root = join(dir, 'root');
    const r = await quail(['init', root, '--me', 'mx.example.test', '--smtp', '127.0.0.1:2525', '--submission', '127.0.0.1:2587', '--pop3', '[::1]:2110']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const d of ['control', 'queue', 'domains', 'alias', 'log', 'users']) expect((await stat(join(root, d))).isDirectory()).toBe(true);
    const control = (f: string) => readFile(join(root, 'control', f), 'utf8');
    expect(await control('me')).toBe('mx.example.test\n');
    expect(await control('rcpthosts')).toBe('mx.example.test\n');
    expect(await control('locals')).toBe('mx.example.test\n');
    expect((await control('plugins')).split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      '@quail/plugin-smtpd',
      '@quail/plugin-pop3',
      '@quail/plugin-queue',
      '@quail/plugin-vpopmail',
      '@quail/plugin-local',
      '@quail/plugin-remote',
      '@quail/plugin-maildir',
    ]);
    expect(await control('smtpd.listen')).toContain('127.0.0.1:2525');
    expect(await control('pop3d.listen')).toBe('[::1]:2110\n');
    for (const a of ['postmaster', 'root', 'mailer-daemon']) expect(await readFile(join(root, 'alias', `.qmail-${a}`), 'utf8')).toBe('./Maildir/\n');

    const pemPath = join(root, 'control', 'servercert.pem');
    expect((await stat(pemPath)).mode & 0o777).toBe(0o600);
    const pem = await readFile(pemPath, 'utf8');
    const cert = new X509Certificate(pem);
    const key = createPrivateKey(pem);
    expect(cert.subject).toContain('CN=mx.example.test');
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(cert.checkHost('mx.example.test')).toBe('mx.example.test');
  });

  it('is idempotent and never overwrites a file the admin changed', async () => {
    const root = join(dir, 'root');
    expect((await quail(['init', root, '--me', 'one.example'])).code).toBe(0);
    const pem = await readFile(join(root, 'control', 'servercert.pem'), 'utf8');
    await writeFile(join(root, 'control', 'rcpthosts'), 'admin.example\n.admin.example\n');
    const again = await quail(['init', root, '--me', 'two.example']);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/^created control/m);
    expect(again.stdout).toMatch(/^kept control\/rcpthosts$/m);
    expect(await readFile(join(root, 'control', 'rcpthosts'), 'utf8')).toBe('admin.example\n.admin.example\n');
    expect(await readFile(join(root, 'control', 'me'), 'utf8')).toBe('one.example\n');
    expect(await readFile(join(root, 'control', 'servercert.pem'), 'utf8')).toBe(pem);
  });

  it('refuses a malformed listener address in one line', async () => {
    const r = await quail(['init', join(dir, 'root'), '--smtp', 'localhost:99999x']);
    expect(r.code).toBe(100);
    expect(r.stderr).toMatch(/^quail init: --smtp: expected host:port, got "localhost:99999x"\n$/);
  });

  it('refuses an account that does not exist', async () => {
    const r = await quail(['init', join(dir, 'root'), '--user', 'no-such-user-here']);
    expect(r.code).toBe(100);
    expect(r.stderr).toMatch(/^quail init: no such account: no-such-user-here/);
  });
});

describe('quail showctl', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('shows effective values and marks defaults', async () => {
    const root = join(dir, 'root');
    await quail(['init', root, '--me', 'mx.example.test']);
    await writeFile(join(root, 'control', 'databytes'), '10000000\n');
    await writeFile(join(root, 'control', 'mystery'), 'what\n');
    const r = await quail(['showctl', '--root', root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^me: this host's fully qualified name .*\n {2}mx\.example\.test$/m);
    expect(r.stdout).toMatch(/^databytes: largest message .*\n {2}10000000$/m);
    expect(r.stdout).toMatch(/^queuelifetime: \(Default\.\) .*\n {2}604800$/m);
    expect(r.stdout).toMatch(/^bouncehost: \(Default\.\) .*\n {2}mx\.example\.test$/m);
    expect(r.stdout).toMatch(/^servercert\.pem: .*\n {2}\(certificate and key, not shown\)$/m);
    expect(r.stdout).not.toContain('PRIVATE KEY');
    expect(r.stdout).toMatch(/^mystery: I have no idea what this file does\.$/m);
  });

  it('names file and line of a broken control file, with a non-zero exit', async () => {
    const root = join(dir, 'root');
    await quail(['init', root, '--me', 'mx.example.test']);
    await writeFile(join(root, 'control', 'queuelifetime'), '# comment\nsoon\n');
    const r = await quail(['showctl', '--root', root]);
    expect(r.code).toBe(100);
    expect(r.stderr).toBe('quail showctl: control/queuelifetime:2: not an integer: "soon"\n');
  });
});
