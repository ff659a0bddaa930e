import { createReadStream } from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCodes, QuailError, type Logger, type Mailbox, type MailboxMessage } from '@quail/core';
import { CrlfCounter, LineConverter, type LineConversion } from './crlf.js';
import { errnoCode, temporary } from './errors.js';
import { assertUid, curName, normaliseFlags, parseFileName } from './file-name.js';
import { quotaRoot } from './folders.js';
import { MaildirSizeFile } from './quota.js';
import type { UniqueNames } from './unique-name.js';

/** tmp/ files untouched this long are debris of a crashed delivery (qmail-pop3d: 36 hours). */
export const TMP_MAX_AGE_MS = 36 * 3600 * 1000;

interface Entry extends MailboxMessage {
  /** 'new' or 'cur'. */
  dir: string;
  /** The file name in that directory. */
  name: string;
}

/** One maildir opened for reading: what POP3 (and other readers) work with. */
export class MaildirMailbox implements Mailbox {
  readonly path: string;
  readonly #names: UniqueNames;
  readonly #log: Logger | undefined;
  #entries = new Map<string, Entry>();
  /** CRLF sizes computed by reading, for names without `,W=`. */
  readonly #measured = new Map<string, { size: number; crlfSize: number }>();

  constructor(path: string, names: UniqueNames, log?: Logger) {
    this.path = path;
    this.#names = names;
    this.#log = log;
  }

  async list(options: { moveNew?: boolean } = {}): Promise<MailboxMessage[]> {
    try {
      if (options.moveNew) {
        await this.#moveNew();
        await this.#cleanTmp();
      }
      await this.#scan();
    } catch (err) {
      throw temporary(`Unable to read maildir ${this.path}`, err);
    }
    return [...this.#entries.values()]
      .sort((a, b) => a.date.getTime() - b.date.getTime() || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0))
      .map(({ uid, size, crlfSize, flags, date }) => ({ uid, size, crlfSize, flags, date }));
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

  async setFlags(uid: string, change: { add?: string; remove?: string }): Promise<void> {
    await this.#withEntry(uid, async (entry) => {
      const drop = new Set(normaliseFlags(change.remove ?? ''));
      const flags = normaliseFlags([...entry.flags + (change.add ?? '')].filter((f) => !drop.has(f)).join(''));
      const name = curName(entry.uid, flags);
      if (entry.dir === 'cur' && entry.name === name) return;
      await rename(join(this.path, entry.dir, entry.name), join(this.path, 'cur', name));
      Object.assign(entry, { dir: 'cur', name, flags });
    });
  }

  async remove(uid: string): Promise<void> {
    const entry = await this.#withEntry(uid, async (found) => {
      await unlink(join(this.path, found.dir, found.name));
      return found;
    });
    this.#entries.delete(uid);
    try {
      await new MaildirSizeFile(await quotaRoot(this.path), this.#names).record(-entry.size, -1);
    } catch (err) {
      this.#log?.warn({ err, maildir: this.path }, `unable to update maildirsize after removing ${uid}`);
    }
  }

  /** Runs `fn` on the message's entry, rescanning once when the file moved (another reader). */
  async #withEntry<T>(uid: string, fn: (entry: Entry) => Promise<T>): Promise<T> {
    assertUid(uid);
    for (let attempt = 0; attempt < 2; attempt++) {
      if (attempt > 0 || !this.#entries.has(uid)) await this.#scan().catch((err) => Promise.reject(temporary(`Unable to read maildir ${this.path}`, err)));
      const entry = this.#entries.get(uid);
      if (!entry) break;
      try {
        return await fn(entry);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw temporary(`Unable to access message ${uid} in ${this.path}`, err);
      }
    }
    throw new QuailError(ErrorCodes.INVALID, `no message ${uid} in ${this.path}`);
  }

  async #moveNew(): Promise<void> {
    for (const name of await visibleNames(join(this.path, 'new'))) {
      const target = name.includes(':') ? name : `${name}:2,`;
      try {
        await rename(join(this.path, 'new', name), join(this.path, 'cur', target));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
  }

  async #cleanTmp(): Promise<void> {
    const tmp = join(this.path, 'tmp');
    for (const name of await visibleNames(tmp)) {
      try {
        const info = await stat(join(tmp, name));
        if (info.isFile() && Date.now() - info.atimeMs > TMP_MAX_AGE_MS) await unlink(join(tmp, name));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') this.#log?.warn({ err, file: join(tmp, name) }, 'unable to clean a stale tmp/ file');
      }
    }
  }

  async #scan(): Promise<void> {
    const entries = new Map<string, Entry>();
    for (const dir of ['new', 'cur']) {
      for (const name of await visibleNames(join(this.path, dir))) {
        const entry = await this.#entry(dir, name);
        if (entry && !entries.has(entry.uid)) entries.set(entry.uid, entry);
      }
    }
    this.#entries = entries;
  }

  /** Sizes and date from the name; stat and one read only for names that lack them. */
  async #entry(dir: string, name: string): Promise<Entry | undefined> {
    const parsed = parseFileName(name);
    const known = this.#entries.get(parsed.uid);
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

async function visibleNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => !name.startsWith('.'));
}
