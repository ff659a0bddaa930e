import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, QuailError, type Clock, type Logger, type MailStore, type MessageSource, type Quota, type StoredMessage } from '@quail/core';
import { DELIVERY_KEY, writeIntoMaildir } from './delivery.js';
import { temporary } from './errors.js';
import { exists, folderPath, makeFolder, makeMaildir } from './folders.js';
import { MaildirMailbox } from './mailbox.js';
import { exceeds, hasLimit, MaildirSizeFile, type Usage } from './quota.js';
import { UniqueNames } from './unique-name.js';

export interface MaildirStoreOptions {
  /** Host part of unique names (default: os.hostname()). Each host sharing a maildir needs its own. */
  hostname?: string;
  /** Time for unique names (default: the system clock). */
  clock?: Pick<Clock, 'now'>;
  log?: Logger;
}

export interface DeliverOptions {
  /** Header text (LF line endings) written before the message: Return-Path, Delivered-To. */
  prepend?: string;
  /** Maildir++ quota checked and accounted in `maildirsize`. */
  quota?: Quota;
  /** Maildir++ folder (`Sent`, `Lists.qmail`); created when missing. */
  folder?: string;
  /** Names the delivery (core's deliveryKey): delivering the same key again stores no second copy. */
  key?: string;
}

/**
 * Maildir and Maildir++ storage: atomic deliveries, quota accounting, and
 * mailboxes for readers. Usable on its own: `new MaildirStore()`.
 */
export class MaildirStore implements MailStore {
  readonly #names: UniqueNames;
  readonly #log: Logger | undefined;

  constructor(options: MaildirStoreOptions = {}) {
    this.#names = new UniqueNames(options);
    this.#log = options.log;
  }

  async create(maildir: string): Promise<void> {
    try {
      await makeMaildir(maildir);
    } catch (err) {
      throw temporary(`Unable to create maildir ${maildir}`, err);
    }
  }

  /** Creates a Maildir++ folder of `maildir` and returns its directory. */
  async createFolder(maildir: string, folder: string): Promise<string> {
    const dir = folderPath(maildir, folder);
    try {
      return await makeFolder(maildir, folder);
    } catch (err) {
      throw temporary(`Unable to create folder ${dir}`, err);
    }
  }

  async deliver(maildir: string, source: MessageSource, options: DeliverOptions = {}): Promise<StoredMessage> {
    if (options.key !== undefined && !DELIVERY_KEY.test(options.key)) {
      throw new QuailError(ErrorCodes.INVALID, `not a delivery key: ${JSON.stringify(options.key.slice(0, 80))}`);
    }
    const target = options.folder === undefined ? maildir : await this.#deliveryFolder(maildir, options.folder);
    const prepend = Buffer.from(options.prepend ?? '');
    const sizeFile = new MaildirSizeFile(maildir, this.#names);
    if (hasLimit(options.quota)) {
      let usage: Usage;
      try {
        usage = await sizeFile.usage(options.quota);
      } catch (err) {
        throw temporary(`Unable to read the quota of ${maildir}`, err);
      }
      if (exceeds(options.quota, usage, prepend.length + source.size)) {
        throw new QuailError(ErrorCodes.QUOTA, `user is over quota (${maildir}: ${describeUsage(usage, options.quota)})`);
      }
    }
    const written = await writeIntoMaildir(target, this.#names, prepend, source, options.key);
    if (written.repeated) {
      this.#log?.info({ maildir, uid: written.uid }, `${written.uid} was already delivered: no second copy`);
      return { uid: written.uid, path: written.path, size: written.size, repeated: true };
    }
    try {
      sizeFile.record(written.size, 1);
    } catch (err) {
      this.#log?.warn({ err, maildir }, `delivered ${written.uid} but could not update maildirsize`);
    }
    return { uid: written.uid, path: written.path, size: written.size };
  }

  async open(maildir: string): Promise<MaildirMailbox> {
    try {
      const info = await stat(join(maildir, 'cur'));
      if (!info.isDirectory()) throw new QuailError(ErrorCodes.TEMPORARY, `${join(maildir, 'cur')} is not a directory`);
    } catch (err) {
      throw temporary(`Unable to open maildir ${maildir}`, err);
    }
    return new MaildirMailbox(maildir, this.#names, this.#log);
  }

  async usage(maildir: string): Promise<Usage> {
    try {
      return await new MaildirSizeFile(maildir, this.#names).currentUsage();
    } catch (err) {
      throw temporary(`Unable to count the usage of ${maildir}`, err);
    }
  }

  async #deliveryFolder(maildir: string, folder: string): Promise<string> {
    const dir = folderPath(maildir, folder);
    if (await exists(dir)) return dir;
    return this.createFolder(maildir, folder);
  }
}

function describeUsage(usage: Usage, quota: Quota): string {
  const parts: string[] = [];
  if ((quota.bytes ?? 0) > 0) parts.push(`${usage.bytes}/${quota.bytes} bytes`);
  if ((quota.messages ?? 0) > 0) parts.push(`${usage.messages}/${quota.messages} messages`);
  return parts.join(', ');
}
