// Scenario 2 (issue 11): SMTP in, delivered into a Maildir, 2 KB, a new
// connection per message, c = 1, 10, 50. The rate counts from the first
// connection to the moment the last message is in the Maildir's new/.
import { e2eTargets, runnableTargets, smtpCases } from '../lib/targets.mjs';
import { measure, rotate } from '../lib/harness.mjs';
import { smtpSource } from '../lib/load.mjs';
import { waitForCount } from '../lib/net.mjs';
import { sleep } from '../lib/proc.mjs';

const KB = 1024;

export async function runSmtpMaildir(h, { have }) {
  const q = h.quick;
  const cases = smtpCases(q);
  const warm = q ? 300 : 1000;
  const names = runnableTargets(h, 'smtp-maildir', e2eTargets, have);
  if (names.length === 0) return;

  for (let rep = 1; rep <= h.reps; rep++) {
    h.log(`smtp-maildir: repetition ${rep}/${h.reps}`);
    const targets = [];
    try {
      for (const name of names) {
        try {
          targets.push({ ...(await e2eTargets[name].start(await h.tempDir(`e2e-${name}`))), name });
        } catch (err) {
          h.note('smtp-maildir', `${name} failed to start: ${err.message}`);
        }
      }
      const delivered = new Map();
      for (const t of targets) {
        await smtpSource(t.port, { count: warm, concurrency: 50, size: 2 * KB });
        await waitForCount(t.delivered, warm, { timeoutMs: 120_000, intervalMs: 20 });
        delivered.set(t.name, warm);
      }
      await sleep(500);
      for (const { c, n } of cases) {
        for (const t of rotate(targets, rep - 1)) {
          const target = delivered.get(t.name) + n;
          try {
            let acceptMs;
            const m = await measure(t.pid, async () => {
              const t0 = performance.now();
              await smtpSource(t.port, { count: n, concurrency: c, size: 2 * KB });
              acceptMs = performance.now() - t0;
              await waitForCount(t.delivered, target, { timeoutMs: 300_000, intervalMs: 10 });
            });
            delivered.set(t.name, target);
            h.record('smtp-maildir', `c=${c}`, t.name, rep, {
              msgsPerSec: n / (m.ms / 1000),
              acceptMsgsPerSec: n / (acceptMs / 1000),
              cpuMsPerMsg: m.cpuMs / n,
              rssMiB: m.rssKiB / 1024,
            });
          } catch (err) {
            h.note('smtp-maildir', `${t.name} c=${c} rep ${rep} failed: ${err.message}`);
            delivered.set(t.name, await t.delivered());
          }
        }
      }
    } finally {
      for (const t of targets) await t.stop().catch((err) => h.note('smtp-maildir', `${t.name} stop: ${err.message}`));
    }
  }
}
