import { ErrorCodes, QuailError } from '@quail/core';

/** What a Maildir file name says about its message, without opening it. */
export interface MaildirFileName {
  /** The unique name: everything before the first `:`. */
  uid: string;
  /** Flags from a `:2,` info part, sorted; '' otherwise. */
  flags: string;
  /** The info part as written (after the `:`), '' when there is none. */
  info: string;
  /** `,S=<n>`: octets as stored. */
  size?: number;
  /** `,W=<n>`: octets with CRLF line endings. */
  crlfSize?: number;
  /** Delivery time from the leading `<seconds>.` (and `M<usec>`), when the name has one. */
  time?: Date;
}

const SIZE = /,S=(\d+)(?=,|$)/;
const CRLF_SIZE = /,W=(\d+)(?=,|$)/;
const TIME = /^(\d{1,12})\.(?:[^.]*?M(\d{1,6})(?![0-9]))?/;

export function parseFileName(name: string): MaildirFileName {
  const colon = name.indexOf(':');
  const uid = colon < 0 ? name : name.slice(0, colon);
  const info = colon < 0 ? '' : name.slice(colon + 1);
  const flags = info.startsWith('2,') ? normaliseFlags(info.slice(2)) : '';
  const parsed: MaildirFileName = { uid, flags, info };
  const size = SIZE.exec(uid);
  if (size) parsed.size = Number(size[1]);
  const crlf = CRLF_SIZE.exec(uid);
  if (crlf) parsed.crlfSize = Number(crlf[1]);
  const time = TIME.exec(uid);
  if (time) parsed.time = new Date(Number(time[1]) * 1000 + Math.floor(Number(time[2] ?? 0) / 1000));
  return parsed;
}

/** Flags as Maildir writes them: single ASCII letters, each once, in ASCII order. */
export function normaliseFlags(flags: string): string {
  return [...new Set(flags.replace(/[^A-Za-z]/g, ''))].sort().join('');
}

/** The name of a message in cur/ with the given flags. */
export function curName(uid: string, flags: string): string {
  return `${uid}:2,${normaliseFlags(flags)}`;
}

/** Refuses anything that could not be a unique name (path tricks, NUL, leading dot). */
export function assertUid(uid: string): void {
  if (typeof uid !== 'string' || uid === '' || uid.startsWith('.') || /[/:\0\r\n]/.test(uid)) {
    throw new QuailError(ErrorCodes.INVALID, `not a Maildir message name: ${JSON.stringify(uid)}`);
  }
}
