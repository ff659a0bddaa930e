import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempRoot } from '@quail/core/testing';
import { RawClient } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/cluster-server.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../dist/index.js', import.meta.url));

let primary: ChildProcess | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  if (primary && primary.exitCode === null) {
    const exited = new Promise((r) => primary!.once('exit', r));
    primary.kill('SIGTERM');
    await exited;
  }
  primary = undefined;
  for (const c of RawClient.all.splice(0)) c.close();
  await cleanup?.();
  cleanup = undefined;
});

/** One SMTP transaction on a new connection; resolves with the reply to the final dot. */
async function sendOne(port: number, n: number): Promise<string | null> {
  const c = await RawClient.open(port);
  await c.reply();
  await c.command('HELO client');
  await c.command('MAIL FROM:<a@example.net>');
  await c.command('RCPT TO:<u@mx.example.org>');
  await c.command('DATA');
  c.write(`Subject: ${n}\r\n\r\nmessage ${n}\r\n.\r\n`);
  const r = await c.reply();
  await c.command('QUIT');
  c.close();
  return r;
}

describe('several processes on one port (node:cluster)', () => {
  it('serves one address from two worker processes, each accepting into the queue', { timeout: 60_000 }, async () => {
    expect(existsSync(BUILT), 'the fixture imports the built package: run `npx tsc -b packages/plugin-smtpd` first').toBe(true);
    const made = await tempRoot({ me: 'mx.example.org', 'smtpd.listen': '127.0.0.1:0', 'smtpd.maxperip': '0' });
    cleanup = made.cleanup;
    await mkdir(join(made.root, 'spool'));
    primary = spawn(process.execPath, [FIXTURE, made.root, '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      primary!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^PORT (\d+)$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      primary!.once('exit', (code) => reject(new Error(`the cluster primary exited (${code}) before its workers listened: ${out}`)));
    });
    const replies = [];
    for (let n = 0; n < 12; n++) replies.push(await sendOne(port, n));
    expect(replies.every((r) => r !== null && /^250 ok \d+ qp \d+$/.test(r))).toBe(true);
    const files = await readdir(join(made.root, 'spool'));
    expect(files.filter((f) => f.endsWith('.env'))).toHaveLength(12);
    const pids = new Set(files.filter((f) => f.startsWith('served-')).map((f) => f.split('-')[1]));
    expect(pids.size).toBe(2);
    expect(pids.has(String(primary.pid))).toBe(false);
  });
});
