#!/usr/bin/env node
// Micro-benchmark of @quail/plugin-vpopmail (in process, uses the built dist/):
// password checks per second by hash scheme (on the calling thread, and through
// the PasswordHasher's worker pool with the longest event-loop stall meanwhile),
// and user lookup time in a domain of 100,000 users (first lookup parses
// vpasswd; later ones hit the index).
// Standalone: `node packages/plugin-vpopmail/bench/vpopmail.bench.mjs [--quick]` prints JSON.
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const dist = new URL('../dist/index.js', import.meta.url);

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** @returns {Promise<Record<string, number>>} */
export async function runVpopmailBench({ quick = false } = {}) {
  const { VpopmailAdmin, VpopmailStore, VpopmailAuthenticator, PasswordHasher, hashPassword, verifyPassword } = await import(dist.href);
  const metrics = {};
  const seconds = quick ? 0.5 : 2;
  for (const scheme of ['sha512', 'sha256', 'md5', 'des']) {
    const hash = hashPassword('bench-password', scheme);
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      if (!verifyPassword('bench-password', hash)) throw new Error(`${scheme} hash did not verify`);
      n++;
    }
    metrics[`checks_per_sec_${scheme}`] = Math.round((n * 1000) / (performance.now() - start));
  }

  // SHA-512 checks through the worker pool, kept 32 deep, and what the event loop saw meanwhile.
  const hasher = new PasswordHasher();
  const poolHash = hashPassword('bench-password', 'sha512');
  await hasher.verify('warm-up', poolHash);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let done = 0;
  const poolStart = performance.now();
  delay.enable();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() - poolStart < seconds * 1000) {
        if (!(await hasher.verify('bench-password', poolHash))) throw new Error('pool check did not verify');
        done++;
      }
    }),
  );
  delay.disable();
  metrics.pool_checks_per_sec_sha512 = Math.round((done * 1000) / (performance.now() - poolStart));
  metrics.pool_max_event_loop_delay_ms = +(delay.max / 1e6).toFixed(2);
  await hasher.close();

  const users = quick ? 20_000 : 100_000;
  const root = await mkdtemp(join(tmpdir(), 'quail-vpopmail-bench-'));
  try {
    await new VpopmailAdmin(root).addDomain('big.example', 'pm-password');
    const hash = hashPassword('shared', 'md5');
    const dir = join(root, 'domains', 'big.example');
    const lines = [];
    for (let i = 0; i < users; i++) lines.push(`user${i}:${hash}:1:0:User ${i}:${dir}/user${i}:NOQUOTA:shared`);
    await appendFile(join(dir, 'vpasswd'), lines.join('\n') + '\n');

    const store = new VpopmailStore(root);
    let t = performance.now();
    if (!(await store.lookup(`user${users - 1}@big.example`))) throw new Error('lookup failed');
    metrics.users = users;
    metrics.first_lookup_ms = +(performance.now() - t).toFixed(2);

    const samples = [];
    for (let i = 0; i < 2000; i++) {
      const name = `user${(i * 7919) % users}@big.example`;
      t = performance.now();
      await store.lookup(name);
      samples.push(performance.now() - t);
    }
    metrics.lookup_median_us = +(median(samples) * 1000).toFixed(1);

    const admin = new VpopmailAdmin(root);
    t = performance.now();
    await admin.addUser('newcomer@big.example', 'pw-newcomer');
    metrics.add_user_ms = +(performance.now() - t).toFixed(2);
    t = performance.now();
    await store.lookup('newcomer@big.example');
    metrics.lookup_after_change_ms = +(performance.now() - t).toFixed(2);

    const auth = new VpopmailAuthenticator(store, () => true);
    const logins = quick ? 50 : 200;
    t = performance.now();
    for (let i = 0; i < logins; i++) {
      const r = await auth.authenticate({ mechanism: 'USER', service: 'pop3', username: `user${i}@big.example`, password: 'shared' });
      if (!r.ok) throw new Error('login failed');
    }
    metrics.md5_logins_per_sec = Math.round((logins * 1000) / (performance.now() - t));

    // The same SHA-512 user logging in again and again (a mail client polling): the verified-password cache answers.
    t = performance.now();
    for (let i = 0; i < logins; i++) {
      const r = await auth.authenticate({ mechanism: 'USER', service: 'pop3', username: 'newcomer@big.example', password: 'pw-newcomer' });
      if (!r.ok) throw new Error('login failed');
    }
    metrics.sha512_repeat_logins_per_sec = Math.round((logins * 1000) / (performance.now() - t));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  return metrics;
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const metrics = await runVpopmailBench({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(metrics, null, 2));
}
