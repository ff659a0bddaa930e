/**
 * MAIL FROM / RCPT TO argument parsing: qmail-smtpd's forgiving rules (reference
 * 2.4) by default, RFC 5321's path syntax in strict mode.
 */

/** qmail-smtpd's only length check: addresses longer than this get 555. */
export const MAX_ADDRESS = 900;

export type ParsedPath =
  | { ok: true; address: string; params: Record<string, string | true> }
  | { ok: false; reason: 'syntax' | 'too-long' | 'params' };

/**
 * Parses the argument of MAIL/RCPT after the verb (`FROM: <a> SIZE=10`,
 * `TO: vorname`). `prefix` is `from` or `to`.
 */
export function parsePath(argument: string, prefix: 'from' | 'to', strict: boolean): ParsedPath {
  return strict ? parseStrict(argument, prefix) : parseQmail(argument);
}

function parseQmail(arg: string): ParsedPath {
  let raw: string;
  let rest: string;
  const lt = arg.indexOf('<');
  if (lt >= 0) {
    const end = scanTo(arg, lt + 1, (c) => c === '>');
    raw = arg.slice(lt + 1, end);
    rest = arg.slice(end + 1);
  } else {
    // RFC 821 violators: after the first colon, blanks skipped, up to the next unquoted blank
    const colon = arg.indexOf(':');
    let start = colon + 1;
    while (arg[start] === ' ') start++;
    const end = scanTo(arg, start, (c) => c === ' ');
    raw = arg.slice(start, end);
    rest = arg.slice(end);
  }
  const address = unquote(stripSourceRoute(raw));
  if (Buffer.byteLength(address) > MAX_ADDRESS) return { ok: false, reason: 'too-long' };
  // qmail would pass these on; quail keeps control characters out of envelopes and logs
  if (CONTROL.test(address)) return { ok: false, reason: 'syntax' };
  // qmail ignores whatever follows the address; quail reads SIZE and BODY from it
  return { ok: true, address, params: parseParams(rest) ?? {} };
}

const CONTROL = /[\0-\x1f\x7f]/;

function parseStrict(arg: string, prefix: 'from' | 'to'): ParsedPath {
  const m = new RegExp(`^${prefix}:<([^<>\\s]*)>(?: (.*))?$`, 'i').exec(arg);
  if (!m) return { ok: false, reason: 'syntax' };
  const address = stripSourceRoute(m[1]!);
  if (Buffer.byteLength(address) > MAX_ADDRESS) return { ok: false, reason: 'too-long' };
  if (address !== '' && !/^[^@\s"\\]+@[A-Za-z0-9.[\]:-]+$/.test(address) && !(prefix === 'to' && /^postmaster$/i.test(address))) {
    return { ok: false, reason: 'syntax' };
  }
  const params = parseParams(m[2] ?? '');
  return params ? { ok: true, address, params } : { ok: false, reason: 'params' };
}

/** Position of the first unquoted character satisfying `stop` (or the end), honouring `"` and `\`. */
function scanTo(text: string, from: number, stop: (c: string) => boolean): number {
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && stop(c)) return i;
  }
  return text.length;
}

/** `@a,@b:user@host` -> `user@host`. */
function stripSourceRoute(address: string): string {
  if (!address.startsWith('@')) return address;
  const colon = address.indexOf(':');
  return colon < 0 ? address : address.slice(colon + 1);
}

/** Double quotes only toggle quoting; a backslash makes the next character literal. */
function unquote(address: string): string {
  let out = '';
  for (let i = 0; i < address.length; i++) {
    const c = address[i]!;
    if (c === '\\' && i + 1 < address.length) out += address[++i];
    else if (c !== '"') out += c;
  }
  return out;
}

/** ESMTP parameters (`SIZE=123 BODY=8BITMIME`), keys upper-cased. Control characters refuse them. */
function parseParams(text: string): Record<string, string | true> | undefined {
  const params: Record<string, string | true> = {};
  for (const word of text.split(' ')) {
    if (word === '') continue;
    if (/[\0-\x1f\x7f]/.test(word)) return undefined;
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    if (key === '') continue;
    params[key] = eq < 0 ? true : word.slice(eq + 1);
  }
  return params;
}
