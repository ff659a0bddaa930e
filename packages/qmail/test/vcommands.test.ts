import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, quail, tempDir } from './helpers.js';

describe('the v* commands of the quail command', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  const v = (...args: string[]) => quail([args[0]!, '--root', root, ...args.slice(1)]);

  beforeAll(async () => {
    assertBuilt();
    ({ dir, cleanup } = await tempDir());
    root = join(dir, 'r');
    await quail(['init', root, '--me', 'mx.test']);
  });
  afterAll(() => cleanup());

  it('vadddomain -r prints the random postmaster password and lists the domain in rcpthosts and virtualdomains', async () => {
    const r = await v('vadddomain', '-r', 'example.com');
    expect(r.stderr).toBe('');
    const password = /^Random password: (\S+)$/m.exec(r.stdout)![1]!;
    expect(await readFile(join(root, 'control', 'rcpthosts'), 'utf8')).toBe('mx.test\nexample.com\n');
    expect(await readFile(join(root, 'control', 'virtualdomains'), 'utf8')).toMatch(/^example\.com:example\.com$/m);
    const info = await v('vuserinfo', 'postmaster@example.com');
    expect(info.stdout).toMatch(new RegExp(`^clear passwd: ${password}$`, 'm'));
  });

  it('vaddaliasdomain takes the domains in either order', async () => {
    expect((await v('vaddaliasdomain', 'alias.org', 'example.com')).code).toBe(0);
    expect((await v('vaddaliasdomain', 'example.com', 'alias.net')).code).toBe(0);
    const vd = await readFile(join(root, 'control', 'virtualdomains'), 'utf8');
    expect(vd).toMatch(/^alias\.org:example\.com$/m);
    expect(vd).toMatch(/^alias\.net:example\.com$/m);
    expect((await v('vdominfo', 'alias.org')).stdout).toMatch(/^domain: alias\.org \(alias of example\.com\)$/m);
  });

  it('vadduser needs a password or -r, and refuses an unknown domain in one line', async () => {
    const none = await v('vadduser', 'joe@example.com');
    expect(none.code).toBe(100);
    expect(none.stderr).toBe('quail vadduser: give a password, or -r for a random one\n');
    const bad = await v('vadduser', 'joe@nowhere.example', 'pw');
    expect(bad.code).toBe(100);
    expect(bad.stderr).toBe('quail vadduser: Domain does not exist: nowhere.example\n');
    const ok = await v('vadduser', '-q', '5M', '-c', 'Joe Bloggs', 'joe@example.com', 'Secret-1');
    expect(ok.code).toBe(0);
    const info = await v('vuserinfo', 'joe@example.com');
    expect(info.stdout).toMatch(/^comment\/gecos: Joe Bloggs$/m);
    expect(info.stdout).toMatch(/^quota: +5242880S$/m);
    expect(existsSync(join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new'))).toBe(true);
  });

  it('vmoduser sets and clears flag bits, vsetuserquota and vpasswd change the account', async () => {
    expect((await v('vmoduser', '-p', '-b', 'joe@example.com')).code).toBe(0);
    expect((await v('vuserinfo', 'joe@example.com')).stdout).toMatch(/^flags: +18$/m);
    expect((await v('vmoduser', '-x', 'joe@example.com')).code).toBe(0);
    expect((await v('vuserinfo', 'joe@example.com')).stdout).toMatch(/^flags: +0$/m);
    expect((await v('vmoduser', 'joe@example.com')).stderr).toBe('quail vmoduser: nothing to change (see --help)\n');
    expect((await v('vsetuserquota', 'joe@example.com', 'NOQUOTA')).code).toBe(0);
    expect((await v('vuserinfo', 'joe@example.com')).stdout).toMatch(/^quota: +NOQUOTA$/m);
    expect((await v('vpasswd', 'joe@example.com', 'Secret-2')).code).toBe(0);
    expect((await v('vuserinfo', 'joe@example.com')).stdout).toMatch(/^clear passwd: Secret-2$/m);
    const r = await v('vpasswd', '-r', 'joe@example.com');
    const pw = /^Random password: (\S+)$/m.exec(r.stdout)![1]!;
    expect((await v('vuserinfo', 'joe@example.com')).stdout).toMatch(new RegExp(`^clear passwd: ${pw}$`, 'm'));
  });

  it('vuserinfo -D lists every account of the domain', async () => {
    const r = await v('vuserinfo', '-D', 'example.com');
    expect(r.stdout.match(/^name: +\S+$/gm)).toEqual([expect.stringMatching(/postmaster/), expect.stringMatching(/joe/)]);
  });

  it('valias adds, lists and deletes forwards', async () => {
    expect((await v('valias', '-i', 'fred@example.net', 'info@example.com')).code).toBe(0);
    expect((await v('valias', '-i', 'bob@example.net', 'info@example.com')).code).toBe(0);
    expect((await v('valias', '-s', 'example.com')).stdout).toBe('info@example.com -> fred@example.net\ninfo@example.com -> bob@example.net\n');
    expect((await v('valias', '-d', 'info@example.com', 'fred@example.net')).code).toBe(0);
    expect((await v('valias', '-s', 'info@example.com')).stdout).toBe('info@example.com -> bob@example.net\n');
    expect((await v('valias', '-s', '-d', 'info@example.com')).stderr).toBe('quail valias: give exactly one of -s, -i target, -d\n');
  });

  it('refuses hostile names in one line without touching the files', async () => {
    const before = await readFile(join(root, 'domains', 'example.com', 'vpasswd'), 'utf8');
    for (const bad of ['../../etc@example.com', 'a:b@example.com', 'a\nb@example.com']) {
      const r = await v('vadduser', bad, 'pw');
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(await readFile(join(root, 'domains', 'example.com', 'vpasswd'), 'utf8')).toBe(before);
  });

  it('vdeluser and vdeldomain remove accounts and domains (aliases need -f)', async () => {
    expect((await v('vdeluser', 'joe@example.com')).code).toBe(0);
    const gone = await v('vuserinfo', 'joe@example.com');
    expect(gone.code).toBe(100);
    expect(gone.stderr).toBe('quail vuserinfo: no such user joe@example.com\n');
    const refused = await v('vdeldomain', 'example.com');
    expect(refused.code).toBe(100);
    expect(refused.stderr).toMatch(/^quail vdeldomain: Alias domains exist: alias\.(org|net)/);
    expect((await v('vdeldomain', '-f', 'example.com')).code).toBe(0);
    expect(await readFile(join(root, 'control', 'rcpthosts'), 'utf8')).toBe('mx.test\n');
    expect(existsSync(join(root, 'domains', 'example.com'))).toBe(false);
  });
});
