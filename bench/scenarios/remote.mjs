// Scenario 6 (issue 11) and plugin-remote's figure (issue 8): 5,000 messages of
// 2 KB queued for a remote domain routed by control/smtproutes to smtp-sink on
// loopback; delivered with connection reuse (remote.reuse 100, the default)
// against one connection per message (remote.reuse 1, qmail's way), back to back.
// The queue is paused while the messages are enqueued (which also gives
// plugin-queue's enqueue rate with fsync), then resumed; the clock runs from
// resume to an idle queue.
import { startSink } from '../peers/smtp-sink.mjs';
import { missingPlugins, startQuail } from '../peers/quail.mjs';
import { measure, rotate } from '../lib/harness.mjs';

const MODES = [
  { name: 'quail, reuse (remote.reuse 100)', reuse: 100 },
  { name: 'quail, one connection per message (remote.reuse 1)', reuse: 1 },
];

export async function runRemote(h, { have }) {
  const missing = missingPlugins(['queue', 'remote']);
  if (missing.length) return h.note('remote', `skipped: quail plugin(s) not built yet: ${missing.join(', ')}`);
  if (have.postfix !== true) return h.note('remote', `skipped: smtp-sink ${have.postfix}`);
  const n = h.quick ? 1000 : 5000;
  const enqueueConcurrency = 20;
  for (let rep = 1; rep <= h.reps; rep++) {
    h.log(`remote: repetition ${rep}/${h.reps}`);
    const rates = {};
    for (const mode of rotate(MODES, rep - 1)) {
      const sink = await startSink(await h.tempDir('sink'));
      const root = await h.tempDir('remote-quail');
      const q = await startQuail(root, {
        plugins: ['queue', 'remote'],
        pauseQueue: true,
        files: {
          'control/smtproutes': `remote.example:127.0.0.1:${sink.port}\n`,
          'control/remote.reuse': `${mode.reuse}\n`,
        },
      });
      try {
        const enq = await measure(q.pid, () =>
          q.request('enqueue', { count: n, size: 2048, sender: 'sender@example.org', recipients: ['user@remote.example'], concurrency: enqueueConcurrency }),
        );
        if (mode.reuse === 100) {
          h.record('micro-queue', `enqueue 2 KB, ${enqueueConcurrency} concurrent, fsync`, 'quail', rep, {
            msgsPerSec: n / (enq.ms / 1000),
            cpuMsPerMsg: enq.cpuMs / n,
          });
        }
        const m = await measure(q.pid, async () => {
          await q.request('resume');
          await q.request('idle');
        });
        const stat = await q.request('stat');
        if (stat.messages !== 0) h.note('remote', `${mode.name} rep ${rep}: ${stat.messages} messages still queued after idle (${JSON.stringify(stat.pending)})`);
        rates[mode.reuse] = n / (m.ms / 1000);
        h.record('remote', `${n} msgs to smtp-sink`, mode.name, rep, {
          msgsPerSec: rates[mode.reuse],
          cpuMsPerMsg: m.cpuMs / n,
        });
      } finally {
        await q.stop();
        await sink.stop();
      }
    }
    if (rates[100] && rates[1]) h.record('remote', 'reuse / one connection per message', 'quail', rep, { speedup: rates[100] / rates[1] });
  }
}
