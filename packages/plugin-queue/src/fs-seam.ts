import { closeSync, fdatasync, open, rename, unlink, watch, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, utimes } from 'node:fs/promises';
import { fsyncDir } from '@quail/core';

/**
 * The file-system calls the disk queue makes, gathered in one object so that a
 * test can inject faults (ENOSPC, EIO) at any step without touching the disk.
 * Files are plain descriptors (numbers).
 */
export interface QueueFs {
  open(path: string, flags: string, mode?: number): Promise<number>;
  close(fd: number): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  readdir(path: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  stat(path: string): Promise<{ size: number; mtimeMs: number; ino: number }>;
  utimes(path: string, atime: Date, mtime: Date): Promise<void>;
  /** Writes all of `data` at the descriptor's position. */
  write(fd: number, data: Buffer | string): Promise<void>;
  /**
   * Makes a file's data durable: fdatasync, which also writes the size and block
   * map (what reading the data needs) but skips timestamps. The file's NAME is
   * made durable separately, by an fsync of its directory.
   */
  sync(fd: number): Promise<void>;
  /** fsync of a directory, so that names created or removed in it are durable. */
  syncDir(path: string): Promise<void>;
  /** Reports names created or removed in a directory; returns a function that stops watching. */
  watch(dir: string, onName: (name: string) => void, onError: (err: Error) => void): () => void;
}

/** Runs a synchronous call and hands its outcome over as a promise. */
function now<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (err) {
    return Promise.reject(err);
  }
}

function callback(resolve: () => void, reject: (err: unknown) => void) {
  return (err: NodeJS.ErrnoException | null) => (err ? reject(err) : resolve());
}

/**
 * The real file system. Writing a message into the page cache and closing a
 * file run synchronously: each takes microseconds, and a trip through libuv's
 * thread pool costs more CPU than the call itself. Everything that changes a
 * directory (open with O_CREAT, rename, unlink, opening a directory to
 * fsync it) runs in the thread pool: on ext4 those calls wait for the running
 * journal transaction, which the queue's own fsyncs keep busy, and done
 * synchronously they stalled the event loop for 0.1-0.3 ms each under load.
 * A directory fsync is core's `fsyncDir`.
 */
export const nodeQueueFs: QueueFs = {
  open: (path, flags, mode) => new Promise<number>((resolve, reject) => open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd)))),
  close: (fd) => now(() => closeSync(fd)),
  readFile: (path) => readFile(path),
  readdir: (path) => readdir(path),
  rename: (from, to) => new Promise<void>((resolve, reject) => rename(from, to, callback(resolve, reject))),
  unlink: (path) => new Promise<void>((resolve, reject) => unlink(path, callback(resolve, reject))),
  mkdir: async (path) => {
    await mkdir(path, { recursive: true, mode: 0o750 });
  },
  stat: (path) => stat(path),
  utimes: (path, atime, mtime) => utimes(path, atime, mtime),
  write: (fd, data) =>
    now(() => {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    }),
  sync: (fd) => new Promise<void>((resolve, reject) => fdatasync(fd, callback(resolve, reject))),
  watch: (dir, onName, onError) => {
    const watcher = watch(dir, (_event, name) => {
      if (typeof name === 'string') onName(name);
    });
    watcher.on('error', onError);
    return () => watcher.close();
  },
  syncDir: fsyncDir,
};

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
