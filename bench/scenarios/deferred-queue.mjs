// Scenario 7 (issue 11): a queue of deferred messages (--deferred N; 20,000 by
// default because building 100,000 through the Queue service takes many minutes
// on a 2-core VM). The queue is built through the Queue service (2 KB messages
// for a remote domain whose smtproutes entry points at a closed loopback port,
// enqueued while paused, then resumed so that every first attempt is deferred),
// the server is stopped, then started again on that queue in each
// repetition: time from process start to running (start hooks done), time until
// the scheduler is idle (everything loaded, nothing due), and RSS.
import { missingPlugins, startQuail } from '../peers/quail.mjs';
import { freePort } from '../lib/net.mjs';
import { sampleTree } from '../lib/proc.mjs';

export async function runDeferredQueue(h) {
  const missing = missingPlugins(['queue', 'remote']);
  if (missing.length) return h.note('deferred-queue', `skipped: quail plugin(s) not built yet: ${missing.join(', ')}`);
  const n = h.deferredCount ?? (h.quick ? 5000 : 20_000);
  const root = await h.tempDir('deferred-quail');
  const closedPort = await freePort();
  const files = { 'control/smtproutes': `remote.example:127.0.0.1:${closedPort}\n` };
  h.log(`deferred-queue: queueing ${n} messages`);
  let q = await startQuail(root, { plugins: ['queue', 'remote'], files, logLevel: 'warn', pauseQueue: true });
  try {
    const t0 = performance.now();
    await q.request('enqueue', { count: n, size: 2048, sender: 'sender@example.org', recipients: ['user@remote.example'], concurrency: 50 });
    const t1 = performance.now();
    await q.request('resume');
    await q.request('idle');
    const stat = await q.request('stat');
    h.log(`deferred-queue: ${stat.messages} messages queued in ${((t1 - t0) / 1000).toFixed(0)} s, first attempts (all deferred) in ${((performance.now() - t1) / 1000).toFixed(0)} s; pending ${JSON.stringify(stat.pending)}`);
    if (stat.messages < n) h.note('deferred-queue', `only ${stat.messages} of ${n} messages in the queue`);
  } finally {
    await q.stop();
  }
  for (let rep = 1; rep <= h.reps; rep++) {
    q = await startQuail(root, { plugins: ['queue', 'remote'], files, logLevel: 'warn' });
    try {
      const running = sampleTree(q.pid);
      const idle = await q.request('idle');
      const after = sampleTree(q.pid);
      h.record('deferred-queue', `${n} deferred messages`, 'quail', rep, {
        startMs: q.readyMs,
        idleMs: q.readyMs + idle.ms,
        rssAfterMiB: after.rssKiB / 1024,
        rssAtStartMiB: running.rssKiB / 1024,
      });
    } finally {
      await q.stop();
    }
  }
}
