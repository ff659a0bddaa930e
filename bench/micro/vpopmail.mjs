// plugin-vpopmail's figures (issue 6), in one process: password checks per
// second with a SHA-512 crypt hash (vpopmail's default for new passwords):
// through the Authenticator for a repeated good login (which plugin-vpopmail
// answers from its verified-password cache) and for first logins of distinct
// users (the full check, on its hashing workers), and verifyPassword alone (the
// full check on the calling thread); and lookups in a domain of
// 100,000 users (the vpasswd file written in vpopmail's format), the first one
// (which reads the file and builds the index) and then random ones.
import { join } from 'node:path';
import { mkdtemp, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { importPackage, addBenchDomain, BENCH_PASSWORD } from '../lib/targets.mjs';
import { core, loadPlugin } from '../lib/plugins.mjs';
import { percentile } from '../lib/stats.mjs';

const [quick] = process.argv.slice(2);
const out = {};
const root = await mkdtemp(join(tmpdir(), 'quail-bench-vpop-'));
try {
  await addBenchDomain(root);
  const { VpopmailAdmin, hashPassword, verifyPassword } = await importPackage('plugin-vpopmail');
  const admin = new VpopmailAdmin(root);
  const users = quick ? 10_000 : 100_000;
  await admin.addDomain('big.test', 'postmaster-secret-1');
  await admin.addUser('model@big.test', 'model-secret-1');
  const model = await admin.userInfo('model@big.test');
  const lines = [];
  for (let i = 0; i < users; i++) {
    const name = `u${i}`;
    lines.push(`${name}:${model.passwd}:${model.uid}:${model.gid}:User ${i}:${join(model.dir, '..', name)}:NOQUOTA:model-secret-1\n`);
  }
  await appendFile(join(model.dir, '..', 'vpasswd'), lines.join(''));

  const server = core.createServer({ root, plugins: [await loadPlugin('vpopmail'), await loadPlugin('maildir')], log: { level: 'warn' } });
  await server.start();
  try {
    const auth = server.resolve(core.Tokens.Authenticator);
    const store = server.resolve(core.Tokens.UserStore);
    const check = async () => {
      const r = await auth.authenticate({ mechanism: 'USER', service: 'pop3', username: 'user@bench.test', password: BENCH_PASSWORD, remoteAddress: '127.0.0.1' });
      if (!r.ok) throw new Error(`authentication failed: ${JSON.stringify(r)}`);
    };
    await check();
    const nChecks = quick ? 50 : 300;
    let t0 = performance.now();
    for (let i = 0; i < nChecks; i++) await check();
    out['login check, repeated (verified-password cache hit)'] = { opsPerSec: nChecks / ((performance.now() - t0) / 1000) };
    // first logins of distinct users (each its own SHA-512 crypt hash) miss the
    // cache: the full check on plugin-vpopmail's hashing workers
    const fresh = quick ? 16 : 48;
    for (let i = 0; i < 2 * fresh; i++) await admin.addUser(`p${i}@bench.test`, `first-login-${i}`);
    const firstLogin = async (i) => {
      const r = await auth.authenticate({ mechanism: 'USER', service: 'pop3', username: `p${i}@bench.test`, password: `first-login-${i}`, remoteAddress: '127.0.0.1' });
      if (!r.ok) throw new Error(`first login of p${i} failed: ${JSON.stringify(r)}`);
    };
    t0 = performance.now();
    for (let i = 0; i < fresh; i++) await firstLogin(i);
    out['login check, first login (full SHA-512 crypt), one at a time'] = { opsPerSec: fresh / ((performance.now() - t0) / 1000) };
    t0 = performance.now();
    let next = fresh;
    await Promise.all(Array.from({ length: 8 }, async () => { while (next < 2 * fresh) await firstLogin(next++); }));
    out['login check, first login (full SHA-512 crypt), 8 at once'] = { opsPerSec: fresh / ((performance.now() - t0) / 1000) };
    const hash = hashPassword('another-secret-1');
    t0 = performance.now();
    for (let i = 0; i < nChecks; i++) if (!verifyPassword('another-secret-1', hash)) throw new Error('verifyPassword failed');
    out['verifyPassword, SHA-512 crypt, full check'] = { opsPerSec: nChecks / ((performance.now() - t0) / 1000) };

    t0 = performance.now();
    const first = await store.lookup(`u${users - 1}@big.test`);
    const firstMs = performance.now() - t0;
    if (!first) throw new Error('lookup of the last user in big.test found nothing');
    const times = [];
    for (let i = 0; i < 2000; i++) {
      const k = Math.floor(Math.random() * users);
      const s = performance.now();
      const u = await store.lookup(`u${k}@big.test`);
      times.push(performance.now() - s);
      if (!u) throw new Error(`u${k}@big.test not found`);
    }
    out[`lookup in a ${users.toLocaleString('en-US')}-user domain`] = { firstMs, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99) };
  } finally {
    await server.stop();
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
process.send(out);
