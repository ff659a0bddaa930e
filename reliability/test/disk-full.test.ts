import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filesUnder, maildirTokens, sendMail, sleep } from './support/clients.js';
import { Daemon, DOMAIN, killAll, makeRoot, quail } from './support/daemon.js';
import { recordMetrics } from './support/metrics.js';

/** A small tmpfs for the server root; undefined where mounting is not permitted. */
function mountSmallFs(): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'quail-rel-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

const mountPoint = mountSmallFs();

afterAll(async () => {
  await killAll();
  if (mountPoint) {
    execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
    rmSync(mountPoint, { recursive: true, force: true });
  }
});

/** Writes a file until the filesystem is full; returns its path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const fh = await open(path, 'w');
  const block = Buffer.alloc(64 * 1024, 0x66);
  try {
    for (;;) await fh.write(block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close().catch(() => undefined);
  }
  // the last bytes: smaller writes until nothing fits
  for (let size = 4096; size >= 1; size >>= 1) {
    try {
      const small = await open(join(dir, `filler-${size}`), 'w');
      await small.write(Buffer.alloc(size)).finally(() => small.close());
    } catch {
      // full at this size
    }
  }
  return path;
}

const BODY_END = 'END-OF-BODY-MARKER';
const body = (kb: number) => `${'y'.repeat(1023)}\n`.repeat(kb) + `${BODY_END}\n`;

describe.skipIf(!mountPoint)('disk full: the root on an 8 MB tmpfs', () => {
  it('SMTP answers 4xx while the disk is full, nothing half-stored is delivered later, and the server carries on when space returns', async () => {
    const { root } = await makeRoot({ users: { joe: 'joe-pass-1' }, parent: mountPoint! });
    const daemon = await Daemon.start(root);
    const port = daemon.ports!.smtp;
    const send = (token: string, kb = 64) => sendMail({ port, from: 'a@client.example', to: [`joe@${DOMAIN}`], token, body: body(kb), timeoutMs: 15_000 });

    // acknowledged before the disk fills, delivered only after: deliveries are paused
    expect((await send('before-1')).acknowledged).toBe(true);
    await quail(['ctl', 'pause', '--root', root]);
    const held = await send('held-1');
    expect(held.acknowledged).toBe(true);

    const filler = await fill(mountPoint!);
    const whileFull = [];
    for (let i = 0; i < 5; i++) whileFull.push(await send(`full-${i}`, 16 + i * 64));
    await quail(['ctl', 'cont', '--root', root]);
    await sleep(3000);
    const queueTmpWhileFull = await filesUnder(join(root, 'queue', 'tmp'));

    // space returns; nothing is restarted
    await rm(filler);
    for (const f of await filesUnder(mountPoint!)) if (/filler-\d+$/.test(f)) await rm(f);
    const afterSpace = await send('after-1');
    await quail(['ctl', 'doqueue', '--root', root]);
    const deadline = Date.now() + 60_000;
    let tokens: string[] = [];
    while (Date.now() < deadline) {
      tokens = await maildirTokens(root, 'joe');
      if (['before-1', 'held-1', 'after-1'].every((t) => tokens.includes(t))) break;
      await sleep(500);
    }
    // every delivered message is whole
    const maildir = join(root, 'domains', DOMAIN, 'joe', 'Maildir');
    const files = [...(await filesUnder(join(maildir, 'new'))), ...(await filesUnder(join(maildir, 'cur')))];
    const truncated = [];
    for (const f of files) if (!(await readFile(f, 'latin1')).includes(BODY_END)) truncated.push(f);
    const maildirTmp = await filesUnder(join(maildir, 'tmp'));
    const queueStat = await quail(['queue', '--root', root]);
    const stop = await daemon.stop();

    await recordMetrics('disk-full', {
      answersWhileFull: whileFull.map((r) => r.response.slice(0, 60)),
      heldMessageDelivered: tokens.includes('held-1'),
      afterSpaceReturned: afterSpace.response.slice(0, 40),
      delivered: tokens,
      truncatedDeliveries: truncated.length,
      maildirTmpLeftovers: maildirTmp.length,
      queueTmpWhileFull: queueTmpWhileFull.length,
      queueAtEnd: queueStat.split('\n')[0],
      cleanStop: stop.graceful,
    });
    for (const r of whileFull) {
      expect(r.acknowledged).toBe(false);
      expect(r.response).toMatch(/\b4\d\d\b/);
    }
    expect(tokens.filter((t) => t.startsWith('full-'))).toEqual([]);
    expect(afterSpace.acknowledged).toBe(true);
    expect(tokens.sort()).toEqual(['after-1', 'before-1', 'held-1']);
    expect(truncated).toEqual([]);
    expect(maildirTmp).toEqual([]);
    expect(queueTmpWhileFull).toEqual([]);
    expect(queueStat).toMatch(/messages in queue: 0\b/);
  }, 180_000);
});
