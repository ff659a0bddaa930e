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

const ZERO = 0x30;
const NINE = 0x39;

/** Parses a name without regular expressions: readers list thousands of them per login. */
export function parseFileName(name: string): MaildirFileName {
  const colon = name.indexOf(':');
  const uid = colon < 0 ? name : name.slice(0, colon);
  const info = colon < 0 ? '' : name.slice(colon + 1);
  const flags = info.startsWith('2,') ? normaliseFlags(info.slice(2)) : '';
  const parsed: MaildirFileName = { uid, flags, info };
  const size = sizeField(uid, ',S=');
  if (size !== undefined) parsed.size = size;
  const crlfSize = sizeField(uid, ',W=');
  if (crlfSize !== undefined) parsed.crlfSize = crlfSize;
  const time = deliveryTime(uid);
  if (time !== undefined) parsed.time = new Date(time);
  return parsed;
}

/** The digits after the first `field` (`,S=`) that are followed by `,` or the end. */
export function sizeField(uid: string, field: string): number | undefined {
  for (let at = uid.indexOf(field); at >= 0; at = uid.indexOf(field, at + 1)) {
    const from = at + field.length;
    const end = digitsEnd(uid, from);
    if (end > from && (end === uid.length || uid.charCodeAt(end) === 0x2c)) return Number(uid.slice(from, end));
  }
  return undefined;
}

/**
 * Milliseconds from `<seconds>.` (1 to 12 digits) and, when the next part has
 * one, the `M<usec>` (1 to 6 digits) in it; undefined without the seconds.
 */
export function deliveryTime(uid: string): number | undefined {
  const secondsEnd = digitsEnd(uid, 0);
  if (secondsEnd === 0 || secondsEnd > 12 || uid.charCodeAt(secondsEnd) !== 0x2e) return undefined;
  const seconds = Number(uid.slice(0, secondsEnd));
  let partEnd = uid.indexOf('.', secondsEnd + 1);
  if (partEnd < 0) partEnd = uid.length;
  let usec = 0;
  for (let m = uid.indexOf('M', secondsEnd + 1); m >= 0 && m < partEnd; m = uid.indexOf('M', m + 1)) {
    const end = digitsEnd(uid, m + 1);
    if (end > m + 1 && end - m - 1 <= 6) {
      usec = Number(uid.slice(m + 1, end));
      break;
    }
  }
  return seconds * 1000 + Math.floor(usec / 1000);
}

function digitsEnd(text: string, from: number): number {
  let end = from;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    if (c < ZERO || c > NINE) break;
    end++;
  }
  return end;
}

/** Flags as Maildir writes them: single ASCII letters, each once, in ASCII order. */
export function normaliseFlags(flags: string): string {
  if (isNormalised(flags)) return flags;
  return [...new Set(flags.replace(/[^A-Za-z]/g, ''))].sort().join('');
}

function isNormalised(flags: string): boolean {
  let previous = 0;
  for (let i = 0; i < flags.length; i++) {
    const c = flags.charCodeAt(i);
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!letter || c <= previous) return false;
    previous = c;
  }
  return true;
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
