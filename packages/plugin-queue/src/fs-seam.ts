import { watch } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';

/**
 * The file-system calls the disk queue makes, gathered in one object so that a
 * test can inject faults (ENOSPC, EIO) at any step without touching the disk.
 */
export interface QueueFs {
  open(path: string, flags: string, mode?: number): Promise<FileHandle>;
  readFile(path: string): Promise<Buffer>;
  readdir(path: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, target: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  stat(path: string): Promise<{ size: number; mtimeMs: number; ino: number }>;
  utimes(path: string, atime: Date, mtime: Date): Promise<void>;
  /** Writes all of `data` at the handle's position. */
  write(fh: FileHandle, data: Buffer | string): Promise<void>;
  /** fsync of a file handle. */
  sync(fh: FileHandle): Promise<void>;
  /** fsync of a directory, so that names created or removed in it are durable. */
  syncDir(path: string): Promise<void>;
  /** Reports names created or removed in a directory; returns a function that stops watching. */
  watch(dir: string, onName: (name: string) => void, onError: (err: Error) => void): () => void;
}

export const nodeQueueFs: QueueFs = {
  open: (path, flags, mode) => open(path, flags, mode),
  readFile: (path) => readFile(path),
  readdir: (path) => readdir(path),
  rename: (from, to) => rename(from, to),
  link: (existing, target) => link(existing, target),
  unlink: (path) => unlink(path),
  mkdir: async (path) => {
    await mkdir(path, { recursive: true, mode: 0o750 });
  },
  stat: (path) => stat(path),
  utimes: (path, atime, mtime) => utimes(path, atime, mtime),
  write: async (fh, data) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
  },
  sync: (fh) => fh.sync(),
  watch: (dir, onName, onError) => {
    const watcher = watch(dir, (_event, name) => {
      if (typeof name === 'string') onName(name);
    });
    watcher.on('error', onError);
    return () => watcher.close();
  },
  syncDir: async (path) => {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
