import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QuailError, ErrorCodes } from '@quail/core';
import { rootPaths } from '../root.js';
import { isNotRunning, request, type ControlRequest, type ControlResponse } from './control-socket.js';

/** Asks the running daemon; undefined when none runs in this root. */
export async function ask(root: string, req: ControlRequest, body?: Buffer, timeoutMs?: number): Promise<ControlResponse | undefined> {
  try {
    return await request(rootPaths(root).socket, req, body, timeoutMs);
  } catch (err) {
    if (isNotRunning(err)) return undefined;
    if ((err as NodeJS.ErrnoException).code === 'EACCES') {
      throw new QuailError(ErrorCodes.STATE, `permission denied on ${rootPaths(root).socket}: only the daemon's owner may use it`);
    }
    throw err;
  }
}

/** The daemon's pid when one answers in this root. */
export async function runningPid(root: string): Promise<number | undefined> {
  const answer = await ask(root, { cmd: 'ping' }, undefined, 5000);
  return answer?.ok ? Number(answer.text) : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `quail ctl start`: runs `quail start` detached, logging to log/quail (multilog), and waits until its server serves. */
export async function startDetached(root: string, waitMs = 30_000): Promise<number> {
  const paths = rootPaths(root);
  if (!existsSync(join(root, 'control'))) throw new QuailError(ErrorCodes.INVALID, `${root} has no control/ directory: run quail init ${root} first`);
  mkdirSync(paths.log, { recursive: true });
  const errFile = join(paths.log, 'start.err');
  const err = openSync(errFile, 'w', 0o600);
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'start', '--root', root, '--log-dir', join(paths.log, 'quail')], {
    detached: true,
    stdio: ['ignore', 'ignore', err],
    env: process.env,
  });
  closeSync(err);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const until = Date.now() + waitMs;
  while (Date.now() < until) {
    const state = await ask(root, { cmd: 'state' }, undefined, 5000).catch(() => undefined);
    if (state?.ok && state.text === 'serving\n') {
      const pid = await runningPid(root).catch(() => undefined);
      if (pid) return pid;
    }
    if (exited !== undefined) break;
    await sleep(100);
  }
  const why = lastLines(errFile) || lastLines(join(paths.log, 'quail', 'current'));
  throw new QuailError(exited === 100 ? ErrorCodes.INVALID : ErrorCodes.TEMPORARY, `the daemon did not start${exited !== undefined ? ` (exit ${exited})` : ''}${why ? `: ${why}` : ''}`);
}

function lastLines(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join('; ');
  } catch {
    return '';
  }
}

/** Waits until no daemon answers in the root. */
export async function waitStopped(root: string, waitMs: number): Promise<boolean> {
  const until = Date.now() + waitMs;
  while (Date.now() < until) {
    if (!(await runningPid(root).catch(() => undefined))) return true;
    await sleep(100);
  }
  return false;
}
