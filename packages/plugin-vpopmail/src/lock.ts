import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { temporary } from './errors.js';

/** Within one process, callers of the same lock file queue here before touching the file. */
const localQueues = new Map<string, Promise<unknown>>();

const BREAKER_STALE_MS = 10_000;

export interface LockOptions {
  /** Give up (QUAIL_E_TEMPORARY) after this long. */
  timeoutMs?: number;
}

/**
 * Runs `fn` holding an exclusive lock that works across processes: the lock is
 * a file made with link(2) (atomic; fails if it exists) holding `pid host`.
 * A lock whose process is gone on this host is broken, under a second lock so
 * that two waiters never both break it and one of them removes a fresh lock.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const previous = localQueues.get(path) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(async () => {
    const token = await acquire(path, options.timeoutMs ?? 30_000);
    try {
      return await fn();
    } finally {
      await release(path, token);
    }
  });
  localQueues.set(path, run);
  try {
    return await run;
  } finally {
    if (localQueues.get(path) === run) localQueues.delete(path);
  }
}

async function acquire(path: string, timeoutMs: number): Promise<string> {
  const token = `${process.pid} ${hostname()} ${randomBytes(6).toString('hex')}\n`;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, token, { mode: 0o600 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      try {
        await link(tmp, path);
        return token;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw temporary(`cannot create lock ${path}: ${(err as Error).message}`, err);
      }
      const holder = await readFile(path, 'utf8').catch(() => undefined);
      if (holder !== undefined && isStale(holder)) await breakStale(path, holder);
      else if (Date.now() > deadline) throw temporary(`${path} stays locked by ${describe(holder)}`);
      else await sleep(wait + Math.random() * wait);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function release(path: string, token: string): Promise<void> {
  const holder = await readFile(path, 'utf8').catch(() => undefined);
  if (holder === token) await unlink(path).catch(() => undefined);
}

/** A lock is stale when it names a process of this host that no longer exists. */
function isStale(holder: string): boolean {
  const [pid, host] = holder.split(' ');
  if (host !== hostname() || !/^\d+$/.test(pid ?? '')) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function breakStale(path: string, holder: string): Promise<void> {
  const breaker = `${path}.break`;
  try {
    await writeFile(breaker, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const info = await stat(breaker).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > BREAKER_STALE_MS) await unlink(breaker).catch(() => undefined);
    await sleep(5);
    return;
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now === holder) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

function describe(holder: string | undefined): string {
  const [pid, host] = (holder ?? '').split(' ');
  return pid ? `pid ${pid} on ${host}` : 'another process';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
