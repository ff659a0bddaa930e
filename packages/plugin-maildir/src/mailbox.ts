import fs, { createReadStream } from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCodes, QuailError, type Logger, type Mailbox, type MailboxMessage } from '@quail/core';
import { CrlfCounter, LineConverter, type LineConversion } from './crlf.js';
import { errnoCode, temporary } from './errors.js';
import { assertUid, curName, deliveryTime, normaliseFlags, parseFileName, sizeField, type MaildirFileName } from './file-name.js';
import { quotaRoot } from './folders.js';
import { MaildirSizeFile } from './quota.js';
import type { UniqueNames } from './unique-name.js';

/** tmp/ files untouched this long are debris of a crashed delivery (qmail-pop3d: 36 hours). */
export const TMP_MAX_AGE_MS = 36 * 3600 * 1000;

/** Renames in flight at once while new/ is moved into cur/. */
const MOVERS = 4;
/** Attempts to reach a message whose file moved while it was being accessed. */
const ACCESS_ATTEMPTS = 5;

export interface ListOptions {
  /** Move new/ into cur/ (with `:2,`) and clean old tmp/ files, as qmail-pop3d does. */
  moveNew?: boolean;
  /**
   * With `moveNew`: answer as soon as both directories are read and do the
   * moves afterwards; the listing is already what it will be after them.
   * Every other call on this mailbox works during the moves; `finishMoves()`
   * waits for them.
   */
  moveInBackground?: boolean;
}

interface Entry extends MailboxMessage {
  /** 'new' or 'cur'. */
  dir: string;
  /** The file name in that directory. */
  name: string;
  /** A rename or unlink of this file in flight: nothing else touches the file until it settles. */
  busy?: Promise<void>;
}

/** One maildir opened for reading: what POP3 (and other readers) work with. */
export class MaildirMailbox implements Mailbox {
  readonly path: string;
  readonly #names: UniqueNames;
  readonly #log: Logger | undefined;
  #entries = new Map<string, Entry>();
  /** CRLF sizes computed by reading, for names without `,W=`. */
  readonly #measured = new Map<string, { size: number; crlfSize: number }>();
  /** The moves of new/ into cur/ (and the tmp/ cleaning) started by `list`. */
  #moves: Promise<void> = Promise.resolve();
  /** The maildir whose maildirsize counts removals from this one (looked up once). */
  #quotaRoot?: Promise<string>;

  constructor(path: string, names: UniqueNames, log?: Logger) {
    this.path = path;
    this.#names = names;
    this.#log = log;
  }

  async list(options: ListOptions = {}): Promise<MailboxMessage[]> {
    try {
      await this.#scan();
    } catch (err) {
      throw temporary(`Unable to read maildir ${this.path}`, err);
    }
    const entries = [...this.#entries.values()].sort((a, b) => a.date.getTime() - b.date.getTime() || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
    if (options.moveNew) {
      // Oldest first, the order in which clients usually retrieve.
      const moving = this.#moveNew(entries.filter((e) => e.dir === 'new'));
      this.#moves = Promise.all([this.#moves, moving]).then(() => undefined);
      if (!options.moveInBackground) await moving;
    }
    return entries.map(({ uid, size, crlfSize, flags, date }) => ({ uid, size, crlfSize, flags, date }));
  }

  /** Resolves once every move of new/ into cur/ started by `list` is done. */
  finishMoves(): Promise<void> {
    return this.#moves;
  }

  async read(uid: string, options: LineConversion = {}): Promise<Readable> {
    const { fh } = await this.#withEntry(uid, async (entry) => ({ fh: await open(join(this.path, entry.dir, entry.name), 'r') }));
    const stream = fh.createReadStream({ highWaterMark: 64 * 1024 });
    if (!options.crlf && options.bodyLines === undefined) return stream;
    const converter = new LineConverter(options);
    async function* converted(): AsyncGenerator<Buffer> {
      for await (const chunk of stream) {
        for (const part of converter.convert(chunk as Buffer)) yield part;
        if (converter.done) break;
      }
    }
    return Readable.from(converted(), { objectMode: false });
  }

  /**
   * Reads the message as stored with one open, one read and one close, and
   * hands the bytes to `consume` at once; they are valid only during that call
   * (the space is reused). Resolves with what `consume` returned, or undefined
   * without calling it when the file has more than `maxBytes` octets (use `read`).
   * The read is synchronous: for a small file in the page cache that costs less
   * than a trip through the thread pool.
   */
  async readWhole<T>(uid: string, maxBytes: number, consume: (message: Buffer) => T): Promise<T | undefined> {
    const read = (entry: Entry): T | undefined => {
      if (entry.size > maxBytes) return undefined;
      const message = readSmallFile(`${this.path}/${entry.dir}/${entry.name}`, entry.size + 1);
      return message === undefined ? undefined : consume(message);
    };
    const entry = this.#entries.get(uid);
    if (entry && !entry.busy) {
      try {
        return read(entry);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw temporary(`Unable to access message ${uid} in ${this.path}`, err);
      }
    }
    return this.#withEntry(uid, async (found) => read(found));
  }

  async setFlags(uid: string, change: { add?: string; remove?: string }): Promise<void> {
    await this.#withEntry(uid, async (entry) => {
      while (entry.busy) await settled(entry.busy);
      const drop = new Set(normaliseFlags(change.remove ?? ''));
      const flags = normaliseFlags([...entry.flags + (change.add ?? '')].filter((f) => !drop.has(f)).join(''));
      const name = curName(entry.uid, flags);
      if (entry.dir === 'cur' && entry.name === name) return;
      await this.#moveIntoCur(entry, name);
    });
  }

  async remove(uid: string): Promise<void> {
    const entry = await this.#withEntry(uid, async (found) => {
      while (found.busy) await settled(found.busy);
      await this.#exclusive(found, unlink(join(this.path, found.dir, found.name)));
      this.#entries.delete(uid);
      return found;
    });
    try {
      this.#quotaRoot ??= quotaRoot(this.path);
      new MaildirSizeFile(await this.#quotaRoot, this.#names).record(-entry.size, -1);
    } catch (err) {
      this.#log?.warn({ err, maildir: this.path }, `unable to update maildirsize after removing ${uid}`);
    }
  }

  /**
   * Runs `fn` on the message's entry. When the file is not where the entry says,
   * follows a move of this mailbox's own, or rescans once (another reader moved it).
   */
  async #withEntry<T>(uid: string, fn: (entry: Entry) => Promise<T>): Promise<T> {
    assertUid(uid);
    let rescanned = false;
    let entry = this.#entries.get(uid);
    for (let attempt = 0; attempt < ACCESS_ATTEMPTS; attempt++) {
      if (!entry) {
        if (rescanned) break;
        await this.#rescan();
        rescanned = true;
        entry = this.#entries.get(uid);
        continue;
      }
      const place = `${entry.dir}/${entry.name}`;
      try {
        return await fn(entry);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw temporary(`Unable to access message ${uid} in ${this.path}`, err);
      }
      if (entry.busy) await settled(entry.busy);
      if (`${entry.dir}/${entry.name}` !== place) continue;
      if (rescanned) break;
      await this.#rescan();
      rescanned = true;
      entry = this.#entries.get(uid);
    }
    throw new QuailError(ErrorCodes.INVALID, `no message ${uid} in ${this.path}`);
  }

  async #rescan(): Promise<void> {
    try {
      await this.#scan();
    } catch (err) {
      throw temporary(`Unable to read maildir ${this.path}`, err);
    }
  }

  /** Moves the listed new/ messages into cur/, a few renames at a time, then cleans tmp/. Never rejects. */
  async #moveNew(entries: Entry[]): Promise<void> {
    let next = 0;
    const mover = async () => {
      while (next < entries.length) {
        const entry = entries[next++]!;
        // setFlags or remove may have dealt with it already.
        if (entry.dir !== 'new' || entry.busy || this.#entries.get(entry.uid) !== entry) continue;
        const target = entry.name.includes(':') ? entry.name : `${entry.name}:2,`;
        try {
          await this.#moveIntoCur(entry, target);
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') this.#log?.warn({ err, maildir: this.path }, `unable to move ${entry.name} into cur/`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MOVERS, entries.length) }, mover));
    await this.#cleanTmp();
  }

  /** Renames the entry's file to cur/`name`; the entry follows once the rename is done. */
  #moveIntoCur(entry: Entry, name: string): Promise<void> {
    const moved = rename(join(this.path, entry.dir, entry.name), join(this.path, 'cur', name)).then(() => {
      Object.assign(entry, { dir: 'cur', name, flags: parseFileName(name).flags });
    });
    return this.#exclusive(entry, moved);
  }

  /** Marks `entry` busy until `operation` settles. */
  #exclusive<T>(entry: Entry, operation: Promise<T>): Promise<T> {
    const busy = settled(operation).then(() => {
      if (entry.busy === busy) entry.busy = undefined;
    });
    entry.busy = busy;
    return operation;
  }

  async #cleanTmp(): Promise<void> {
    const tmp = join(this.path, 'tmp');
    let names: string[];
    try {
      names = await visibleNames(tmp);
    } catch (err) {
      this.#log?.warn({ err, maildir: this.path }, 'unable to read tmp/ for cleaning');
      return;
    }
    for (const name of names) {
      try {
        const info = await stat(join(tmp, name));
        if (info.isFile() && Date.now() - info.atimeMs > TMP_MAX_AGE_MS) await unlink(join(tmp, name));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') this.#log?.warn({ err, file: join(tmp, name) }, 'unable to clean a stale tmp/ file');
      }
    }
  }

  /**
   * Reads new/ and then cur/ (a file moving from new/ to cur/ meanwhile is seen
   * at least once). Entries of messages still present are kept as they are, so
   * that a move in flight finds its entry; the rest are taken from the names.
   */
  async #scan(): Promise<void> {
    const entries = new Map<string, Entry>();
    for (const dir of ['new', 'cur']) {
      for (const name of await visibleNames(join(this.path, dir))) {
        const colon = name.indexOf(':');
        const uid = colon < 0 ? name : name.slice(0, colon);
        if (entries.has(uid)) continue;
        const known = this.#entries.get(uid);
        if (known && (known.busy || (known.dir === dir && known.name === name))) {
          entries.set(uid, known);
          continue;
        }
        const entry = this.#entryFromName(dir, name, uid, colon, known) ?? (await this.#entryFromFile(dir, name, parseFileName(name), known));
        if (!entry) continue;
        if (known) {
          Object.assign(known, { dir: entry.dir, name: entry.name, flags: entry.flags });
          entries.set(uid, known);
        } else entries.set(uid, entry);
      }
    }
    this.#entries = entries;
  }

  /**
   * The entry when the name (or an earlier measurement) gives sizes and date,
   * parsed in place (a login lists thousands); undefined when the file must be looked at.
   */
  #entryFromName(dir: string, name: string, uid: string, colon: number, known: Entry | undefined): Entry | undefined {
    let size = sizeField(uid, ',S=');
    let crlfSize = sizeField(uid, ',W=');
    if (size === undefined || crlfSize === undefined) {
      const measured = this.#measured.get(uid);
      size ??= measured?.size;
      crlfSize ??= measured?.crlfSize;
    }
    const time = deliveryTime(uid);
    const date = time === undefined ? known?.date : new Date(time);
    if (size === undefined || crlfSize === undefined || date === undefined) return undefined;
    const flags = dir === 'cur' && colon >= 0 && name.startsWith('2,', colon + 1) ? normaliseFlags(name.slice(colon + 3)) : '';
    return { uid, size, crlfSize, flags, date, dir, name };
  }

  /** Sizes and date of mail written by other software: stat, and one read for the CRLF size. */
  async #entryFromFile(dir: string, name: string, parsed: MaildirFileName, known: Entry | undefined): Promise<Entry | undefined> {
    let size = parsed.size ?? this.#measured.get(parsed.uid)?.size;
    let crlfSize = parsed.crlfSize ?? this.#measured.get(parsed.uid)?.crlfSize;
    let date = parsed.time ?? known?.date;
    const file = join(this.path, dir, name);
    try {
      if (size === undefined || date === undefined) {
        const info = await stat(file);
        size ??= info.size;
        date ??= info.mtime;
      }
      if (crlfSize === undefined) {
        const counter = new CrlfCounter();
        for await (const chunk of createReadStream(file)) counter.update(chunk as Buffer);
        if (parsed.size === undefined) size = counter.bytes;
        crlfSize = parsed.size === undefined ? counter.crlfBytes : size + counter.bareLineFeeds;
        this.#measured.set(parsed.uid, { size, crlfSize });
      }
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    return { uid: parsed.uid, size, crlfSize, flags: dir === 'cur' ? parsed.flags : '', date, dir, name };
  }
}

function settled(promise: Promise<unknown>): Promise<void> {
  return promise.then(
    () => undefined,
    () => undefined,
  );
}

/** The largest read space kept between reads; larger files get space of their own. */
const READ_SPACE_LIMIT = 1024 * 1024;
/** The space `readSmallFile` reads into, grown to the largest file read (up to READ_SPACE_LIMIT). */
let readSpace = Buffer.allocUnsafe(64 * 1024);

/**
 * Reads a file with one open, one read and one close, into the shared read
 * space when it fits. `capacity` is one more than the expected size: a short
 * read is the end of the file; a full one means the file is larger than
 * expected (undefined). The bytes stay valid until the next call.
 */
function readSmallFile(path: string, capacity: number): Buffer | undefined {
  if (readSpace.length < capacity && capacity <= READ_SPACE_LIMIT) readSpace = Buffer.allocUnsafe(capacity);
  const space = readSpace.length >= capacity ? readSpace : Buffer.allocUnsafe(capacity);
  const fd = fs.openSync(path, 'r');
  try {
    const bytesRead = fs.readSync(fd, space, 0, capacity, 0);
    return bytesRead < capacity ? space.subarray(0, bytesRead) : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

async function visibleNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => !name.startsWith('.'));
}
