// What every scenario gets: options, temp dirs, recording, and measuring a
// server's CPU and memory around a piece of load.
import { mkdtemp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sampleTree } from './proc.mjs';

export class Harness {
  constructor({ quick, reps, work, peersDir, only }) {
    this.quick = quick;
    this.reps = reps;
    this.work = work;
    this.peersDir = peersDir;
    this.only = only;
    this.measurements = [];
    this.notes = [];
    this.started = Date.now();
  }

  log(text) {
    const s = ((Date.now() - this.started) / 1000).toFixed(1).padStart(6);
    process.stdout.write(`[${s}s] ${text}\n`);
  }

  async tempDir(name) {
    await mkdir(this.work, { recursive: true });
    return mkdtemp(join(this.work, `${name}-`));
  }

  /** One figure: scenario id, case label, target name, repetition and metrics. */
  record(scenario, caseLabel, target, rep, metrics) {
    this.measurements.push({ scenario, case: caseLabel, target, rep, ...metrics });
    const shown = Object.entries(metrics)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`)
      .join(' ');
    this.log(`  ${scenario} ${caseLabel} ${target} #${rep}: ${shown}`);
  }

  /** A scenario or target that could not run, with the reason (goes into the report). */
  note(scenario, text) {
    this.notes.push({ scenario, text });
    this.log(`  note (${scenario}): ${text}`);
  }
}

/**
 * Runs `load` against a server and returns its wall time and the CPU the server's
 * process tree spent meanwhile; with `peakEveryMs` also the highest RSS seen.
 */
export async function measure(pid, load, { peakEveryMs } = {}) {
  const before = sampleTree(pid);
  let peakRssKiB = before.rssKiB;
  const timer = peakEveryMs
    ? setInterval(() => {
        peakRssKiB = Math.max(peakRssKiB, sampleTree(pid).rssKiB);
      }, peakEveryMs)
    : undefined;
  const t0 = performance.now();
  let value;
  try {
    value = await load();
  } finally {
    if (timer) clearInterval(timer);
  }
  const ms = performance.now() - t0;
  const after = sampleTree(pid);
  return { ms, cpuMs: after.cpuMs - before.cpuMs, rssKiB: after.rssKiB, rssBeforeKiB: before.rssKiB, peakRssKiB: Math.max(peakRssKiB, after.rssKiB), value };
}

/** The list rotated by `n` places: each repetition starts with another target. */
export function rotate(list, n) {
  if (list.length === 0) return list;
  const k = n % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}
