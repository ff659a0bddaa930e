// quail, started from the built packages in its own process (lib/quail-server.mjs)
// on a server root in a temp dir, driven over IPC.
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { forkProcess, stopProcess } from '../lib/proc.mjs';
import { freePort, waitForGreeting, HOST } from '../lib/net.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SERVER = join(here, '..', 'lib', 'quail-server.mjs');
const PACKAGES = join(here, '..', '..', 'packages');

/** Plugins the preset loads, in its order (the brief's contract). */
export const PRESET_ORDER = ['smtpd', 'pop3', 'queue', 'vpopmail', 'local', 'remote', 'maildir'];

export function pluginBuilt(name) {
  return name === 'null-queue' || existsSync(join(PACKAGES, `plugin-${name}`, 'dist', 'index.js'));
}

export function missingPlugins(names) {
  return names.filter((n) => !pluginBuilt(n));
}

/** Writes `files` (path relative to root -> content) below root. */
export async function writeTree(root, files) {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  }
}

/**
 * Starts quail. `files` are written into the root first (control files ...).
 * With `smtp: true` a port is chosen and written to control/smtpd.listen; with
 * `pop3: true` the same for control/pop3d.listen.
 */
export async function startQuail(root, { plugins, files = {}, smtp = false, pop3 = false, pauseQueue = false, logLevel, execArgv = [] }) {
  const missing = missingPlugins(plugins);
  if (missing.length) throw new Error(`quail plugins not built yet: ${missing.join(', ')}`);
  const ports = {};
  const all = {
    'control/me': 'quail.bench.localhost\n',
    'control/concurrencyincoming': '4000\n',
    // no per-address limit: every client of the benchmark comes from 127.0.0.1
    'control/smtpd.maxperip': '0\n',
    ...files,
  };
  if (smtp) {
    ports.smtp = await freePort();
    all['control/smtpd.listen'] = `${HOST}:${ports.smtp}\n`;
  }
  if (pop3) {
    ports.pop3 = await freePort();
    all['control/pop3d.listen'] = `${HOST}:${ports.pop3}\n`;
  }
  await writeTree(root, all);
  const forkedAt = performance.now();
  const child = forkProcess('quail', SERVER, [], {
    log: join(root, 'quail.out'),
    env: { BENCH_QUAIL: JSON.stringify({ root, plugins, pauseQueue, logLevel: logLevel ?? process.env.BENCH_QUAIL_LOG ?? 'info' }) },
    execArgv: ['--expose-gc', ...execArgv],
  });
  const pending = new Map();
  let serial = 0;
  child.on('message', (msg) => {
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(`quail ${p.cmd}: ${msg.error}`));
  });
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`quail exited (${code}) during ${p.cmd}`));
    pending.clear();
  });
  const ready = await new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m.type !== 'ready') return;
      child.off('exit', onExit);
      child.off('message', onMessage);
      resolve(m);
    };
    const onExit = (code) => {
      child.off('message', onMessage);
      reject(new Error(`quail exited with ${code} while starting; see ${join(root, 'quail.out')}`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
  const readyMs = performance.now() - forkedAt;
  if (ports.smtp) await waitForGreeting(ports.smtp, '220', { child });
  if (ports.pop3) await waitForGreeting(ports.pop3, '+OK', { child });
  return {
    name: 'quail',
    root,
    pid: child.pid,
    child,
    port: ports.smtp,
    pop3Port: ports.pop3,
    readyMs,
    ready,
    request(cmd, args) {
      const id = ++serial;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, cmd });
        child.send({ id, cmd, args });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.send({ id: ++serial, cmd: 'stop' });
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      }
      await stopProcess(child, 2000);
    },
  };
}
