import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempRoot } from '@quail/core/testing';
import { VpopmailAdmin } from '../src/index.js';
import { VpopmailAuthenticator } from '../src/auth.js';
import { VpopmailStore } from '../src/store.js';
import { openssl } from './helpers.js';

const USERS = 100_000;
let root: string;
let cleanup: () => Promise<void>;
let hash: string;

beforeAll(async () => {
  ({ root, cleanup } = await tempRoot({ me: 'mx.example.net\n' }));
  await new VpopmailAdmin(root).addDomain('big.example', 'pm');
  hash = openssl('passwd', '-1', '-salt', 'bigsalt', 'shared-pw');
  const dir = join(root, 'domains/big.example');
  const lines: string[] = [];
  for (let i = 0; i < USERS; i++) lines.push(`user${i}:${hash}:1:${i % 7 === 0 ? 2 : 0}:User ${i}:${dir}/user${i}:NOQUOTA:shared-pw`);
  await appendFile(join(dir, 'vpasswd'), lines.join('\n') + '\n');
});
afterAll(() => cleanup());

describe('a domain of 100,000 users', () => {
  it('finds users anywhere in the file and their flags', async () => {
    const store = new VpopmailStore(root);
    for (const i of [0, 1, 50_000, USERS - 1]) {
      const user = await store.lookup(`user${i}@big.example`);
      expect(user, `user${i}`).toMatchObject({ name: `user${i}`, home: join(root, `domains/big.example/user${i}`), flags: { noPop: i % 7 === 0 } });
    }
    expect(await store.lookup(`user${USERS}@big.example`)).toBeUndefined();
    expect((await store.users('big.example')).users.size).toBe(USERS + 1);
  });

  it('authenticates a user at the end of the file', async () => {
    const auth = new VpopmailAuthenticator(new VpopmailStore(root), () => true);
    const ok = await auth.authenticate({ mechanism: 'USER', service: 'pop3', username: `user${USERS - 1}@big.example`, password: 'shared-pw' });
    expect(ok).toMatchObject({ ok: true, user: { address: `user${USERS - 1}@big.example` } });
  });

  it('the index follows changes made by another writer', async () => {
    const store = new VpopmailStore(root);
    expect(await store.lookup('newcomer@big.example')).toBeUndefined();
    await new VpopmailAdmin(root).addUser('newcomer@big.example', 'pw');
    expect(await store.lookup('newcomer@big.example')).toMatchObject({ name: 'newcomer' });
    await new VpopmailAdmin(root).deleteUser('user5@big.example');
    expect(await store.lookup('user5@big.example')).toBeUndefined();
    // An edit by hand that keeps the size still shows (the file is replaced, so its inode changes).
    const file = join(root, 'domains/big.example/vpasswd');
    const text = await readFile(file, 'utf8');
    await writeFile(file + '.new', text.replace('user6:', 'userx:'));
    await rename(file + '.new', file);
    expect(await store.lookup('userx@big.example')).toMatchObject({ name: 'userx' });
    expect(await store.lookup('user6@big.example')).toBeUndefined();
  });
});
