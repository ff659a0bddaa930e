import { readFile, stat } from 'node:fs/promises';
import { settled, stampOf } from '@quail/core';

/** Who owns a local address, as qmail-lspawn finds it. */
export interface LocalOwner {
  user: string;
  uid: number;
  gid: number;
  home: string;
  /** '' or '-': what separates the user's part from the extension in file names. */
  dash: string;
  ext: string;
}

interface Assignment {
  exact: boolean;
  /** Lower-cased local part (exact) or prefix (wildcard). */
  key: string;
  user: string;
  uid: number;
  gid: number;
  home: string;
  dash: string;
  /** ext (exact) or the `pre` put before the rest of the address (wildcard). */
  ext: string;
}

/** A line of users/assign that cannot be read; carries file and line for the log. */
export class AssignSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'AssignSyntaxError';
  }
}

/** Parses qmail's users/assign text: `=local:user:uid:gid:homedir:dash:ext:` and `+prefix:user:uid:gid:homedir:dash:pre:`, ending with `.`. */
export function parseUsersAssign(text: string, file = 'users/assign'): Assignment[] {
  const assignments: Assignment[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = i + 1;
    if (line === '.') break;
    if (line === '' && i === lines.length - 1) break;
    if (line.includes('\0')) throw new AssignSyntaxError(file, n, 'line contains NUL');
    const kind = line[0];
    if (kind !== '=' && kind !== '+') throw new AssignSyntaxError(file, n, 'line must start with = or +');
    const fields = line.slice(1).split(':');
    if (fields.length !== 8 || fields[7] !== '') throw new AssignSyntaxError(file, n, 'expected 7 fields each ended by :');
    const [key, user, uid, gid, home, dash, ext] = fields as [string, string, string, string, string, string, string];
    if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) throw new AssignSyntaxError(file, n, 'uid and gid must be numbers');
    if (!home.startsWith('/')) throw new AssignSyntaxError(file, n, 'home directory must be an absolute path');
    if (dash !== '' && dash !== '-') throw new AssignSyntaxError(file, n, 'dash must be empty or -');
    assignments.push({ exact: kind === '=', key: key.toLowerCase(), user, uid: Number(uid), gid: Number(gid), home, dash, ext });
  }
  return assignments;
}

/** Exact assignment first (the first of duplicates), else the longest wildcard prefix. */
export function findOwner(assignments: Assignment[], local: string): LocalOwner | undefined {
  const l = local.toLowerCase();
  const exact = assignments.find((a) => a.exact && a.key === l);
  if (exact) return owner(exact, exact.ext);
  let best: Assignment | undefined;
  for (const a of assignments) {
    if (!a.exact && l.startsWith(a.key) && (!best || a.key.length > best.key.length)) best = a;
  }
  return best && owner(best, best.ext + local.slice(best.key.length));
}

function owner(a: Assignment, ext: string): LocalOwner {
  return { user: a.user, uid: a.uid, gid: a.gid, home: a.home, dash: a.dash, ext };
}

/** users/assign read from disk, parsed again only when the file changes. */
export class UsersAssign {
  readonly path: string;
  #cache?: { stamp: string; assignments: Assignment[] };

  constructor(path: string) {
    this.path = path;
  }

  async lookup(local: string): Promise<LocalOwner | undefined> {
    return findOwner(await this.#load(), local);
  }

  async #load(): Promise<Assignment[]> {
    const statAt = Date.now();
    let info;
    try {
      info = await stat(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const stamp = stampOf(info);
    if (this.#cache?.stamp === stamp) return this.#cache.assignments;
    const assignments = parseUsersAssign(await readFile(this.path, 'utf8'), this.path);
    // a file changed within the last moments may change again without a new stamp: read it again next time
    this.#cache = settled(info, statAt) ? { stamp, assignments } : undefined;
    return assignments;
  }
}
