import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendToMbox } from '@quail/plugin-local';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quail-mbox-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('appendToMbox', () => {
  it('truncates back to the old length and releases the lock when the message cannot be read', async () => {
    const path = join(dir, 'mbox');
    await writeFile(path, 'From a Tue Mar 05 09:04:01 2024\nold\n\n');
    const failing = {
      size: 100,
      stream: () =>
        new Readable({
          read() {
            this.push(Buffer.from('partial line\n'));
            this.destroy(new Error('read error'));
          },
        }),
    };
    await expect(appendToMbox(path, { fromLine: 'From b Tue Mar 05 09:04:02 2024\n', header: 'Delivered-To: x@y\n', source: failing })).rejects.toMatchObject({
      temporary: true,
      message: expect.stringMatching(/^Unable to write .*mbox: read error\. \(#4\.3\.0\)$/),
    });
    expect(await readFile(path, 'utf8')).toBe('From a Tue Mar 05 09:04:01 2024\nold\n\n');
    expect(await readdir(dir)).toEqual(['mbox']);
  });

  it('gives up after the lock timeout while another writer holds the lock', async () => {
    const path = join(dir, 'mbox');
    await writeFile(`${path}.lock`, '1');
    const source = { size: 2, stream: () => Readable.from([Buffer.from('x\n')]) };
    await expect(appendToMbox(path, { fromLine: 'From b x\n', header: '', source, lockTimeoutMs: 200 })).rejects.toMatchObject({
      message: 'File has been locked for 30 seconds straight. (#4.3.0)',
    });
    expect(await readdir(dir)).toEqual(['mbox.lock']);
  });
});
