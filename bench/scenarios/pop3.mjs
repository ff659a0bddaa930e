// Scenario 5 (issue 11) and plugin-pop3's figures (issue 7): one mailbox of
// 10,000 messages of 4 KB, served by quail (pop3 + vpopmail + maildir) and by
// Dovecot's POP3 from identical copies of the same Maildir. Per repetition each
// server starts fresh on a fresh copy; then, in order:
//   cold   connect, USER/PASS, STAT: the first login, which moves new/ to cur/
//   warm   the same again
//   UIDL   the whole listing
//   RETR   every message (msgs/s, MB/s of what the client received)
//   DELE   1,000 messages, then QUIT (the deletions happen at QUIT)
// The mailbox is filled once through plugin-maildir's MailStore.deliver.
import { cp, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { importPackage, addBenchDomain, BENCH_DOMAIN, BENCH_USER, BENCH_PASSWORD } from '../lib/targets.mjs';
import { missingPlugins, startQuail } from '../peers/quail.mjs';
import { startDovecot, chownTree } from '../peers/dovecot.mjs';
import { Pop3Client } from '../lib/pop3-client.mjs';
import { measure, rotate } from '../lib/harness.mjs';
import { sleep } from '../lib/proc.mjs';

const MB = 1024 * 1024;
const LOGIN = `${BENCH_USER}@${BENCH_DOMAIN}`;

function message(n, size) {
  const head = `Return-Path: <sender@example.org>\nDelivered-To: ${LOGIN}\nFrom: Sender <sender@example.org>\nTo: ${LOGIN}\nSubject: message ${n}\nMessage-ID: <${n}@bench.example.org>\n\n`;
  const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n';
  let text = head;
  while (text.length < size) text += line;
  return `${text.slice(0, size - 1)}\n`;
}

/** Fills `maildir` with `count` messages through MailStore.deliver, 10 at a time. */
async function fill(maildir, count, size) {
  const { MaildirStore } = await importPackage('plugin-maildir');
  const { bufferSource } = await importPackage('core');
  const store = new MaildirStore();
  await store.create(maildir);
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < count) await store.deliver(maildir, bufferSource(message(next++, size)));
    }),
  );
}

async function loginStat(port) {
  const t0 = performance.now();
  const c = await Pop3Client.connect(port);
  await c.login(LOGIN, BENCH_PASSWORD);
  const stat = await c.stat();
  const ms = performance.now() - t0;
  await c.quit();
  return { ms, stat };
}

async function session(h, t, { dele, rep, expectCount }) {
  const c = await Pop3Client.connect(t.port);
  await c.login(LOGIN, BENCH_PASSWORD);
  const { count } = await c.stat();
  if (count !== expectCount) h.note('pop3', `${t.name} rep ${rep}: STAT says ${count} messages, expected ${expectCount}`);
  let t0 = performance.now();
  const uidl = await c.multi('UIDL');
  const uidlMs = performance.now() - t0;
  const uidlLines = uidl.toString('latin1').split('\r\n').filter(Boolean).length;
  let bytes = 0;
  const m = await measure(t.pid, async () => {
    for (let i = 1; i <= count; i++) bytes += (await c.multi(`RETR ${i}`)).length;
  });
  t0 = performance.now();
  for (let i = 1; i <= Math.min(dele, count); i++) await c.command(`DELE ${i}`);
  await c.quit();
  const deleMs = performance.now() - t0;
  return { count, uidlMs, uidlLines, retrMs: m.ms, retrCpuMs: m.cpuMs, bytes, deleMs };
}

export async function runPop3(h, { have }) {
  const count = h.quick ? 2000 : 10_000;
  const size = 4096;
  const dele = h.quick ? 200 : 1000;
  const missing = missingPlugins(['pop3', 'vpopmail', 'maildir']);
  if (missing.length) {
    h.note('pop3', `quail skipped: plugin(s) not built yet: ${missing.join(', ')}`);
  }
  const withDovecot = have.dovecot === true;
  if (!withDovecot) h.note('pop3', `dovecot skipped: ${have.dovecot}`);
  if (missing.length && !withDovecot) return;
  if (missing.includes('maildir')) {
    h.note('pop3', 'no MailStore to fill the mailbox with: scenario skipped');
    return;
  }

  const template = join(await h.tempDir('pop3-template'), 'Maildir');
  h.log(`pop3: filling a Maildir with ${count} messages of ${size} bytes through MailStore.deliver`);
  await fill(template, count, size);

  for (let rep = 1; rep <= h.reps; rep++) {
    h.log(`pop3: repetition ${rep}/${h.reps}`);
    const targets = [];
    try {
      if (!missing.length) {
        const root = await h.tempDir('pop3-quail');
        const { maildir } = await addBenchDomain(root);
        await rm(maildir, { recursive: true, force: true });
        await cp(template, maildir, { recursive: true });
        const q = await startQuail(root, { plugins: ['pop3', 'vpopmail', 'maildir'], pop3: true });
        targets.push({ ...q, name: 'quail', port: q.pop3Port });
      }
      if (withDovecot) {
        const dir = await h.tempDir('pop3-dovecot');
        const home = join(dir, 'home');
        await mkdir(home, { recursive: true });
        await cp(template, join(home, 'Maildir'), { recursive: true });
        await chownTree(home);
        const d = await startDovecot(dir, { users: [{ login: LOGIN, password: BENCH_PASSWORD, home }] });
        targets.push({ ...d, name: 'dovecot' });
      }
      await sleep(300);
      const order = rotate(targets, rep - 1);
      for (const t of order) {
        const cold = await loginStat(t.port);
        h.record('pop3', 'login+STAT, first (cold)', t.name, rep, { ms: cold.ms });
      }
      for (const t of order) {
        const warm = await loginStat(t.port);
        h.record('pop3', 'login+STAT, again (warm)', t.name, rep, { ms: warm.ms });
      }
      for (const t of order) {
        const s = await session(h, t, { dele, rep, expectCount: count });
        h.record('pop3', `UIDL of ${count}`, t.name, rep, { ms: s.uidlMs });
        h.record('pop3', `RETR all ${count}`, t.name, rep, {
          msgsPerSec: s.count / (s.retrMs / 1000),
          MBps: s.bytes / MB / (s.retrMs / 1000),
          cpuMsPerMsg: s.retrCpuMs / s.count,
        });
        h.record('pop3', `DELE ${dele} + QUIT`, t.name, rep, { ms: s.deleMs });
      }
      for (const t of order) {
        const after = await loginStat(t.port);
        if (after.stat.count !== count - dele) h.note('pop3', `${t.name} rep ${rep}: ${after.stat.count} messages after DELE+QUIT, expected ${count - dele}`);
      }
    } finally {
      for (const t of targets) await t.stop().catch((err) => h.note('pop3', `${t.name} stop: ${err.message}`));
    }
  }
}
