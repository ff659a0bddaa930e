// plugin-maildir's figure (issue 5): deliveries per second into one Maildir
// with fsync (tmp/, fsync, link into new/, fsync new/), 4 KB messages with the
// Return-Path/Delivered-To prepend, one at a time and 10 at once.
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { importPackage } from '../lib/targets.mjs';

const [quick] = process.argv.slice(2);
const { MaildirStore } = await importPackage('plugin-maildir');
const { bufferSource } = await importPackage('core');
const n = quick ? 500 : 3000;
const body = Buffer.from(`From: a@example.org\nTo: user@bench.test\nSubject: maildir\n\n${'y'.repeat(79).concat('\n').repeat(50)}`);
const prepend = 'Return-Path: <a@example.org>\nDelivered-To: bench.test-user@bench.test\n';
const out = {};
const dir = await mkdtemp(join(tmpdir(), 'quail-bench-maildir-'));
try {
  const store = new MaildirStore();
  for (const c of [1, 10]) {
    const maildir = join(dir, `c${c}`, 'Maildir');
    await store.create(maildir);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: c }, async () => { while (next++ < n) await store.deliver(maildir, bufferSource(body), { prepend }); }));
    out[`deliver 4 KB, ${c === 1 ? 'one at a time' : `${c} at once`}, fsync`] = { opsPerSec: n / ((performance.now() - t0) / 1000) };
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.send(out);
