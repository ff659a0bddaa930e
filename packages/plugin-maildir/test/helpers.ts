import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { MessageSource } from '@quail/core';

export const run = promisify(execFile);

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'quail-maildir-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A source that hands out its bytes in chunks of `size` (1: every byte alone, to test chunk edges). */
export function chunkedSource(data: Buffer | string, size: number): MessageSource {
  const buf = Buffer.from(data);
  return {
    size: buf.length,
    stream: () =>
      Readable.from(
        (function* () {
          for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
        })(),
        { objectMode: false },
      ),
  };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(parts);
}

/** Runs a Python 3 program with arguments and parses its JSON output. */
export async function python<T>(program: string, ...args: string[]): Promise<T> {
  const { stdout } = await run('python3', ['-c', program, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as T;
}
