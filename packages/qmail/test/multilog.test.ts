import { readFile, readdir, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MultilogWriter } from '../src/daemon/multilog.js';
import { parseTai64n, tai64n } from '../src/tai64n.js';
import { tempDir } from './helpers.js';

describe('tai64n', () => {
  it('labels UNIX time as daemontools does (2^62 + t + 10, nanoseconds = micro*1000 + 500)', () => {
    expect(tai64n(1700000000_000)).toBe('@400000006553f10a000001f4');
    expect(tai64n(1700000000_250)).toBe(`@400000006553f10a${(250_000_500).toString(16).padStart(8, '0')}`);
    expect(tai64n(0)).toBe('@400000000000000a000001f4');
  });

  it('reads labels back and refuses text that is not one', () => {
    expect(parseTai64n('@400000006553f10a0ee6b4f4')?.getTime()).toBe(1700000000_250);
    expect(parseTai64n(tai64n(1234567890_123))?.getTime()).toBe(1234567890_123);
    for (const bad of ['', '@4000', '400000006553f10a0ee6b4f4', '@400000006553F10A0EE6B4F4', '@400000006553f10affffffff', '@400000006553f10a0ee6b4f4\n']) {
      expect(parseTai64n(bad)).toBeUndefined();
    }
  });
});

describe('MultilogWriter', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('stamps every line with @ and 24 hex digits, as multilog t does', async () => {
    let now = 1700000000_000;
    const log = new MultilogWriter({ dir: join(dir, 'log'), now: () => now++ });
    log.write('new msg 1');
    log.write('end msg 1\n');
    log.close();
    const text = await readFile(join(dir, 'log', 'current'), 'utf8');
    expect(text).toBe('@400000006553f10a000001f4 new msg 1\n@400000006553f10a000f4434 end msg 1\n');
    expect((await stat(join(dir, 'log', 'current'))).mode & 0o777).toBe(0o744);
  });

  it('rotates current into @<tai64n>.s at the size limit and keeps only the newest files', async () => {
    const logDir = join(dir, 'log');
    const log = new MultilogWriter({ dir: logDir, size: 4096, count: 3, stamp: 'none' });
    const line = `${'x'.repeat(99)}\n`;
    for (let i = 0; i < 300; i++) log.write(`${String(i).padStart(3, '0')}${line.slice(3)}`);
    const rotated = log.rotated();
    log.close();
    expect(rotated).toHaveLength(3);
    for (const f of rotated) {
      expect(f).toMatch(/^@4000[0-9a-f]{20}\.s$/);
      const info = await stat(join(logDir, f));
      expect(info.size).toBeLessThanOrEqual(4096);
      expect(info.mode & 0o777).toBe(0o744);
    }
    expect([...rotated].sort()).toEqual(rotated);
    const all = (await Promise.all([...rotated, 'current'].map((f) => readFile(join(logDir, f), 'utf8')))).join('');
    const numbers = all.trim().split('\n').map((l) => Number(l.slice(0, 3)));
    expect(numbers.at(-1)).toBe(299);
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    expect(all.split('\n').every((l) => l === '' || l.length === 99)).toBe(true);
  });

  it('splits a line longer than the size limit over files without losing bytes', async () => {
    const logDir = join(dir, 'log');
    const log = new MultilogWriter({ dir: logDir, size: 4096, count: 10, stamp: 'none' });
    const big = 'y'.repeat(10_000);
    log.write(big);
    log.close();
    const files = [...log.rotated(), 'current'];
    const all = (await Promise.all(files.map((f) => readFile(join(logDir, f), 'utf8')))).join('');
    expect(all).toBe(`${big}\n`);
  });

  it('renames a current left by a crash to .u and a finished one to .s at start', async () => {
    const logDir = join(dir, 'log');
    await mkdir(logDir);
    await writeFile(join(logDir, 'current'), 'half a line');
    await chmod(join(logDir, 'current'), 0o644);
    new MultilogWriter({ dir: logDir }).close();
    let names = await readdir(logDir);
    expect(names.filter((n) => n.endsWith('.u'))).toHaveLength(1);
    await writeFile(join(logDir, 'current'), 'a finished line\n');
    await chmod(join(logDir, 'current'), 0o744);
    new MultilogWriter({ dir: logDir }).close();
    names = await readdir(logDir);
    expect(names.filter((n) => n.endsWith('.s'))).toHaveLength(1);
  });

  it('refuses sizes and counts multilog refuses', () => {
    expect(() => new MultilogWriter({ dir: join(dir, 'a'), size: 100 })).toThrow(/4096 to 16777215/);
    expect(() => new MultilogWriter({ dir: join(dir, 'b'), count: 1 })).toThrow(/at least 2/);
  });
});
