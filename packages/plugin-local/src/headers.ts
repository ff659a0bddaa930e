import type { Readable } from 'node:stream';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ATOM_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** No line breaks may survive into a header line built from an address. */
function flat(text: string): string {
  return text.replace(/[\r\n]/g, '_');
}

/** An address as qmail writes it in headers: the local part quoted when it is not a dot-atom. */
export function quoteAddress(address: string): string {
  if (address === '') return '';
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at);
  const quoted = ATOM_LOCAL.test(local) ? local : `"${local.replace(/(["\\])/g, '\\$1')}"`;
  return flat(quoted + domain);
}

/** `Return-Path: <sender>` LF (`<>` for the null sender). */
export function returnPathLine(sender: string): string {
  return `Return-Path: <${quoteAddress(sender)}>\n`;
}

/** `Delivered-To: local@host` LF, line breaks in the address written as `_`. */
export function deliveredToLine(address: string): string {
  return `Delivered-To: ${flat(address)}\n`;
}

/** The mbox `From ` line: `From sender Tue Mar 05 09:04:01 2024` LF, UTC, MAILER-DAEMON for the null sender. */
export function mboxFromLine(sender: string, when: Date): string {
  const who = sender === '' ? 'MAILER-DAEMON' : sender.replace(/[ \t\r\n]/g, '-');
  const pad = (n: number) => String(n).padStart(2, '0');
  const date = `${DAYS[when.getUTCDay()]} ${MONTHS[when.getUTCMonth()]} ${pad(when.getUTCDate())} ${pad(when.getUTCHours())}:${pad(when.getUTCMinutes())}:${pad(when.getUTCSeconds())} ${when.getUTCFullYear()}`;
  return `From ${who} ${date}\n`;
}

/** Most header bytes looked at for the loop check. */
const HEADER_LIMIT = 1024 * 1024;

/**
 * True when the header (up to the first empty line) holds a line identical to
 * `line` (given without its LF): qmail-local's loop check.
 */
export async function headerHasLine(stream: Readable, line: string): Promise<boolean> {
  const wanted = Buffer.from(line);
  /** The current line so far, while it could still be the wanted one. */
  let partial: Buffer | undefined = Buffer.alloc(0);
  let seen = 0;
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      let pos = 0;
      for (let lf = buf.indexOf(0x0a); lf >= 0; lf = buf.indexOf(0x0a, pos)) {
        const piece = buf.subarray(pos, lf);
        let whole = partial === undefined ? undefined : Buffer.concat([partial, piece]);
        if (whole && whole.length > 0 && whole[whole.length - 1] === 0x0d) whole = whole.subarray(0, -1);
        if (whole !== undefined && whole.length === 0) return false;
        if (whole?.equals(wanted)) return true;
        partial = Buffer.alloc(0);
        pos = lf + 1;
      }
      const rest = buf.subarray(pos);
      if (partial !== undefined) partial = partial.length + rest.length > wanted.length + 1 ? undefined : Buffer.concat([partial, rest]);
      seen += buf.length;
      if (seen >= HEADER_LIMIT) return false;
    }
    return partial !== undefined && partial.equals(wanted);
  } finally {
    stream.destroy();
  }
}
