import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ErrorCodes, type Mailbox, type MailboxMessage } from '@quail/core';
import { parseMessageNumber } from './command.js';

/** One message as the session numbers it. */
export interface DropMessage {
  /** 1-based message number, fixed for the session. */
  number: number;
  uid: string;
  /** The unique-id listing value (RFC 1939: 1-70 characters 0x21-0x7E). */
  uidl: string;
  /** Octets as transmitted (CRLF line ends). */
  size: number;
  deleted: boolean;
}

export type Lookup = { ok: true; message: DropMessage } | { ok: false; error: string };

/** Outcome of the UPDATE state. */
export interface UpdateResult {
  removed: number;
  failed: number;
}

/**
 * The maildrop of one POP3 session: the messages listed at login, numbered
 * oldest first, with the deletion marks of the session. Nothing on disk changes
 * until `update()` (QUIT); a session that ends any other way changes nothing.
 */
export class Maildrop {
  readonly mailbox: Mailbox;
  readonly messages: readonly DropMessage[];
  #highestDeleted = 0;

  constructor(mailbox: Mailbox, listed: readonly MailboxMessage[]) {
    this.mailbox = mailbox;
    this.messages = listed.map((m, i) => ({ number: i + 1, uid: m.uid, uidl: uidlOf(m.uid), size: m.crlfSize, deleted: false }));
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
   * The message as stored, optionally only the header and `bodyLines` body lines.
   * Line ends are turned into CRLF on the way out (DotStuffTransform), in large
   * chunks, which is much faster than converting line by line in the store.
   */
  read(message: DropMessage, bodyLines?: number): Promise<Readable> {
    return this.mailbox.read(message.uid, bodyLines === undefined ? {} : { bodyLines });
  }

  markSeen(message: DropMessage): Promise<void> {
    return this.mailbox.setFlags(message.uid, { add: 'S' });
  }

  /** The UPDATE state: removes every message marked deleted. A message already gone counts as removed. */
  async update(): Promise<UpdateResult> {
    let removed = 0;
    let failed = 0;
    for (const m of this.messages) {
      if (!m.deleted) continue;
      try {
        await this.mailbox.remove(m.uid);
        removed++;
      } catch (err) {
        // A message someone else removed already is gone as asked; anything else is kept and reported.
        const code = (err as { code?: unknown }).code;
        if (code === 'ENOENT' || code === ErrorCodes.INVALID) removed++;
        else failed++;
      }
    }
    return { removed, failed };
  }
}

/** Maildir unique names are used as they are when RFC 1939 allows; anything else is hashed to a stable id. */
export function uidlOf(uid: string): string {
  if (/^[\x21-\x7e]{1,70}$/.test(uid)) return uid;
  return createHash('sha256').update(uid).digest('hex').slice(0, 64);
}
