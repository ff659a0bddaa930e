// Haraka, one process (smtp.ini has no `nodes`), with a queue plugin that writes
// each message to its own file and fsyncs the file and its directory before
// answering 250: the same "accepted durably" meaning as quail's queue.
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, stopProcess } from '../lib/proc.mjs';
import { freePort, waitForGreeting, HOST } from '../lib/net.mjs';
import { ensureHaraka } from '../lib/install.mjs';

const QUEUE_PLUGIN = `'use strict'
// bench_fsync_queue: accept every recipient, store each message in its own file,
// fsync the file and the spool directory, then answer 250.
const fs = require('node:fs')
const path = require('node:path')

exports.register = function () {
  this.spool = process.env.HARAKA_BENCH_SPOOL
  this.serial = 0
  // the harness asks for a full collection before it reads RSS (run with --expose-gc)
  // (plugins run in a vm context; a fresh context sees the gc function the flag exposes)
  if (process.listenerCount('SIGUSR2') === 0) {
    require('node:v8').setFlagsFromString('--expose-gc')
    const gc = require('node:vm').runInNewContext('gc')
    process.on('SIGUSR2', () => gc())
  }
}

// no reverse DNS lookup per connection (Postfix: smtpd_peername_lookup = no, quail: no lookup)
exports.hook_lookup_rdns = function (next) {
  next(OK, 'localhost')
}

exports.hook_rcpt = function (next) {
  next(OK)
}

exports.hook_queue = function (next, connection) {
  const plugin = this
  const file = path.join(plugin.spool, process.pid + '.' + Date.now() + '.' + plugin.serial++)
  fs.open(file, 'wx', (err, fd) => {
    if (err) return next(DENYSOFT, 'spool open failed')
    const out = fs.createWriteStream(null, { fd, autoClose: false })
    out.on('error', () => fs.close(fd, () => next(DENYSOFT, 'spool write failed')))
    out.on('finish', () => {
      fs.fsync(fd, (syncErr) => {
        fs.close(fd, () => {
          if (syncErr) return next(DENYSOFT, 'spool fsync failed')
          fs.open(plugin.spool, 'r', (dirErr, dfd) => {
            if (dirErr) return next(DENYSOFT, 'spool dir open failed')
            fs.fsync(dfd, (dirSyncErr) => {
              fs.close(dfd, () => next(dirSyncErr ? DENYSOFT : OK))
            })
          })
        })
      })
    })
    connection.transaction.message_stream.pipe(out)
  })
}
`;

export async function startHaraka(dir, { peersDir }) {
  const harakaDir = await ensureHaraka(peersDir);
  const port = await freePort();
  const config = join(dir, 'config');
  const spool = join(dir, 'spool');
  await mkdir(join(config), { recursive: true });
  // Haraka's shipped defaults first (connection.ini and friends are required), then ours
  await cp(join(harakaDir, 'node_modules', 'Haraka', 'config'), config, { recursive: true });
  await mkdir(join(dir, 'plugins'), { recursive: true });
  await mkdir(spool, { recursive: true });
  await writeFile(join(config, 'smtp.ini'), `listen=${HOST}:${port}\nnodes=0\ninactivity_timeout=1200\n`);
  await writeFile(join(config, 'plugins'), 'bench_fsync_queue\n');
  await writeFile(join(config, 'log.ini'), '[main]\nlevel=warn\n');
  await writeFile(join(config, 'me'), 'haraka.bench.localhost\n');
  await writeFile(join(dir, 'plugins', 'bench_fsync_queue.js'), QUEUE_PLUGIN);
  const bin = join(harakaDir, 'node_modules', 'Haraka', 'haraka.js');
  if (!existsSync(bin)) throw new Error(`Haraka is not installed at ${bin}`);
  // haraka.js is the server that bin/haraka starts for `haraka -c <dir>`
  const child = startProcess('haraka', process.execPath, ['--expose-gc', bin], {
    log: join(dir, 'haraka.out'),
    env: { HARAKA: dir, HARAKA_BENCH_SPOOL: spool },
  });
  await waitForGreeting(port, '220', { child });
  return {
    name: 'haraka',
    port,
    pid: child.pid,
    child,
    dir,
    spool,
    async stop() {
      await stopProcess(child, 5000);
    },
  };
}
