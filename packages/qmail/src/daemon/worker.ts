import 'reflect-metadata';
import { ConfigErrors, QuailError, Tokens, createLogger, ErrorCodes, type LogFormat, type Plugin, type Queue, type QuailServer } from '@quail/core';
import { createQmailServer } from '../preset.js';
import { join } from 'node:path';
import { presetControlDirectory } from '../showctl.js';
import { formatQread, formatQstat } from '@quail/plugin-queue';
import type { ControlResponse } from './control-socket.js';
import { WORKER_EXIT, type WorkerCommand, type WorkerMessage } from './ipc.js';
import { configuredAccount, dropPrivileges } from './privileges.js';
import { chownTree } from '../ownership.js';

/**
 * The daemon's worker process: one preset server (listeners, scheduler,
 * deliveries). The supervisor forks it, restarts it when it dies, and relays
 * the control socket's commands to it over the IPC channel.
 */
const root = process.env.QUAIL_ROOT!;
const format = (process.env.QUAIL_LOG_FORMAT ?? 'pretty') as LogFormat;
const stopSeconds = Number(process.env.QUAIL_STOP_TIMEOUT ?? 90);
const log = createLogger({ format });
const loaded: Plugin[] = [];
let stopping = false;
let running: QuailServer | undefined;

// installed before start: TERM/INT during start-up exit at once (whatever was acknowledged is already on disk); HUP and ALRM wait for the server
process.on('SIGTERM', () => (running ? void stop(running) : process.exit(WORKER_EXIT.ok)));
process.on('SIGINT', () => (running ? void stop(running) : process.exit(WORKER_EXIT.ok)));
process.on('SIGHUP', () => void running?.reload());
process.on('SIGALRM', () => void (running && queueOf(running)?.flush()));
// the supervisor is gone: nobody would restart or stop this worker, so stop gracefully
process.on('disconnect', () => (running ? void stop(running) : process.exit(WORKER_EXIT.temporary)));

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const account = configuredAccount(root);
  if (account && process.getuid?.() === 0) {
    // files written as root while no daemon ran (offline inject, v* commands) become the account's
    for (const dir of ['queue', 'domains', 'alias', 'users']) await chownTree(join(root, dir), account.uid, account.gid);
  }
  const server = createQmailServer({ root, logger: log, onPluginLoaded: (plugin) => loaded.push(plugin) });
  try {
    await server.start();
  } catch (err) {
    const permanent = err instanceof ConfigErrors || (err instanceof QuailError && err.code !== ErrorCodes.TEMPORARY);
    for (const line of (err as Error).message.split('\n')) log.fatal(`cannot start: ${line}`);
    process.exit(permanent ? WORKER_EXIT.permanent : WORKER_EXIT.temporary);
  }
  dropPrivileges(account, log);
  running = server;
  process.on('message', (m: WorkerCommand) => {
    if (m?.type !== 'cmd') return;
    handle(server, m).then(
      (response) => send({ type: 'reply', id: m.id, response }),
      (err: unknown) => send({ type: 'reply', id: m.id, response: { ok: false, error: (err as Error).message, exitCode: exitCodeOf(err) } }),
    );
  });
  send({ type: 'ready', plugins: server.plugins });
}

function exitCodeOf(err: unknown): number {
  return err instanceof QuailError && (err.code === ErrorCodes.INVALID || err.code === ErrorCodes.PERMANENT) ? 100 : 111;
}

function queueOf(server: QuailServer): Queue | undefined {
  return server.container.isRegistered(Tokens.Queue, true) ? server.resolve(Tokens.Queue) : undefined;
}

function needQueue(server: QuailServer): Queue {
  const queue = queueOf(server);
  if (!queue) throw new QuailError(ErrorCodes.STATE, 'no plugin provides the Queue service');
  return queue;
}

async function handle(server: QuailServer, m: WorkerCommand): Promise<ControlResponse> {
  switch (m.cmd) {
    case 'qstat':
      return { ok: true, text: formatQstat(await needQueue(server).stat()) };
    case 'queue': {
      const queue = needQueue(server);
      const list = [];
      for await (const info of queue.list()) list.push(info);
      return { ok: true, text: formatQstat(await queue.stat()) + list.map((m) => formatQread(m)).join("") };
    }
    case 'doqueue':
      await needQueue(server).flush();
      log.info('doqueue: retrying every deferred delivery now');
      return { ok: true, text: 'quail: deferred deliveries are being retried now\n' };
    case 'pause':
      needQueue(server).pause();
      log.info('deliveries paused');
      return { ok: true, text: 'quail: deliveries paused\n' };
    case 'cont':
      needQueue(server).resume();
      log.info('deliveries resumed');
      return { ok: true, text: 'quail: deliveries resumed\n' };
    case 'reload':
      return reload(server);
    case 'inject': {
      const receipt = await needQueue(server).enqueue(
        { sender: m.sender ?? '', recipients: m.recipients ?? [] },
        Buffer.from(m.body ?? Buffer.alloc(0)),
        { kind: 'local', uid: m.uid ?? -1 },
      );
      return { ok: true, text: `ok ${Math.floor(receipt.acceptedAt.getTime() / 1000)} qp ${receipt.qp}\n` };
    }
  }
}

/** Validates the control directory first so that the answer can name what is wrong; the server keeps the old config then. */
async function reload(server: QuailServer): Promise<ControlResponse> {
  try {
    await presetControlDirectory(root, loaded).load();
  } catch (err) {
    const reason = err instanceof ConfigErrors ? err.errors.map((e) => e.message).join('; ') : (err as Error).message;
    log.error(`reload refused, old configuration stays: ${reason}`);
    return { ok: false, error: `reload refused, old configuration stays: ${reason}`, exitCode: 100 };
  }
  const ok = await server.reload();
  return ok ? { ok: true, text: 'quail: control files reloaded\n' } : { ok: false, error: 'reload refused, old configuration stays (see the log)', exitCode: 100 };
}

async function stop(server: QuailServer): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info(`stopping: listeners close, sessions and deliveries in flight get up to ${stopSeconds} s`);
  const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), stopSeconds * 1000).unref());
  const result = await Promise.race([server.stop().then(() => 'stopped' as const), deadline]).catch((err: unknown) => {
    log.error({ err }, 'error while stopping');
    return 'error' as const;
  });
  if (result === 'timeout') log.warn(`stop deadline of ${stopSeconds} s passed; exiting with work in flight (it stays queued)`);
  process.exit(WORKER_EXIT.ok);
}

main().catch((err: unknown) => {
  log.fatal(`cannot start: ${(err as Error).message}`);
  process.exit(err instanceof QuailError && err.code !== ErrorCodes.TEMPORARY ? WORKER_EXIT.permanent : WORKER_EXIT.temporary);
});
