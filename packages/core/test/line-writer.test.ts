import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempRoot } from '@quail/core/testing';
import { LineWriter } from '../src/line-writer.js';

const dist = resolve(import.meta.dirname, '..', 'dist');

interface ChildRun {
  stdout: string;
  messages: unknown[];
  code: number | null;
}

/** Runs an ES module script in a child whose stdout is a pipe; `readAfter` delays reading it until the child says so. */
async function runChild(script: string, readAfter?: string): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const stdout = child.stdout!;
  const messages: unknown[] = [];
  const chunks: Buffer[] = [];
  if (readAfter) stdout.pause();
  child.on('message', (m) => {
    messages.push(m);
    if (m === readAfter) stdout.resume();
  });
  stdout.on('data', (c: Buffer) => chunks.push(c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { stdout: Buffer.concat(chunks).toString(), messages, code };
}

describe('LineWriter', () => {
  it('writes every line, in order, after the current turn of the event loop', async () => {
    const root = await tempRoot({});
    const file = join(root.root, 'log');
    const fd = openSync(file, 'w');
    try {
      const writer = new LineWriter(fd);
      for (let i = 0; i < 5000; i++) writer.write(`line ${i}\n`);
      expect(readFileSync(file, 'utf8')).toBe('');
      expect(writer.pendingBytes).toBeGreaterThan(0);
      const written = (): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);
      for (let i = 0; i < 500 && written().length < 5000; i++) await new Promise((r) => setTimeout(r, 10));
      expect(writer.pendingBytes).toBe(0);
      const lines = written();
      expect(lines).toEqual(Array.from({ length: 5000 }, (_, i) => `line ${i}`));
    } finally {
      closeSync(fd);
      await root.cleanup();
    }
  });

  it('keeps the event loop running while the reader of a full pipe does not read', async () => {
    const script = `
      import { createLogger } from ${JSON.stringify(join(dist, 'index.js'))};
      const log = createLogger();
      for (let i = 0; i < 20000; i++) log.info({ i }, 'a line of about a hundred bytes to fill the pipe quickly, number');
      setTimeout(() => process.send('loop still runs', () => process.disconnect()), 0);
    `;
    const run = await runChild(script, 'loop still runs');
    expect(run.messages).toEqual(['loop still runs']);
    const lines = run.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(20000);
    expect(lines[19999]).toMatch(/ info a line of about .* number i=19999$/);
  });

  it('writes what is still waiting when the process exits', async () => {
    const script = `
      import { createLogger } from ${JSON.stringify(join(dist, 'index.js'))};
      const log = createLogger();
      for (let i = 0; i < 1000; i++) log.info({ i }, 'before exit');
      process.exit(3);
    `;
    const run = await runChild(script);
    expect(run.code).toBe(3);
    expect(run.stdout.split('\n').filter(Boolean)).toHaveLength(1000);
  });

  it('drops lines beyond its high-water mark and says how many when writing resumes', async () => {
    const script = `
      import { LineWriter } from ${JSON.stringify(join(dist, 'line-writer.js'))};
      const writer = new LineWriter(1, { highWater: 200000 });
      for (let i = 0; i < 10000; i++) writer.write('x'.repeat(99) + '\\n');
      setTimeout(() => process.send('filled', () => process.disconnect()), 0);
    `;
    const run = await runChild(script, 'filled');
    const lines = run.stdout.split('\n').filter(Boolean);
    const dropped = Number(/warn (\d+) log lines dropped: the log reader did not keep up$/.exec(lines.at(-1) ?? '')?.[1]);
    expect(dropped).toBeGreaterThan(0);
    expect(lines.length - 1 + dropped).toBe(10000);
  });
});
