import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ErrorCodes, type Logger, type Mailbox, type MailboxMessage } from '@quail/core';
import { parseMessageNumber } from './command.js';

/** One message as the session numbers it. */
export interface DropMessage {
  /** 1-based message number, fixed for the session. */
  number: number;
  /** The Maildir unique name; the UIDL value is `uidlOf(uid)`. */
  uid: string;
  /** Octets as transmitted (CRLF line ends). */
  size: number;
  deleted: boolean;
  /** RETR sent it whole: it is marked seen when the session ends. */
  retrieved: boolean;
}

export type Lookup = { ok: true; message: DropMessage } | { ok: false; error: string };

/** Outcome of the UPDATE state. */
export interface UpdateResult {
  removed: number;
  failed: number;
}

/** Renames or removals in flight at once when a session ends (seen flags, QUIT's deletions). */
const FILE_OPERATIONS = 8;

/**
 * The maildrop of one POP3 session: the messages listed at login, numbered
 * oldest first, with the deletion marks of the session. Deletions happen in
 * `update()` (QUIT) only. `close()` ends every session: retrieved messages are
 * marked seen, and the moves of new/ into cur/ begun at login are complete.
 */
export class Maildrop {
  readonly mailbox: Mailbox;
  readonly messages: readonly DropMessage[];
  #highestDeleted = 0;
  #closing?: Promise<void>;

  constructor(mailbox: Mailbox, listed: readonly MailboxMessage[]) {
    this.mailbox = mailbox;
    this.messages = listed.map((m, i) => ({ number: i + 1, uid: m.uid, size: m.crlfSize, deleted: false, retrieved: false }));
  }

  /**
   * Lists the mailbox for a session, moving new/ into cur/ as qmail-pop3d does.
   * A store that can (plugin-maildir's) answers at once and moves in the
   * background; the session sees the same sizes, numbers and uids either way.
   */
  static async open(mailbox: Mailbox): Promise<Maildrop> {
    return new Maildrop(mailbox, await mailbox.list({ moveNew: true, moveInBackground: true }));
  }

  /** Messages not marked deleted, and their octets (RFC 1939 STAT). */
  stat(): { count: number; octets: number } {
    let count = 0;
    let octets = 0;
    for (const m of this.messages) {
      if (m.deleted) continue;
      count++;
      octets += m.size;
    }
    return { count, octets };
  }

  /** The messages not marked deleted, in order. */
  live(): DropMessage[] {
    return this.messages.filter((m) => !m.deleted);
  }

  /** Looks up a message number argument with qmail-pop3d's error texts. */
  lookup(argument: string | undefined): Lookup {
    const parsed = parseMessageNumber(argument, this.messages.length);
    if (!parsed.ok) return parsed;
    const message = this.messages[parsed.value - 1]!;
    if (message.deleted) return { ok: false, error: 'already deleted' };
    return { ok: true, message };
  }

  delete(message: DropMessage): void {
    message.deleted = true;
    this.#highestDeleted = Math.max(this.#highestDeleted, message.number);
  }

  /** qmail-pop3d's LAST: the highest message number marked deleted, 0 after RSET. */
  get last(): number {
    return this.#highestDeleted;
  }

  reset(): void {
    for (const m of this.messages) m.deleted = false;
    this.#highestDeleted = 0;
  }

  /**
   * When the mailbox can read the message at once and it has at most `maxBytes`
   * octets: what `consume` makes of the stored bytes (valid only during the
   * call). Undefined otherwise (use `read`).
   */
  readWhole<T>(message: DropMessage, maxBytes: number, consume: (stored: Buffer) => T): Promise<T | undefined> {
    if (!this.mailbox.readWhole) return Promise.resolve(undefined);
    return this.mailbox.readWhole(message.uid, maxBytes, consume);
  }

  /**
   * The message as stored, optionally only the header and `bodyLines` body lines.
   * Line ends are turned into CRLF on the way out (DotStuffTransform), in large
   * chunks, which is much faster than converting line by line in the store.
   */
  read(message: DropMessage, bodyLines?: number): Promise<Readable> {
    return this.mailbox.read(message.uid, bodyLines === undefined ? {} : { bodyLines });
  }

  /** The UPDATE state: removes every message marked deleted. A message already gone counts as removed. */
  async update(): Promise<UpdateResult> {
    let removed = 0;
    let failed = 0;
    await eachLimited(
      this.messages.filter((m) => m.deleted),
      async (m) => {
        try {
          await this.mailbox.remove(m.uid);
          m.retrieved = false;
          removed++;
        } catch (err) {
          // A message someone else removed already is gone as asked; anything else is kept and reported.
          const code = (err as { code?: unknown }).code;
          if (code === 'ENOENT' || code === ErrorCodes.INVALID) {
            m.retrieved = false;
            removed++;
          } else failed++;
        }
      },
    );
    return { removed, failed };
  }

  /**
   * Ends the session's use of the mailbox (QUIT after `update()`, or a dropped
   * connection): marks the retrieved messages still there seen (`S`), and waits
   * until every message listed at login is in cur/. Runs once; never rejects.
   */
  close(log: Logger, conn: string): Promise<void> {
    this.#closing ??= this.#close(log, conn);
    return this.#closing;
  }

  async #close(log: Logger, conn: string): Promise<void> {
    await eachLimited(
      this.messages.filter((m) => m.retrieved),
      async (message) => {
        try {
          await this.mailbox.setFlags(message.uid, { add: 'S' });
        } catch (err) {
          log.warn({ conn, uid: message.uid, err }, 'cannot mark a message seen');
        }
      },
    );
    await this.mailbox.finishMoves?.();
  }
}

/** Runs `fn` on every item, FILE_OPERATIONS at a time; `fn` must not reject. */
async function eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(FILE_OPERATIONS, items.length) }, worker));
}

/** Maildir unique names are used as they are when RFC 1939 allows; anything else is hashed to a stable id. */
export function uidlOf(uid: string): string {
  if (/^[\x21-\x7e]{1,70}$/.test(uid)) return uid;
  return createHash('sha256').update(uid).digest('hex').slice(0, 64);
}
