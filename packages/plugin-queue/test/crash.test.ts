import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempRoot } from '@quail/core/testing';
import { CONTROL, queueFiles } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const KILLS = 20;

interface Run {
  lines: string[];
  exit: Promise<number | null>;
  kill(): void;
}

function runChild(mode: 'accept' | 'drain', root: string, out: string): Run {
  const child = spawn(process.execPath, [CHILD, mode, root, out], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { lines, exit, kill: () => child.kill('SIGKILL') };
}

async function until(check: () => boolean, limitMs: number): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > limitMs) throw new Error('the child did not get ready in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The message a delivery file holds is intact when its END line carries the hash of everything above it. */
function intact(stored: string): boolean {
  const body = stored.slice(stored.indexOf('\n') + 1);
  const m = /\nEND (\S+) ([0-9a-f]{64})\n$/.exec(body);
  if (!m) return false;
  const text = body.slice(0, body.length - m[0].length + 1);
  return createHash('sha256').update(text).digest('hex') === m[2] && text.startsWith(`Subject: crash test ${m[1]}\n`);
}

describe('SIGKILL crash loop', () => {
  it(`delivers every acknowledged message after ${KILLS} kills, nothing half-written`, { timeout: 150_000 }, async () => {
    expect(existsSync(BUILT), `the child imports the built package: run \`npx tsc -b packages/plugin-queue\` first`).toBe(true);
    const { root, cleanup } = await tempRoot(CONTROL);
    const out = await mkdtemp(join(tmpdir(), 'quail-crash-out-'));
    try {
      const acked = new Map<string, string>();
      for (let k = 0; k < KILLS; k++) {
        const run = runChild('accept', root, out);
        await until(() => run.lines.includes('READY'), 20_000);
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 500));
        run.kill();
        expect(await run.exit).toBeNull();
        for (const line of run.lines) {
          const m = /^ACK (\S+) (\S+)$/.exec(line);
          if (m) acked.set(m[1]!, m[2]!);
        }
      }
      const drain = runChild('drain', root, out);
      expect(await drain.exit).toBe(0);
      expect(drain.lines).toContain('DONE');

      const delivered = new Map<string, number>();
      const broken: string[] = [];
      for (const name of await readdir(out)) {
        if (name === 'tmp') continue;
        const [id, rcpt] = name.split('~');
        if (!intact(await readFile(join(out, name), 'utf8'))) broken.push(name);
        delivered.set(`${id} ${rcpt}`, (delivered.get(`${id} ${rcpt}`) ?? 0) + 1);
      }
      expect(broken).toEqual([]);
      expect(acked.size).toBeGreaterThan(KILLS);
      const missing = [...acked.keys()].flatMap((id) => ['a@example.com', 'b@remote.example'].filter((r) => !delivered.has(`${id} ${r}`)).map((r) => `${id} ${r}`));
      expect(missing).toEqual([]);
      const duplicates = [...delivered.values()].reduce((n, c) => n + c - 1, 0);
      console.log(`crash loop: ${KILLS} kills, ${acked.size} acknowledged, ${delivered.size} recipient deliveries, ${duplicates} duplicates`);
      expect(duplicates).toBeLessThanOrEqual(KILLS * 30);
      expect((await queueFiles(root)).filter((f) => !f.startsWith('quarantine/'))).toEqual([]);
      expect((await queueFiles(root)).filter((f) => f.startsWith('quarantine/'))).toEqual([]);
    } finally {
      await cleanup();
      await rm(out, { recursive: true, force: true });
    }
  });
});
