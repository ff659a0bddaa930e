import { constants } from 'node:fs';
import { chown, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MessageSource } from '@quail/core';
import { FromQuoting } from './from-quoting.js';

/** How long to wait for another writer's lock (qmail: 30 seconds). */
export const MBOX_LOCK_TIMEOUT_MS = 30_000;
/** A lock file older than this was left by a crashed writer and is removed. */
const STALE_LOCK_MS = 10 * 60_000;

export class MboxError extends Error {
  constructor(
    message: string,
    readonly temporary: boolean,
  ) {
    super(message);
    this.name = 'MboxError';
  }
}

export interface MboxDelivery {
  /** The mbox `From ` line, Return-Path and Delivered-To, each ending in LF. */
  fromLine: string;
  header: string;
  source: MessageSource;
  /** Owner for a newly created mbox (when the daemon runs as root). */
  owner?: { uid: number; gid: number };
  lockTimeoutMs?: number;
}

/**
 * Appends one message to an mbox (mboxrd): locked with a `<file>.lock` dot lock
 * (the mail-spool convention Python's mailbox and mutt also honour), `From `
 * line, header lines, the message with `>From ` quoting, one blank line (two LFs
 * when the message lacked its final LF), fsync. A failed write truncates the
 * file back to its old length.
 */
export async function appendToMbox(path: string, delivery: MboxDelivery): Promise<void> {
  const unlock = await lock(path, delivery.lockTimeoutMs ?? MBOX_LOCK_TIMEOUT_MS);
  let fh: FileHandle | undefined;
  let oldLength = 0;
  try {
    let created = false;
    try {
      fh = await open(path, constants.O_WRONLY | constants.O_APPEND);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fh = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL, 0o600);
      created = true;
    }
    if (created && delivery.owner && process.getuid?.() === 0) await chown(path, delivery.owner.uid, delivery.owner.gid);
    oldLength = (await fh.stat()).size;
    const input = delivery.source.stream();
    try {
      await fh.write(delivery.fromLine + delivery.header);
      const quoting = new FromQuoting();
      input.on('error', (err) => quoting.destroy(err));
      input.pipe(quoting);
      for await (const chunk of quoting) await fh.write(chunk as Buffer);
      await fh.write(quoting.endedWithNewline ? '\n' : '\n\n');
      await fh.sync();
    } catch (err) {
      input.destroy();
      await fh.truncate(oldLength).catch(() => undefined);
      throw new MboxError(`Unable to write ${path}: ${describe(err)}. (#4.3.0)`, true);
    }
    const handle = fh;
    fh = undefined;
    await handle.close();
  } catch (err) {
    if (err instanceof MboxError) throw err;
    throw new MboxError(`Unable to open ${path}: ${describe(err)}. (#4.2.1)`, true);
  } finally {
    await fh?.close().catch(() => undefined);
    await unlock();
  }
}

async function lock(path: string, timeoutMs: number): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  const started = Date.now();
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      await fh.write(String(process.pid));
      await fh.close();
      return () => unlink(lockPath).catch(() => undefined);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new MboxError(`Unable to lock ${path}: ${code ?? describe(err)}. (#4.3.0)`, true);
    }
    const age = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > STALE_LOCK_MS) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() - started >= timeoutMs) throw new MboxError('File has been locked for 30 seconds straight. (#4.3.0)', true);
    await sleep(100);
  }
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'access denied';
  if (code === 'ENOENT') return 'file does not exist';
  if (code === 'ENOSPC') return 'disk full';
  return code ?? (err instanceof Error ? err.message : String(err));
}
