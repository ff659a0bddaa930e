// The per-package figures of issues 4, 5 and 6, each in its own Node process
// through the package's public API (issue 3's smtpd figure is the
// quail-smtpd+null-queue target of smtp-accept, issue 7's is the pop3 scenario,
// issue 8's the remote scenario).
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forkProcess, stopProcess } from '../lib/proc.mjs';
import { missingPlugins } from '../peers/quail.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const MICRO = [
  { scenario: 'micro-queue', script: 'queue-latency.mjs', plugins: ['queue', 'vpopmail', 'local', 'maildir'] },
  { scenario: 'micro-maildir', script: 'maildir.mjs', plugins: ['maildir'] },
  { scenario: 'micro-vpopmail', script: 'vpopmail.mjs', plugins: ['vpopmail', 'maildir'] },
];

export async function runMicro(h) {
  for (const m of MICRO) {
    const missing = missingPlugins(m.plugins);
    if (missing.length) {
      h.note(m.scenario, `skipped: quail plugin(s) not built yet: ${missing.join(', ')}`);
      continue;
    }
    for (let rep = 1; rep <= h.reps; rep++) {
      const child = forkProcess(m.script, join(here, '..', 'micro', m.script), h.quick ? ['quick'] : [], { log: join(h.work, `${m.script}.log`) });
      try {
        const result = await new Promise((resolve, reject) => {
          child.once('message', resolve);
          child.once('exit', (code) => reject(new Error(`${m.script} exited ${code} (log: ${join(h.work, `${m.script}.log`)})`)));
        });
        for (const [caseLabel, metrics] of Object.entries(result)) h.record(m.scenario, caseLabel, 'quail', rep, metrics);
      } catch (err) {
        h.note(m.scenario, err.message);
      } finally {
        await stopProcess(child, 10_000);
      }
    }
  }
}
