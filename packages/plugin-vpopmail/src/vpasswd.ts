import { quoted } from './errors.js';
import { userName } from './names.js';

/** One user of a domain: a vpasswd line (reference 9.4). */
export interface VpasswdEntry {
  name: string;
  /** crypt(3) hash, '' for none. */
  passwd: string;
  /** 1 = made for POP, 2 = made for APOP; nothing depends on it. */
  uid: number;
  /** Flag bits (see flags.ts). */
  gid: number;
  gecos: string;
  /** The user directory as written (absolute, as vpopmail writes it). */
  dir: string;
  /** Quota field, `NOQUOTA` or Maildir++ form. */
  quota: string;
  /** Clear-text password (field 8), when kept. */
  clear?: string;
}

/** A line of the file: parsed, or kept verbatim when it could not be (so rewrites never drop it). */
export interface VpasswdLine {
  raw: string;
  entry?: VpasswdEntry;
}

export interface ParsedVpasswd {
  lines: VpasswdLine[];
  /** Users by name; the first line of a name wins, as with vpopmail's cdb. */
  users: Map<string, VpasswdEntry>;
  /** `file:line: reason` for every line skipped. */
  warnings: string[];
}

const DECIMAL = /^\d{1,10}$/;

/** Parses vpasswd text. Tolerates 7 or 8 fields, CRLF and a missing final LF; bad lines are skipped with a warning. */
export function parseVpasswd(text: string, file: string): ParsedVpasswd {
  const lines: VpasswdLine[] = [];
  const users = new Map<string, VpasswdEntry>();
  const warnings: string[] = [];
  const raw = text.split('\n');
  if (raw[raw.length - 1] === '') raw.pop();
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i]!;
    const entry = parseLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    if (typeof entry === 'string') {
      warnings.push(`${file}:${i + 1}: ${entry}; line skipped`);
      lines.push({ raw: line });
    } else {
      lines.push(entry ? { raw: line, entry } : { raw: line });
      if (entry && !users.has(entry.name)) users.set(entry.name, entry);
    }
  }
  return { lines, users, warnings };
}

/** An entry, undefined for a blank line, or the reason the line is unusable. */
function parseLine(text: string): VpasswdEntry | undefined | string {
  if (text.trim() === '') return undefined;
  if (text.includes('\0')) return 'contains a NUL byte';
  const f = text.split(':');
  if (f.length < 7) return `${f.length} fields, 7 or 8 expected`;
  const name = userName(f[0]!);
  if (!name) return `invalid user name ${quoted(f[0]!.slice(0, 64))}`;
  if (!DECIMAL.test(f[3]!)) return `flags field (4) is not a number: ${quoted(f[3]!.slice(0, 20))}`;
  const entry: VpasswdEntry = {
    name,
    passwd: f[1]!,
    uid: DECIMAL.test(f[2]!) ? Number(f[2]) : 0,
    gid: Number(f[3]),
    gecos: f[4]!,
    dir: f[5]!,
    quota: f[6]!,
  };
  if (f.length > 7) entry.clear = f.length === 8 ? f[7]! : f.slice(7).join(':');
  return entry;
}

/** One vpasswd line (without LF); field 8 only when clear text is kept and known. */
export function formatVpasswdLine(e: VpasswdEntry, keepClear: boolean): string {
  const fields = [e.name, e.passwd, String(e.uid), String(e.gid), e.gecos, e.dir, e.quota];
  if (keepClear && e.clear !== undefined) fields.push(e.clear);
  return fields.join(':');
}
