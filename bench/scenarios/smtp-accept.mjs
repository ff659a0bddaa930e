// Scenarios 1, 3 and 4 (issue 11), plus plugin-smtpd's own figure (issue 3):
//   smtp-accept    5,000 x 2 KB, a new connection per message, c = 1, 10, 50
//   smtp-10mb      10 MB messages at c = 10
//   idle-sessions  N sessions held after EHLO: server RSS per session
// All targets run at once, idle while another is measured; every repetition
// starts them fresh, warms each up with unrecorded messages, then interleaves them
// case by case, rotating which target goes first.
import { acceptTargets, runnableTargets, smtpCases } from '../lib/targets.mjs';
import { measure, rotate } from '../lib/harness.mjs';
import { smtpSource, holdIdleSessions } from '../lib/load.mjs';
import { sampleTree, sleep } from '../lib/proc.mjs';
import { join } from 'node:path';
import { readdirSync, readlinkSync } from 'node:fs';

const KB = 1024;
const MB = 1024 * 1024;

export async function runSmtpAccept(h, { have }) {
  const q = h.quick;
  const cases = smtpCases(q);
  const big = q ? undefined : { c: 10, n: 30, size: 10 * MB };
  const idleSessions = q ? 1000 : 2000;
  const postfixIdleSessions = q ? 100 : 500;
  const warm = q ? 300 : 1000;

  const names = runnableTargets(h, 'smtp-accept', acceptTargets, have);

  for (let rep = 1; rep <= h.reps; rep++) {
    h.log(`smtp-accept: repetition ${rep}/${h.reps}`);
    const targets = [];
    try {
      for (const name of names) {
        const dir = await h.tempDir(name);
        try {
          const t = await acceptTargets[name].start(dir, { peersDir: h.peersDir, processLimit: postfixIdleSessions + 200 });
          targets.push({ ...t, name });
        } catch (err) {
          h.note('smtp-accept', `${name} failed to start: ${err.message}`);
        }
      }
      for (const t of targets) await smtpSource(t.port, { count: warm, concurrency: 50, size: 2 * KB });
      await sleep(500);

      const sent = new Map(targets.map((t) => [t.name, warm]));
      for (const { c, n } of cases) {
        for (const t of rotate(targets, rep - 1)) {
          try {
            const m = await measure(t.pid, () => smtpSource(t.port, { count: n, concurrency: c, size: 2 * KB }));
            sent.set(t.name, sent.get(t.name) + n);
            h.record('smtp-accept', `c=${c}`, t.name, rep, {
              msgsPerSec: n / (m.ms / 1000),
              cpuMsPerMsg: m.cpuMs / n,
              rssMiB: m.rssKiB / 1024,
            });
          } catch (err) {
            h.note('smtp-accept', `${t.name} c=${c} rep ${rep} failed: ${err.message}`);
          }
        }
      }

      if (big) {
        for (const t of rotate(targets, rep - 1)) {
          if (t.name === 'quail-smtpd+null-queue') continue;
          try {
            const m = await measure(t.pid, () => smtpSource(t.port, { count: big.n, concurrency: big.c, size: big.size }), { peakEveryMs: 50 });
            sent.set(t.name, sent.get(t.name) + big.n);
            h.record('smtp-10mb', `10 MB c=${big.c}`, t.name, rep, {
              msgsPerSec: big.n / (m.ms / 1000),
              MBps: (big.n * big.size) / MB / (m.ms / 1000),
              cpuMsPerMsg: m.cpuMs / big.n,
              peakRssGrowthMiB: (m.peakRssKiB - m.rssBeforeKiB) / 1024,
            });
          } catch (err) {
            h.note('smtp-10mb', `${t.name} rep ${rep} failed: ${err.message}`);
          }
        }
      }

      // what was acknowledged must be there
      for (const t of targets) {
        const stored = await t.stored();
        if (stored !== undefined && stored < sent.get(t.name)) {
          h.note('smtp-accept', `${t.name} rep ${rep}: ${sent.get(t.name)} acknowledged but only ${stored} stored`);
        }
      }

      for (const t of rotate(targets, rep - 1)) {
        if (t.name === 'quail-smtpd+null-queue' || t.name === 'smtp-sink') continue;
        try {
          h.record('idle-sessions', 'idle sessions after EHLO', t.name, rep, await idleMemory(h, t, t.name.startsWith('postfix') ? postfixIdleSessions : idleSessions));
        } catch (err) {
          h.note('idle-sessions', `${t.name} rep ${rep} failed: ${err.message}`);
        }
      }
    } finally {
      for (const t of targets) await t.stop().catch((err) => h.note('smtp-accept', `${t.name} stop: ${err.message}`));
    }
  }
}

/**
 * Memory per idle session: sessions are opened in four equal steps and held; after
 * each step the server's RSS (and PSS) is read, and the per-session figure is the
 * least-squares slope of memory against sessions. Node servers (quail, Haraka)
 * get a full garbage collection before each reading (SIGUSR2, see peers/), so
 * the readings show live memory, and the slope ignores the heap's starting size.
 * Postfix forks one smtpd per session; its slope is taken against processes.
 */
async function idleMemory(h, t, total) {
  const multiProcess = t.name.startsWith('postfix');
  const step = Math.ceil(total / 4);
  const log = join(h.work, 'idle-sessions.log');
  const held = [];
  const points = [];
  let base;
  const read = async () => {
    if (!multiProcess) process.kill(t.pid, 'SIGUSR2');
    await sleep(1000);
    const s = sampleTree(t.pid, { pss: true });
    return { ...s, sockets: multiProcess ? s.processes : openSockets(t.pid) };
  };
  try {
    base = await read();
    for (let opened = 0; opened < total; opened += step) {
      held.push(await holdIdleSessions(t.port, Math.min(step, total - opened), log));
      points.push(await read());
    }
  } finally {
    for (const x of held) await x.close();
  }
  const xs = points.map((p) => (multiProcess ? p.processes : p.sockets));
  const slope = (ys) => {
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
    const my = ys.reduce((a, b) => a + b, 0) / ys.length;
    let num = 0;
    let den = 0;
    for (let i = 0; i < xs.length; i++) {
      num += (xs[i] - mx) * (ys[i] - my);
      den += (xs[i] - mx) ** 2;
    }
    return den ? num / den : undefined;
  };
  const last = points[points.length - 1];
  return {
    rssKiBPerSession: slope(points.map((p) => p.rssKiB)),
    pssKiBPerSession: slope(points.map((p) => p.pssKiB)),
    heldSessions: multiProcess ? last.processes - base.processes : last.sockets - base.sockets,
  };
}

/** Open TCP sockets of a single-process server (its socket file descriptors). */
function openSockets(pid) {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}
