import { execFile, execFileSync, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tempRoot } from '@quail/core/testing';
import { VpopmailAdmin } from '../src/index.js';
import { withFileLock } from '../src/lock.js';
import { parseVpasswd } from '../src/vpasswd.js';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

let root: string;
let cleanup: () => Promise<void>;

/** Child processes run the compiled package, so build it first (incremental, quick when up to date). */
beforeAll(() => {
  execFileSync(process.execPath, [join(pkg, '../../node_modules/typescript/bin/tsc'), '-b', pkg], { stdio: 'inherit' });
});

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot({ me: 'mx.example.net\n' }));
  await new VpopmailAdmin(root).addDomain('example.com', 'pm');
});
afterEach(() => cleanup());

const users = async () => parseVpasswd(await readFile(join(root, 'domains/example.com/vpasswd'), 'utf8'), 'vpasswd');

function childAdds(names: string[]): Promise<unknown> {
  const script = `
    import { VpopmailAdmin } from ${JSON.stringify(join(pkg, 'dist/index.js'))};
    const admin = new VpopmailAdmin(process.argv[1]);
    await Promise.all(process.argv.slice(2).map((n) => admin.addUser(n + '@example.com', 'pw-' + n)));
  `;
  return run(process.execPath, ['--input-type=module', '-e', script, root, ...names]);
}

describe('concurrent writers', () => {
  it('50 concurrent addUser calls in one process lose no line', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `user${i}`);
    const admin = new VpopmailAdmin(root);
    await Promise.all(names.map((n) => admin.addUser(`${n}@example.com`, `pw-${n}`)));
    const { users: all, warnings } = await users();
    expect(warnings).toEqual([]);
    expect([...all.keys()].sort()).toEqual(['postmaster', ...names].sort());
    expect(all.get('user17')!.clear).toBe('pw-user17');
  });

  it('addUser from 5 processes and this one at the same time loses no line', async () => {
    const batches = Array.from({ length: 6 }, (_, p) => Array.from({ length: 10 }, (_, i) => `p${p}u${i}`));
    const admin = new VpopmailAdmin(root);
    await Promise.all([
      ...batches.slice(0, 5).map((names) => childAdds(names)),
      ...batches[5]!.map((n) => admin.addUser(`${n}@example.com`, `pw-${n}`)),
    ]);
    const { users: all, warnings } = await users();
    expect(warnings).toEqual([]);
    expect(all.size).toBe(61);
    for (const n of batches.flat()) expect(all.get(n)?.clear, n).toBe(`pw-${n}`);
  });

  it('mixed writers (add, password, quota, delete) keep every other line intact', async () => {
    const admin = new VpopmailAdmin(root);
    await Promise.all(Array.from({ length: 20 }, (_, i) => admin.addUser(`keep${i}@example.com`, `k${i}`)));
    await Promise.all([
      childAdds(Array.from({ length: 10 }, (_, i) => `new${i}`)),
      ...Array.from({ length: 10 }, (_, i) => admin.setQuota(`keep${i}@example.com`, `${i + 1}M`)),
      ...Array.from({ length: 5 }, (_, i) => admin.deleteUser(`keep${i + 10}@example.com`)),
      ...Array.from({ length: 5 }, (_, i) => admin.setPassword(`keep${i + 15}@example.com`, `changed${i}`)),
    ]);
    const { users: all } = await users();
    expect(all.size).toBe(1 + 20 - 5 + 10);
    expect(all.get('keep3')!.quota).toBe(`${4 * 1024 * 1024}S`);
    expect(all.get('keep16')!.clear).toBe('changed1');
    expect(all.has('keep12')).toBe(false);
  });
});

describe('the lock file', () => {
  it('a lock left by a process that is gone is broken', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid!;
    await new Promise((r) => child.on('exit', r));
    await writeFile(join(root, 'domains/example.com/.vpasswd.quail-lock'), `${pid} ${hostname()} deadbeef\n`);
    await new VpopmailAdmin(root).addUser('after@example.com', 'pw');
    expect((await users()).users.has('after')).toBe(true);
  });

  it('a lock held by a live process is respected until the timeout', async () => {
    const path = join(root, 'held.lock');
    await writeFile(path, `${process.ppid} ${hostname()} cafe\n`);
    let ran = false;
    await expect(withFileLock(path, async () => void (ran = true), { timeoutMs: 100 })).rejects.toThrow(/stays locked by pid/);
    expect(ran).toBe(false);
    expect(await readFile(path, 'utf8')).toBe(`${process.ppid} ${hostname()} cafe\n`);
  });

  it('callers in one process are serialised and a failing holder releases the lock', async () => {
    const path = join(root, 'serial.lock');
    const order: string[] = [];
    const first = withFileLock(path, async () => {
      order.push('a-start');
      await new Promise((r) => setTimeout(r, 20));
      order.push('a-end');
      throw new Error('boom');
    });
    const second = withFileLock(path, async () => void order.push('b'));
    await expect(first).rejects.toThrow('boom');
    await second;
    expect(order).toEqual(['a-start', 'a-end', 'b']);
  });
});
