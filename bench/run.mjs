#!/usr/bin/env node
// pnpm bench [--quick] [--only a,b] [--reps N] [--keep]
// Benchmarks quail against smtp-sink, Postfix, Haraka and Dovecot in one run,
// back to back, on 127.0.0.1. Results: bench/results/ (JSON, Markdown, SVG).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir, cpus, totalmem, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Harness } from './lib/harness.mjs';
import { ensureDebian, ensureHaraka } from './lib/install.mjs';
import { stopAll } from './lib/proc.mjs';
import { writeReport } from './lib/report.mjs';
import { runSmtpAccept } from './scenarios/smtp-accept.mjs';
import { runSmtpMaildir } from './scenarios/smtp-maildir.mjs';
import { runPop3 } from './scenarios/pop3.mjs';
import { runRemote } from './scenarios/remote.mjs';
import { runDeferredQueue } from './scenarios/deferred-queue.mjs';
import { runMicro } from './scenarios/micro.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const SCENARIOS = {
  'smtp-accept': { run: runSmtpAccept, quick: true, title: 'SMTP accept (durable), 10 MB, idle sessions' },
  'smtp-maildir': { run: runSmtpMaildir, quick: true, title: 'SMTP end to end into Maildir' },
  pop3: { run: runPop3, quick: true, title: 'POP3 on a large Maildir' },
  remote: { run: runRemote, quick: true, title: 'Remote delivery to smtp-sink' },
  'deferred-queue': { run: runDeferredQueue, quick: false, title: 'Start-up with a queue of deferred messages' },
  micro: { run: runMicro, quick: true, title: 'Per-package micro-benchmarks' },
};

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string' },
    keep: { type: 'boolean', default: false },
    deferred: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`usage: pnpm bench [--quick] [--only ${Object.keys(SCENARIOS).join(',')}] [--reps N] [--keep]
  --quick  a one-minute subset (one repetition, smaller counts)
  --only   run these scenarios only
  --reps   repetitions (default 3; 1 with --quick)
  --keep   keep the temp dirs (server roots, peer logs)
  --deferred N  messages in the deferred-queue scenario (default 20000; the issue's figure is 100000)`);
  process.exit(0);
}

const only = values.only ? values.only.split(',') : undefined;
for (const name of only ?? []) {
  if (!SCENARIOS[name]) {
    console.error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    process.exit(2);
  }
}
const quick = values.quick;
const reps = Number(values.reps ?? (quick ? 1 : 3));
const work = join(tmpdir(), `quail-bench-${process.pid}`);
const peersDir = join(here, '.peers');
const h = new Harness({ quick, reps, work, peersDir, only });
const loadAtStart = loadavg();
if (values.deferred) h.deferredCount = Number(values.deferred);

const selected = Object.entries(SCENARIOS).filter(([name, s]) => (only ? only.includes(name) : !quick || s.quick));

async function prepare() {
  const have = {};
  const builtCore = existsSync(join(here, '..', 'packages', 'core', 'dist', 'index.js'));
  if (!builtCore) throw new Error('packages are not built: run `npx tsc -b` at the repository root first');
  for (const [key, pkgs] of [
    ['postfix', ['postfix']],
    ['dovecot', ['dovecot-pop3d']],
  ]) {
    try {
      await ensureDebian(pkgs, (t) => h.log(t));
      have[key] = true;
    } catch (err) {
      have[key] = `not installed (${err.message})`;
    }
  }
  try {
    await ensureHaraka(peersDir, (t) => h.log(t));
    have.haraka = true;
  } catch (err) {
    have.haraka = `not installed (${err.message})`;
  }
  return have;
}

let failed = false;
try {
  h.log(`quail bench: ${quick ? 'quick' : 'full'} run, ${reps} repetition(s), scenarios: ${selected.map(([n]) => n).join(', ')}`);
  await mkdir(work, { recursive: true });
  const have = await prepare();
  for (const [name, s] of selected) {
    h.log(`== ${name}: ${s.title}`);
    const t0 = Date.now();
    try {
      await s.run(h, { have });
    } catch (err) {
      failed = true;
      h.note(name, `scenario failed: ${err.stack ?? err}`);
    } finally {
      await stopAll();
    }
    h.log(`== ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
} finally {
  await stopAll();
  const outDir = join(here, 'results');
  await mkdir(outDir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    reps,
    durationSec: Math.round((Date.now() - h.started) / 1000),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    scenarios: selected.map(([n]) => n),
    loadavgAtStart: loadAtStart.map((x) => Number(x.toFixed(2))),
    loadavgAtEnd: loadavg().map((x) => Number(x.toFixed(2))),
  };
  const name = only ? `${meta.mode}-${only.join('+')}` : meta.mode;
  const files = await writeReport(outDir, { meta: { ...meta, name }, measurements: h.measurements, notes: h.notes });
  h.log(`results: ${files.join(', ')}`);
  if (!values.keep) await rm(work, { recursive: true, force: true });
  else h.log(`temp dirs kept in ${work}`);
}
process.exit(failed ? 1 : 0);
