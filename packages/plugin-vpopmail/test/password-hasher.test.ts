import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, QuailError } from '@quail/core';
import { PasswordHasher } from '../src/index.js';
import { hashLibraries } from '../src/hash-worker.js';
import { hashPassword, type HashScheme } from '../src/passwords.js';
import { openssl, python, pythonCrypt } from './helpers.js';

const open: PasswordHasher[] = [];
function hasher(options: ConstructorParameters<typeof PasswordHasher>[0] = {}): PasswordHasher {
  const made = new PasswordHasher(options);
  open.push(made);
  return made;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});

function isTemporary(err: unknown): boolean {
  return err instanceof QuailError && err.code === ErrorCodes.TEMPORARY;
}

describe('PasswordHasher on worker threads', () => {
  it('starts only when first used and checks hashes made by openssl and Python crypt', async () => {
    const h = hasher();
    expect(h.mode).toBe('idle');
    const [des, rounds] = python("import crypt, sys; print(crypt.crypt(sys.argv[1], 'Xy')); print(crypt.crypt(sys.argv[1], '$6$rounds=1500$abcdefghijklmnop'))", 'contraseña');
    const hashes = [openssl('passwd', '-1', 'contraseña'), openssl('passwd', '-5', 'contraseña'), openssl('passwd', '-6', 'contraseña'), des!, rounds!];
    for (const hash of hashes) {
      expect(await h.verify('contraseña', hash), hash).toBe(true);
      expect(await h.verify('Contraseña', hash), hash).toBe(false);
    }
    expect(h.mode).toBe('workers');
  });

  it('warm() starts the workers ahead of the first check, which still answers right', async () => {
    const h = hasher({ size: 2 });
    await h.warm();
    expect(h.mode).toBe('workers');
    expect(h.waiting).toBe(0);
    const stored = openssl('passwd', '-6', 'warm-secret');
    expect(await h.verify('warm-secret', stored)).toBe(true);
    expect(await h.verify('cold-secret', stored)).toBe(false);
  });

  it('makes hashes of every scheme that Python crypt agrees with, SHA-512 by default', async () => {
    const h = hasher();
    expect(await h.hash('contraseña')).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    for (const scheme of ['sha512', 'sha256', 'md5', 'des'] as HashScheme[]) {
      const hash = await h.hash('contraseña', scheme);
      expect(pythonCrypt('contraseña', hash), scheme).toBe(hash);
    }
    expect(h.mode).toBe('workers');
  });

  it('unknown or damaged hashes never match, including settings the library refuses', async () => {
    const h = hasher();
    for (const hash of ['', '*', '!', '$2y$10$abcdefghijklmnopqrstuv', '$6$', '$1$$', 'plaintext', '$6$rounds=x$salt$hash']) {
      expect(await h.verify('', hash), hash).toBe(false);
      expect(await h.verify('plaintext', hash), hash).toBe(false);
    }
    // The worker that saw the refused setting still answers.
    const good = hashPassword('ok', 'sha256');
    expect(await h.verify('ok', good)).toBe(true);
  });

  it('refuses checks at once with QUAIL_E_TEMPORARY when more than maxWaiting wait, and recovers', async () => {
    const h = hasher({ size: 1, maxWaiting: 4 });
    const hash = openssl('passwd', '-6', 'right');
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => h.verify(`wrong-${i}`, hash)));
    // One running on the single worker, four waiting; the other fifteen refused without hashing.
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<boolean>).value)).toEqual([false, false, false, false, false]);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Error);
    expect(refused).toHaveLength(15);
    expect(refused.every(isTemporary)).toBe(true);
    expect(refused[0]!.message).toMatch(/too many password checks waiting/);
    expect(results.slice(0, 5).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(h.waiting).toBe(0);
    expect(await h.verify('right', hash)).toBe(true);
  });

  it('close() fails running and waiting checks as temporary; the next check starts new workers', async () => {
    const h = hasher({ size: 1, maxWaiting: 8 });
    const hash = openssl('passwd', '-6', 'right');
    const pending = Promise.allSettled(Array.from({ length: 4 }, () => h.verify('right', hash)));
    await h.close();
    const settled = await pending;
    expect(settled.every((r) => r.status === 'rejected' && isTemporary(r.reason))).toBe(true);
    expect(h.mode).toBe('idle');
    expect(await h.verify('right', hash)).toBe(true);
    expect(h.mode).toBe('workers');
  });

  it('a worker that dies fails only its own check as temporary and is replaced', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quail-hasher-'));
    try {
      const real = hashLibraries();
      // unixcrypt as the workers load it, except that the password "crash" ends the worker thread.
      const crashing = join(dir, 'crashing-sha.mjs');
      await writeFile(crashing, `import { encrypt as real } from ${JSON.stringify(real.sha)};\nexport function encrypt(key, setting) {\n  if (key === 'crash') process.exit(3);\n  return real(key, setting);\n}\n`);
      const h = hasher({ size: 1, libraries: { ...real, sha: pathToFileURL(crashing).href } });
      const hash = openssl('passwd', '-6', 'right');
      const [crashed, after] = await Promise.allSettled([h.verify('crash', hash), h.verify('right', hash)]);
      expect(crashed.status).toBe('rejected');
      expect(isTemporary((crashed as PromiseRejectedResult).reason)).toBe(true);
      expect(((crashed as PromiseRejectedResult).reason as Error).message).toMatch(/hash worker stopped \(exit code 3\)/);
      // The check waiting behind it went to the replacement worker.
      expect(after).toEqual({ status: 'fulfilled', value: true });
      expect(await h.verify('crash', hash).catch((err: unknown) => isTemporary(err))).toBe(true);
      expect(await h.verify('wrong', hash)).toBe(false);
      expect(h.mode).toBe('workers');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('falls back to the calling thread, told once, when the workers cannot load the hashing libraries', async () => {
    const warnings: string[] = [];
    const missing = pathToFileURL('/nonexistent/quail/hashing-library.js').href;
    const h = hasher({ warn: (m) => warnings.push(m), libraries: { sha: missing, md5: missing, des: missing } });
    const hash = openssl('passwd', '-6', 'right');
    // These are queued for the workers when they fail to start; they are then answered on this thread.
    const first = await Promise.all([h.verify('right', hash), h.verify('wrong', hash), h.verify('right', hash)]);
    expect(first).toEqual([true, false, true]);
    expect(h.mode).toBe('sync');
    expect(await h.verify('right', hash)).toBe(true);
    const md5 = await h.hash('pw', 'md5');
    expect(pythonCrypt('pw', md5)).toBe(md5);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/password checks run on the main thread: the hash workers could not start \(.*hashing-library/);
  });
});
