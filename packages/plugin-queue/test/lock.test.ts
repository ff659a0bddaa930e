import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { success } from '@quail/core';
import { nodeQueueFs } from '@quail/plugin-queue';
import { harness, queueFiles, type Harness } from './helpers.js';

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0).reverse()) await h.cleanup();
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('one scheduler per queue', () => {
  it('lets a second instance on the same queue only accept; the first delivers what it accepted', async () => {
    const first = await harness(() => success('first delivered'));
    open.push(first);
    expect((await readFile(join(first.root, 'queue', 'lock', 'sendmutex'), 'utf8')).trim()).toBe(String(process.pid));
    const second = await harness(() => success('second delivered'), { root: first.root });
    open.push(second);
    expect(second.logs).toContain(`alert: cannot start: qmail-send is already running (pid ${process.pid}); this instance only queues messages`);
    const r = await second.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'x\n', { kind: 'local', uid: 0 });
    await until(() => first.deliveries.length > 0);
    expect(first.deliveries.map((d) => d.delivery.messageId)).toEqual([r.id]);
    expect(second.deliveries).toEqual([]);
    await first.queue.idle();
    expect(await queueFiles(first.root)).toEqual([]);
  });

  it('picks up messages committed elsewhere on the periodic todo rescan when no notification comes', async () => {
    const quiet = { ...nodeQueueFs, watch: () => () => undefined };
    const first = await harness(() => success('ok'), { queue: { fs: quiet } });
    open.push(first);
    const second = await harness(() => success('no'), { root: first.root, queue: { fs: quiet } });
    open.push(second);
    await second.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'x\n', { kind: 'bounce' });
    await first.queue.idle();
    expect(first.deliveries).toHaveLength(0);
    await first.clock.advance(1_500_000);
    await first.queue.idle();
    expect(first.deliveries).toHaveLength(1);
  });

  it('takes over the lock of a process that died', async () => {
    const h = await harness(() => success('ok'));
    open.push(h);
    await h.server.stop();
    await writeFile(join(h.root, 'queue', 'lock', 'sendmutex'), '999999999\n');
    await h.restart();
    expect((await readFile(join(h.root, 'queue', 'lock', 'sendmutex'), 'utf8')).trim()).toBe(String(process.pid));
    await h.server.stop();
    expect(existsSync(join(h.root, 'queue', 'lock', 'sendmutex'))).toBe(false);
  });

  it('lets the accepting instance take over the deliveries when the delivering one stops', async () => {
    const first = await harness(() => success('first delivered'));
    open.push(first);
    const second = await harness(() => success('second delivered'), { root: first.root });
    open.push(second);
    await first.server.stop();
    const r = await second.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'x\n', { kind: 'local', uid: 0 });
    expect(second.deliveries).toEqual([]);
    await second.clock.advance(5_000);
    await until(() => second.deliveries.length > 0);
    expect(second.deliveries.map((d) => d.delivery.messageId)).toEqual([r.id]);
    expect(second.logs).toContain('the delivering process is gone: this instance delivers from now on');
  });

  it('treats a lock holder that is a zombie (killed, not yet reaped) as gone', async () => {
    const { spawn } = await import('node:child_process');
    // the forked child exits at once; Python never reaps it unless asked, so it stays a zombie
    const script = 'import os, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)\n';
    const parent = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
    const state = (): string => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    };
    try {
      await until(() => state() === 'Z');
      expect(state()).toBe('Z');
      const h = await harness(() => success('ok'));
      open.push(h);
      await h.server.stop();
      await writeFile(join(h.root, 'queue', 'lock', 'sendmutex'), `${pid}\n`);
      await h.restart();
      expect((await readFile(join(h.root, 'queue', 'lock', 'sendmutex'), 'utf8')).trim()).toBe(String(process.pid));
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
