#!/usr/bin/env node
// node bench/trace-one.mjs
// The file-system syscalls quail makes for ONE 2 KB message end to end (smtpd,
// queue, vpopmail, local, maildir): strace -f of the server while smtp-source
// sends one message and it is delivered into the Maildir. Calls that strace
// splits across threads are merged back. Writes
// bench/results/syscalls-one-message-e2e.txt.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { e2eTargets } from './lib/targets.mjs';
import { smtpSource } from './lib/load.mjs';
import { waitForCount } from './lib/net.mjs';
import { processTree, stopAll, sleep } from './lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const FILE_CALLS = /^(openat|fsync|fdatasync|unlink|rename|link|statx|access|mkdir|newfstatat)\(/;

const work = await mkdtemp(join(tmpdir(), 'quail-trace-'));
try {
  const root = join(work, 'root');
  const t = await e2eTargets.quail.start(root);
  // plugin-vpopmail and plugin-local re-read files changed in the last 2 s; trace the steady state
  await sleep(2500);
  await smtpSource(t.port, { count: 3, concurrency: 1, size: 2048 });
  await waitForCount(t.delivered, 3);
  const out = join(work, 'strace.txt');
  const pids = processTree(t.pid).flatMap((p) => ['-p', String(p.pid)]);
  const strace = spawn('strace', ['-f', '-e', 'trace=%file,%desc,fsync,fdatasync', '-e', 'signal=none', '-o', out, ...pids], { stdio: 'ignore' });
  await sleep(1000);
  await smtpSource(t.port, { count: 1, concurrency: 1, size: 2048 });
  await waitForCount(t.delivered, 4);
  await sleep(300);
  strace.kill('SIGINT');
  await new Promise((r) => strace.on('exit', r));
  await t.stop();

  const pending = new Map();
  const calls = [];
  for (const line of (await readFile(out, 'utf8')).split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, rest0] = m;
    let rest = rest0;
    if (rest.endsWith('<unfinished ...>')) {
      pending.set(pid, rest.slice(0, -'<unfinished ...>'.length).trimEnd());
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      rest = (pending.get(pid) ?? '?(') + resumed[1];
      pending.delete(pid);
    }
    if (!FILE_CALLS.test(rest)) continue;
    calls.push(
      rest
        .split(root)
        .join('ROOT')
        .replace(/\{stx_mask=.*?\}\)/g, '{...})')
        .replace(/AT_STATX_SYNC_AS_STAT(\|AT_EMPTY_PATH)?, STATX_ALL/g, '...')
        .slice(0, 200),
    );
  }
  const text = [
    '# file-system syscalls of quail (smtpd, queue, vpopmail, local, maildir) for ONE 2 KB message,',
    '# from SMTP RCPT/DATA to the Maildir delivery and the queue clean-up (strace -f, calls merged, in order)',
    ...calls,
    '',
  ].join('\n');
  await mkdir(join(here, 'results'), { recursive: true });
  await writeFile(join(here, 'results', 'syscalls-one-message-e2e.txt'), text);
  process.stdout.write(text);
} finally {
  await stopAll();
  await rm(work, { recursive: true, force: true });
}
