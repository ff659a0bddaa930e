// The servers compared, each started fresh in its own temp dir, each able to
// say how many messages it holds (to check that what was acknowledged is there).
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { startSink } from '../peers/smtp-sink.mjs';
import { startPostfix } from '../peers/postfix.mjs';
import { startHaraka } from '../peers/haraka.mjs';
import { startQuail, missingPlugins } from '../peers/quail.mjs';
import { countFiles } from './net.mjs';

const PACKAGES = fileURLToPath(new URL('../../packages/', import.meta.url));

export const BENCH_DOMAIN = 'bench.test';
export const BENCH_USER = 'user';
export const BENCH_PASSWORD = 'bench-secret-1';

/** Imports a built workspace package's entry (packages/<dir>/dist/index.js). */
export async function importPackage(dir) {
  const entry = join(PACKAGES, dir, 'dist', 'index.js');
  if (!existsSync(entry)) throw new Error(`${dir} is not built (${entry} missing)`);
  return import(pathToFileURL(entry).href);
}

/** Creates the bench domain and user in a quail root with plugin-vpopmail's own admin API. */
export async function addBenchDomain(root) {
  const { VpopmailAdmin } = await importPackage('plugin-vpopmail');
  const admin = new VpopmailAdmin(root);
  await admin.addDomain(BENCH_DOMAIN, 'postmaster-secret-1');
  await admin.addUser(`${BENCH_USER}@${BENCH_DOMAIN}`, BENCH_PASSWORD);
  const info = await admin.userInfo(`${BENCH_USER}@${BENCH_DOMAIN}`);
  return { maildir: info.maildir };
}

const ACCEPT_FILES = {
  'control/rcpthosts': `${BENCH_DOMAIN}\n`,
};

/** Target definitions: name, what it needs installed, and how to start it. */
export const acceptTargets = {
  'smtp-sink': {
    needs: ['postfix'],
    start: async (dir) => ({ ...(await startSink(dir)), stored: async () => undefined }),
  },
  'postfix-hold': {
    needs: ['postfix'],
    start: async (dir, opts) => {
      const pf = await startPostfix(dir, { mode: 'hold', processLimit: opts.processLimit ?? 200 });
      return { ...pf, stored: () => countFiles(pf.holdDir) };
    },
  },
  'haraka-fsync': {
    needs: ['haraka'],
    start: async (dir, opts) => {
      const h = await startHaraka(dir, { peersDir: opts.peersDir });
      return { ...h, stored: () => countFiles(h.spool) };
    },
  },
  quail: {
    plugins: ['smtpd', 'queue'],
    start: async (dir) => {
      const q = await startQuail(dir, { plugins: ['smtpd', 'queue'], smtp: true, pauseQueue: true, files: ACCEPT_FILES });
      return { ...q, stored: async () => (await q.request('stat')).messages };
    },
  },
  'quail-smtpd+null-queue': {
    plugins: ['smtpd'],
    start: async (dir) => {
      const q = await startQuail(dir, { plugins: ['smtpd', 'null-queue'], smtp: true, files: ACCEPT_FILES });
      return { ...q, stored: () => countFiles(join(dir, 'spool')) };
    },
  },
};

export const e2eTargets = {
  'postfix-maildir': {
    needs: ['postfix'],
    start: async (dir) => {
      const pf = await startPostfix(dir, { mode: 'maildir' });
      return { ...pf, delivered: () => countFiles(join(pf.maildir, 'new')) };
    },
  },
  quail: {
    plugins: ['smtpd', 'queue', 'vpopmail', 'local', 'maildir'],
    start: async (dir) => {
      const { maildir } = await addBenchDomain(dir);
      const q = await startQuail(dir, {
        plugins: ['smtpd', 'queue', 'vpopmail', 'local', 'maildir'],
        smtp: true,
        // the same number of deliveries at once as Postfix runs into one domain (virtual_destination_concurrency_limit, 20)
        files: { 'control/concurrencylocal': '20\n' },
      });
      return { ...q, delivered: () => countFiles(join(maildir, 'new')) };
    },
  },
};

/** Why a target can't run now (a plugin not built, a peer not installed), or undefined. */
function unavailable(def, have) {
  const missing = missingPlugins(def.plugins ?? []);
  if (missing.length) return `quail plugin(s) not built yet: ${missing.join(', ')}`;
  return (def.needs ?? []).map((n) => have[n]).find((x) => typeof x === 'string');
}

/** The names of the targets that can run; a note for each one skipped. */
export function runnableTargets(h, scenario, targets, have) {
  return Object.keys(targets).filter((name) => {
    const why = unavailable(targets[name], have);
    if (why) h.note(scenario, `${name} skipped: ${why}`);
    return !why;
  });
}

/** The SMTP load cases of scenarios 1 and 2: concurrency and message count. */
export function smtpCases(quick) {
  if (quick) return [{ c: 50, n: 1000 }];
  return [
    { c: 1, n: 1000 },
    { c: 10, n: 5000 },
    { c: 50, n: 5000 },
  ];
}
