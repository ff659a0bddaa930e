import { execFile } from 'node:child_process';
import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Daemon, assertBuilt, eventually, freePort, quail, tempDir } from './helpers.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

const SEND = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
s.sendmail('alice@example.org', [sys.argv[2]], 'Subject: %s\\r\\n\\r\\nhello\\r\\n' % sys.argv[3])
s.quit()
`;

describe('the daemon', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let daemon: Daemon | undefined;
  beforeAll(assertBuilt);
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    await cleanup();
  });

  it('logs JSON into a multilog directory with TAI64N stamps, and retries the queue on SIGALRM', async () => {
    const root = join(dir, 'r');
    await quail(['init', root, '--me', 'mx.test', '--smtp', `127.0.0.1:${await freePort()}`, '--submission', `127.0.0.1:${await freePort()}`, '--pop3', `127.0.0.1:${await freePort()}`]);
    const logDir = join(dir, 'log');
    daemon = new Daemon(['start', '--root', root, '--log-format', 'json', '--log-dir', logDir, '--log-size', '4096', '--log-count', '3']);
    const current = join(logDir, 'current');
    await eventually(async () => (await readFile(current, 'utf8').catch(() => '')).includes('serving with plugins'), 'the worker to serve');
    process.kill(daemon.child.pid!, 'SIGALRM');
    await eventually(async () => (await readFile(current, 'utf8')).includes('doqueue: retrying every deferred delivery now'), 'the ALRM flush');
    for (let i = 0; i < 60; i++) {
      process.kill(daemon.child.pid!, 'SIGALRM');
      await new Promise((r) => setTimeout(r, 20));
    }
    await eventually(async () => (await readdir(logDir)).filter((f) => f.startsWith('@')).length >= 3, 'rotated log files');
    expect(await daemon.stop()).toBe(0);
    expect(daemon.output).toBe('');
    const files = (await readdir(logDir)).filter((f) => f.startsWith('@')).sort();
    expect(files.length).toBeGreaterThanOrEqual(1);
    expect(files.length).toBeLessThanOrEqual(3);
    for (const f of [...files, 'current']) {
      const text = await readFile(join(logDir, f), 'utf8');
      expect((await stat(join(logDir, f))).size).toBeLessThanOrEqual(4096);
      for (const line of text.trim().split('\n')) {
        const m = /^(@4000[0-9a-f]{20}) (.*)$/.exec(line);
        expect(m, line).not.toBeNull();
        const record = JSON.parse(m![2]!) as { level: number; msg: string };
        expect(typeof record.msg).toBe('string');
      }
    }
    expect((await stat(current)).mode & 0o777).toBe(0o744);
  }, 120_000);

  it('exits non-zero with the reason when the configuration is broken at start', async () => {
    const root = join(dir, 'r');
    await quail(['init', root, '--me', 'mx.test', '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0', '--pop3', '127.0.0.1:0']);
    await run('sh', ['-c', `echo 'not a number' > ${join(root, 'control', 'queuelifetime')}`]);
    daemon = new Daemon(['start', '--root', root]);
    expect(await daemon.exited).toBe(100);
    expect(daemon.output).toMatch(/cannot start: control\/queuelifetime:1: not an integer: "not a number"/);
    daemon = undefined;
    const detached = await quail(['ctl', 'start', '--root', root]);
    expect(detached.code).toBe(100);
    expect(detached.stderr).toMatch(/^quail ctl: the daemon did not start \(exit 100\): .*control\/queuelifetime:1: not an integer: "not a number"/);
    expect(detached.stderr.split('\n')).toHaveLength(2);
  }, 60_000);

  it('answers ctl restart with the reason when the new worker cannot start, and keeps retrying until it can', async () => {
    const root = join(dir, 'r');
    await quail(['init', root, '--me', 'mx.test', '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0', '--pop3', '127.0.0.1:0']);
    daemon = new Daemon(['start', '--root', root]);
    await daemon.waitFor(/serving with plugins/);
    await writeFile(join(root, 'control', 'concurrencyremote'), 'many\n');
    const r = await quail(['ctl', 'restart', '--root', root]);
    expect(r.code).toBe(111);
    expect(r.stderr).toMatch(/^quail ctl restart: the new worker exited \(status 100\) before serving; see the log\n$/);
    expect(daemon.output).toMatch(/cannot start: control\/concurrencyremote:1: not an integer: "many"/);
    await daemon.waitFor(/died \(status 100\) after \d+ s; restarting in \d+ s/);
    await rm(join(root, 'control', 'concurrencyremote'));
    await eventually(async () => /worker: up/.test((await quail(['ctl', 'stat', '--root', root])).stdout), 'a worker serving again', 60_000);
  }, 120_000);

  it('refuses a second daemon on the same root', async () => {
    const root = join(dir, 'r');
    await quail(['init', root, '--me', 'mx.test', '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0', '--pop3', '127.0.0.1:0']);
    daemon = new Daemon(['start', '--root', root]);
    await daemon.waitFor(/serving with plugins/);
    const second = await quail(['start', '--root', root]);
    expect(second.code).toBe(111);
    expect(second.stderr).toMatch(/^quail start: a quail daemon is already running \(control socket .*quail\.sock\)\n$/);
  }, 60_000);

  it.skipIf(!isRoot)('binds as root, then runs as the account in control/user', async () => {
    await chmod(dir, 0o755);
    const root = join(dir, 'r');
    const smtp = await freePort();
    const init = await quail(['init', root, '--me', 'mx.test', '--user', 'nobody', '--smtp', `127.0.0.1:${smtp}`, '--submission', `127.0.0.1:${await freePort()}`, '--pop3', `127.0.0.1:${await freePort()}`]);
    expect(init.code).toBe(0);
    expect(await readFile(join(root, 'control', 'user'), 'utf8')).toBe('nobody\n');
    const nobody = Number((await run('id', ['-u', 'nobody'])).stdout.trim());
    for (const p of ['', 'control', 'control/servercert.pem', 'queue', 'alias/Maildir/new']) expect((await stat(join(root, p))).uid).toBe(nobody);
    await quail(['vadddomain', '--root', root, 'example.test', 'Postmaster-1']);
    await quail(['vadduser', '--root', root, 'joe@example.test', 'Secret-1']);
    expect((await stat(join(root, 'domains', 'example.test', 'joe', 'Maildir', 'new'))).uid).toBe(nobody);
    const offline = await quail(['inject', '--root', root, 'joe@example.test'], { input: 'Subject: queued as root\n\nwhile no daemon ran\n' });
    expect(offline.code).toBe(0);

    daemon = new Daemon(['start', '--root', root]);
    await daemon.waitFor(/privileges dropped to nobody/);
    await daemon.waitFor(/serving with plugins/);
    const worker = Number(/quail\/worker: up \(pid (\d+)\)/.exec((await quail(['ctl', 'stat', '--root', root])).stdout)![1]);
    const status = await readFile(`/proc/${worker}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${nobody}\\s+${nobody}\\s+${nobody}\\s+${nobody}$`, 'm'));
    await run('python3', ['-c', SEND, String(smtp), 'joe@example.test', 'as nobody']);
    const maildir = join(root, 'domains', 'example.test', 'joe', 'Maildir', 'new');
    const files = await eventually(async () => {
      const names = await readdir(maildir);
      return names.length >= 2 ? names : undefined;
    }, 'both messages delivered');
    for (const f of files) expect((await stat(join(maildir, f))).uid).toBe(nobody);
  }, 120_000);
});
