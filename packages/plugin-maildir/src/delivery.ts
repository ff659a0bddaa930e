import { closeSync, fsync, open, writeSync, writevSync } from 'node:fs';
import { link, lstat, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectorySyncs, type MessageSource } from '@quail/core';
import { CrlfCounter } from './crlf.js';
import { errnoCode, temporary } from './errors.js';
import type { UniqueNames } from './unique-name.js';

export interface WrittenMessage {
  /** The unique name, with `,S=` and `,W=`. */
  uid: string;
  /** The file in new/. */
  path: string;
  size: number;
  crlfSize: number;
  /** A keyed delivery found its earlier copy in new/ and stored nothing new. */
  repeated: boolean;
}

/** What `MailStore.deliver`'s `key` must look like (core's deliveryKey). */
export const DELIVERY_KEY = /^\d{1,12}\.M\d{6}Q[0-9a-f]{8,64}$/;

/** Name collisions tolerated before giving up (O_EXCL makes them harmless). */
const ATTEMPTS = 3;

/** new/ fsyncs shared by the deliveries of this process that run at the same time. */
const newDirectorySyncs = new DirectorySyncs();

/**
 * Delivers one message into a maildir the way the Maildir spec says: a fresh
 * file in tmp/ created exclusively, the header text and the message written,
 * fsync, close, a hard link into new/ (never over an existing name; rename where
 * the file system has no links), tmp/ entry removed, new/ fsynced (one fsync
 * serves the concurrent deliveries into the same new/: DirectorySyncs).
 * Any failure removes the tmp/ file and is temporary.
 *
 * The calls that create or remove names and the fsyncs run in libuv's thread
 * pool; writing into the page cache and closing run on the calling thread,
 * where they cost less than a trip through the pool (as in plugin-queue).
 *
 * With a `key` the name is `<key>.<host>` instead of a fresh one, so the same
 * delivery made twice (a retry after a crash between the link and the queue's
 * record of success) finds its first copy in new/ and stores no second one, and
 * a tmp/ file left by the crashed attempt is its own to replace.
 */
export async function writeIntoMaildir(dir: string, names: UniqueNames, prepend: Buffer, source: MessageSource, key?: string): Promise<WrittenMessage> {
  for (let attempt = 1; ; attempt++) {
    const base = key === undefined ? names.next().base : `${key}.${names.host}`;
    const tmpPath = join(dir, 'tmp', base);
    let fd: number | undefined;
    try {
      fd = await openExclusive(tmpPath);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST' && attempt < ATTEMPTS) {
        if (key !== undefined) await unlink(tmpPath).catch(() => undefined);
        continue;
      }
      throw temporary(`Unable to create a file in ${join(dir, 'tmp')}`, err);
    }
    let linked = false;
    try {
      const counter = new CrlfCounter();
      counter.update(prepend);
      // The header text goes out with the first chunk of the message, in one writev.
      let unwritten = prepend.length > 0 ? [prepend] : [];
      for await (const chunk of source.stream()) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        counter.update(buf);
        unwritten.push(buf);
        writeAll(fd, unwritten);
        unwritten = [];
      }
      writeAll(fd, unwritten);
      await fsyncFile(fd);
      const written = fd;
      fd = undefined;
      closeSync(written);
      const uid = `${base},S=${counter.bytes},W=${counter.crlfBytes}`;
      const target = join(dir, 'new', uid);
      const result = { uid, path: target, size: counter.bytes, crlfSize: counter.crlfBytes };
      if (!(await publish(tmpPath, target))) {
        if (key !== undefined) return { ...result, repeated: true };
        if (attempt < ATTEMPTS) continue;
        throw temporary(`Unable to find a free name in ${join(dir, 'new')}`);
      }
      linked = true;
      await newDirectorySyncs.sync(join(dir, 'new'));
      return { ...result, repeated: false };
    } catch (err) {
      throw temporary(linked ? `Unable to sync ${join(dir, 'new')}` : `Temporary error on maildir delivery to ${dir}`, err);
    } finally {
      if (fd !== undefined) closeQuietly(fd);
      await unlink(tmpPath).catch(() => undefined);
    }
  }
}

function openExclusive(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'wx', 0o600, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function fsyncFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // the delivery already failed; the tmp/ file is removed next
  }
}

/** Moves the finished tmp/ file into new/; false when the name is taken there. */
async function publish(tmpPath: string, target: string): Promise<boolean> {
  try {
    await link(tmpPath, target);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  }
  try {
    await lstat(target);
    return false;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  await rename(tmpPath, target);
  return true;
}

/** Writes the buffers in order: one writev, then plain writes for whatever a short write left. */
function writeAll(fd: number, buffers: Buffer[]): void {
  if (buffers.length === 0) return;
  let skip = writevSync(fd, buffers);
  for (const buf of buffers) {
    let offset = Math.min(skip, buf.length);
    skip -= offset;
    while (offset < buf.length) offset += writeSync(fd, buf, offset, buf.length - offset);
  }
}
