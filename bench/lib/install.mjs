// Installs the peers and load generators on demand, so that `pnpm bench` works
// from a fresh clone: Debian packages through apt-get, Haraka through npm into
// bench/.peers/haraka (outside the workspace's lockfile).
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './proc.mjs';

/** Debian package -> a file it installs that the harness needs. */
export const DEBIAN_TOOLS = {
  postfix: '/usr/sbin/smtp-source',
  'dovecot-pop3d': '/usr/lib/dovecot/pop3',
};

let aptUpdated = false;

export async function ensureDebian(packages, log = console.log) {
  const missing = packages.filter((p) => !existsSync(DEBIAN_TOOLS[p]));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: install them (apt-get install -y ${missing.join(' ')}) or run as root`);
  log(`installing ${missing.join(', ')} with apt-get`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // Postfix: install the programs only; no system configuration, nothing started.
  await runOk('debconf-set-selections', [], { input: 'postfix postfix/main_mailer_type select No configuration\n' });
  if (!aptUpdated) {
    await runOk('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
    aptUpdated = true;
  }
  await runOk('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeoutMs: 900_000 });
}

// The registry mirror used here lacks the exact versions libmime@5.6 pins
// (encoding-japanese@2.5.0, libqp@3.0.1); libmime 5.4.3 satisfies Haraka's range.
const HARAKA_PACKAGE = {
  name: 'quail-bench-haraka',
  private: true,
  dependencies: { Haraka: '3.3.4' },
  overrides: { libmime: '5.4.3' },
};

export async function ensureHaraka(peersDir, log = console.log) {
  const dir = join(peersDir, 'haraka');
  if (existsSync(join(dir, 'node_modules', 'Haraka', 'bin', 'haraka'))) return dir;
  log(`installing Haraka ${HARAKA_PACKAGE.dependencies.Haraka} with npm into ${dir}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(HARAKA_PACKAGE, null, 2)}\n`);
  await runOk('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { cwd: dir, timeoutMs: 600_000 });
  return dir;
}
