import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deferral, success } from '@quail/core';
import { nodeQueueFs, type QueueFs } from '@quail/plugin-queue';
import { CONTROL, harness, queueFiles, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

const split = (id: string) => String(Number.parseInt(id.slice(-6), 16) % 23);

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC', errno: -28 });

/** A QueueFs that fails the `nth` call of `op` (counting from 1) with ENOSPC while `armed`. */
function faulty(op: keyof QueueFs, nth: number) {
  const state = { armed: false, calls: 0 };
  const fs = { ...nodeQueueFs } as Record<string, unknown>;
  const real = nodeQueueFs[op] as (...a: unknown[]) => Promise<unknown>;
  fs[op] = (...args: unknown[]) => {
    if (state.armed && ++state.calls === nth) return Promise.reject(enospc());
    return real(...args);
  };
  return { fs: fs as unknown as QueueFs, state };
}

/** Every step of acceptance, as the n-th call of a QueueFs operation after create(). */
const STEPS: Array<[keyof QueueFs, number, string]> = [
  ['write', 1, 'writing the body'],
  ['sync', 1, 'fsync of the body'],
  ['rename', 1, 'rename tmp -> mess'],
  ['open', 1, 'creating the envelope in tmp/'],
  ['write', 2, 'writing the envelope'],
  ['sync', 2, 'fsync of the envelope'],
  ['syncDir', 1, 'fsync of mess/<s>'],
  ['rename', 2, 'rename envelope -> todo'],
  ['syncDir', 2, 'fsync of todo/'],
];

describe('I/O faults during acceptance', () => {
  it.each(STEPS)('%s #%d (%s) fails the commit temporarily and leaves nothing a restart would deliver', async (op, nth) => {
    const fault = faulty(op, nth);
    h = await harness(() => success('delivered'), { queue: { fs: fault.fs } });
    const writer = await h.queue.create({ kind: 'network', remoteAddress: '192.0.2.1' });
    fault.state.armed = true;
    writer.stream.on('error', () => undefined);
    writer.stream.end('Subject: doomed\n\nbody\n');
    const attempt = writer.commit({ sender: 'a@example.org', recipients: ['joe@example.com'] });
    await expect(attempt).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY', message: expect.stringMatching(/^qq (write error or disk full|trouble creating files in queue) \(#4\.3\.0\)/) });
    fault.state.armed = false;
    await writer.abort();
    expect(await queueFiles(h.root)).toEqual([]);
    await h.restart();
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(0);
    const ok = await h.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'fine\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.deliveries.map((d) => d.delivery.messageId)).toEqual([ok.id]);
  });

  it('keeps a deferred message whose info/ could not be written for lack of space in todo/, and retries after 123 seconds', async () => {
    // renames: the body into mess/, the envelope into todo/, then the info/ record of the deferred message
    const fault = faulty('rename', 3);
    let attempts = 0;
    h = await harness(() => (++attempts === 1 ? deferral('try later') : success('delivered')), { queue: { fs: fault.fs } });
    fault.state.armed = true;
    const r = await h.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
    expect(h.logs).toContain(`warning: trouble preprocessing message ${r.id}: ENOSPC: no space left on device; will try again later`);
    expect(await h.queue.stat()).toMatchObject({ messages: 1, unprocessed: 0, pending: { local: 1 } });
    expect(await queueFiles(h.root)).toEqual([`mess/${split(r.id)}/${r.id}`, `state/${split(r.id)}/${r.id}`, `todo/${r.id}`]);
    await h.clock.advance(122_000);
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
    await h.clock.advance(1_000);
    await h.queue.idle();
    expect(h.deliveries.map((d) => d.delivery.messageId)).toEqual([r.id, r.id]);
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('reports a failing body stream (qq read error) as temporary', async () => {
    h = await harness(() => success('x'));
    const { Readable } = await import('node:stream');
    const body = new Readable({
      read() {
        this.destroy(new Error('client went away'));
      },
    });
    await expect(h.queue.enqueue({ sender: '', recipients: ['a@example.com'] }, body, { kind: 'bounce' })).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
    expect(await queueFiles(h.root)).toEqual([]);
  });
});

function canMountTmpfs(): boolean {
  const dir = join(tmpdir(), `quail-mount-probe-${process.pid}`);
  try {
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
}

describe('a really full disk (tmpfs)', () => {
  it.skipIf(!canMountTmpfs())('refuses with a temporary error once full, keeps what it acknowledged, and delivers it all after space returns', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quail-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', root]);
    try {
      await mkdir(join(root, 'control'));
      for (const [name, value] of Object.entries({ ...CONTROL, concurrencylocal: '0' })) await writeFile(join(root, 'control', name), value);
      h = await harness(() => success('did 1+0+0'), { root });
      const body = `Subject: filler\n\n${'0123456789abcdef\n'.repeat(1200)}`;
      const accepted: string[] = [];
      let refusal: unknown;
      for (let i = 0; i < 200 && !refusal; i++) {
        try {
          accepted.push((await h.queue.enqueue({ sender: 'a@example.org', recipients: [`u${i}@example.com`] }, body, { kind: 'bounce' })).id);
        } catch (err) {
          refusal = err;
        }
      }
      expect(refusal).toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
      expect(accepted.length).toBeGreaterThan(3);
      await h.queue.idle();
      const files = await queueFiles(root);
      expect(files.filter((f) => f.startsWith('tmp/') || f.startsWith('intd/'))).toEqual([]);
      expect(files.filter((f) => f.startsWith('mess/')).map((f) => f.split('/')[2]).sort()).toEqual([...accepted].sort());
      await h.server.stop();
      execFileSync('mount', ['-o', 'remount,size=8m', root]);
      await rm(join(root, 'control', 'concurrencylocal'));
      const again = await harness(() => success('did 1+0+0'), { root });
      h = again;
      await again.queue.idle();
      await again.clock.advance(200_000);
      await again.queue.idle();
      expect(again.deliveries.map((d) => d.delivery.messageId).sort()).toEqual([...accepted].sort());
      expect(again.deliveries.every((d) => d.body.endsWith(body))).toBe(true);
      await again.server.stop();
    } finally {
      h = undefined;
      execFileSync('umount', [root]);
      await rm(root, { recursive: true, force: true });
    }
  });
});
