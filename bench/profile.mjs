#!/usr/bin/env node
// node bench/profile.mjs [accept|maildir|pop3|remote] [--count N]
// Runs one quail target under `node --cpu-prof` and `strace -c -f` while
// smtp-source sends N messages at c=50 (accept: smtpd + paused queue; maildir:
// end to end), or a POP3 client retrieves N messages (pop3), or N queued messages
// are delivered to smtp-sink through smtproutes with connection reuse (remote),
// then prints where the CPU went (self
// time by function and by package) and the syscalls per message. Writes
// bench/results/profile-<target>.txt and keeps the .cpuprofile next to it.
import { mkdtemp, readdir, readFile, writeFile, copyFile, mkdir, rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startQuail } from './peers/quail.mjs';
import { startSink } from './peers/smtp-sink.mjs';
import { addBenchDomain, importPackage, BENCH_DOMAIN, BENCH_USER, BENCH_PASSWORD } from './lib/targets.mjs';
import { Pop3Client } from './lib/pop3-client.mjs';
import { smtpSource } from './lib/load.mjs';
import { processTree, stopAll, sleep } from './lib/proc.mjs';
import { countFiles, waitForCount } from './lib/net.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values, positionals } = parseArgs({ allowPositionals: true, options: { count: { type: 'string', default: '3000' } } });
const target = positionals[0] ?? 'accept';
const count = Number(values.count);

/** Self time per function and per package from a V8 .cpuprofile. */
function summarise(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  const fn = new Map();
  const pkg = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const url = n.callFrame.url || '';
    const name = `${n.callFrame.functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|packages)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    let group = 'native code: fs/net bindings, (program)';
    if (n.callFrame.functionName === '(idle)') group = '(idle)';
    else if (n.callFrame.functionName === '(garbage collector)') group = '(garbage collector)';
    else if (/packages\/([^/]+)\//.test(url)) group = `quail ${/packages\/([^/]+)\//.exec(url)[1]}`;
    else if (/node_modules\/(?:\.pnpm\/)?((?:@[^/]+\/)?[^/@]+)/.test(url)) group = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)[1];
    else if (url.startsWith('node:')) group = 'node core';
    pkg.set(group, (pkg.get(group) ?? 0) + us);
    total += us;
  }
  const busy = total - (pkg.get('(idle)') ?? 0);
  const top = (m, k) =>
    [...m.entries()]
      .filter(([name]) => name !== '(idle)' && !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)}%  ${(us / 1000 / count).toFixed(3)} ms/msg  ${name}`);
  return { busyMs: busy / 1000, byPackage: top(pkg, 20), byFunction: top(fn, 30) };
}

const work = await mkdtemp(join(tmpdir(), 'quail-profile-'));
const profDir = join(work, 'prof');
let report = '';
try {
  /** Starts the target in a fresh root, warms it up, then runs the measured load of `count` messages. */
  const runOnce = async (name, execArgv, during) => {
    const root = join(work, name);
    let q;
    let warm;
    let load;
    let prepare = async () => undefined;
    if (target === 'pop3') {
      const { maildir } = await addBenchDomain(root);
      const { MaildirStore } = await importPackage('plugin-maildir');
      const { bufferSource } = await importPackage('core');
      const store = new MaildirStore();
      const text = `From: a@example.org\nSubject: pop3\n\n${'z'.repeat(79).concat('\n').repeat(50)}`;
      let next = 0;
      await Promise.all(Array.from({ length: 10 }, async () => { while (next++ < count) await store.deliver(maildir, bufferSource(text)); }));
      q = await startQuail(root, { plugins: ['pop3', 'vpopmail', 'maildir'], pop3: true, execArgv });
      const retrieve = async (n) => {
        const c = await Pop3Client.connect(q.pop3Port);
        await c.login(`${BENCH_USER}@${BENCH_DOMAIN}`, BENCH_PASSWORD);
        for (let i = 1; i <= n; i++) await c.multi(`RETR ${i}`);
        await c.quit();
      };
      warm = () => retrieve(500);
      load = () => retrieve(count);
    } else if (target === 'remote') {
      const sink = await startSink(await mkdtemp(join(work, 'sink-')));
      q = await startQuail(root, {
        plugins: ['queue', 'remote'],
        pauseQueue: true,
        files: { 'control/smtproutes': `remote.example:127.0.0.1:${sink.port}\n` },
        execArgv,
      });
      const enqueue = async (n) => {
        await q.request('pause');
        await q.request('enqueue', { count: n, size: 2048, sender: 'sender@example.org', recipients: ['user@remote.example'], concurrency: 20 });
      };
      const deliverAll = async () => {
        await q.request('resume');
        await q.request('idle');
      };
      warm = async () => {
        await enqueue(500);
        await deliverAll();
      };
      // only the deliveries are measured: the messages are queued before the clock starts
      prepare = () => enqueue(count);
      load = deliverAll;
    } else {
      let delivered;
      if (target === 'maildir') {
        const { maildir } = await addBenchDomain(root);
        delivered = () => countFiles(join(maildir, 'new'));
        q = await startQuail(root, { plugins: ['smtpd', 'queue', 'vpopmail', 'local', 'maildir'], smtp: true, execArgv });
      } else {
        q = await startQuail(root, { plugins: ['smtpd', 'queue'], smtp: true, pauseQueue: true, files: { 'control/rcpthosts': `${BENCH_DOMAIN}\n` }, execArgv });
      }
      warm = async () => {
        await smtpSource(q.port, { count: 500, concurrency: 50, size: 2048 });
        if (delivered) await waitForCount(delivered, 500);
      };
      load = async () => {
        await smtpSource(q.port, { count, concurrency: 50, size: 2048 });
        if (delivered) await waitForCount(delivered, 500 + count);
      };
    }
    await warm();
    await prepare();
    const stop = await during(q);
    const t0 = performance.now();
    await load();
    const ms = performance.now() - t0;
    await stop();
    await q.stop();
    return ms;
  };
  // pass 1: CPU profile only; pass 2: syscall counts only (strace slows every syscall)
  const ms = await runOnce('prof', ['--cpu-prof', `--cpu-prof-dir=${profDir}`], async () => async () => undefined);
  const straceOut = join(work, 'strace.txt');
  await runOnce('strace', [], async (q) => {
    const pids = processTree(q.pid).flatMap((p) => ['-p', String(p.pid)]);
    const strace = spawn('strace', ['-f', '-c', '-o', straceOut, ...pids], { stdio: 'ignore' });
    await sleep(1000);
    return async () => {
      strace.kill('SIGINT');
      await new Promise((r) => strace.on('exit', r));
    };
  });
  const file = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
  const profile = JSON.parse(await readFile(join(profDir, file), 'utf8'));
  const s = summarise(profile);
  const sys = (await readFile(straceOut, 'utf8'))
    .split('\n')
    .filter((l) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+/.test(l))
    .map((l) => l.trim().split(/\s+/))
    .map((f) => ({ name: f[f.length - 1], calls: Number(f[3]), errors: f.length === 6 ? Number(f[4]) : 0 }))
    .filter((x) => ['fsync', 'fdatasync', 'openat', 'rename', 'link', 'unlink', 'write', 'writev', 'read', 'close', 'statx', 'mkdir'].includes(x.name))
    .map((x) => `${x.name.padEnd(10)} ${(x.calls / count).toFixed(2)} per message${x.errors ? ` (${(x.errors / count).toFixed(2)} failing)` : ''}`);
  report = [
    `quail ${target}: ${count} messages ${{ pop3: 'of 4 KB retrieved with RETR, one session', remote: 'of 2 KB delivered to smtp-sink, connections reused' }[target] ?? 'of 2 KB at c=50'} under --cpu-prof (profiling slows it): ${(count / (ms / 1000)).toFixed(0)} msgs/s`,
    `main-thread busy time ${(s.busyMs / count).toFixed(3)} ms per message`,
    '',
    'self time by package (share of busy time, ms per message):',
    ...s.byPackage,
    '',
    'self time by function:',
    ...s.byFunction,
    '',
    'syscalls of the server process (all threads) per message (strace -c -f):',
    ...sys,
    '',
  ].join('\n');
  await mkdir(join(here, 'results'), { recursive: true });
  await writeFile(join(here, 'results', `profile-${target}.txt`), report);
  await copyFile(join(profDir, file), join(here, 'results', `profile-${target}.cpuprofile`));
  process.stdout.write(report);
} finally {
  await stopAll();
  await rm(work, { recursive: true, force: true });
}
