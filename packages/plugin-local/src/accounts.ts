import { readFile } from 'node:fs/promises';

export interface Account {
  uid: number;
  gid: number;
}

/** The unprivileged account used for programs in root-owned dot-qmail files. */
export async function nobodyAccount(passwd = '/etc/passwd'): Promise<Account> {
  try {
    for (const line of (await readFile(passwd, 'utf8')).split('\n')) {
      const f = line.split(':');
      if (f[0] === 'nobody' && /^\d+$/.test(f[2] ?? '') && /^\d+$/.test(f[3] ?? '')) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // No readable passwd file: the conventional numbers below apply.
  }
  return { uid: 65534, gid: 65534 };
}

/** The account a program runs as: the file's owner, never root (root becomes `nobody`). */
export function programAccount(owner: Account, nobody: Account): Account {
  if (owner.uid === 0) return nobody;
  return { uid: owner.uid, gid: owner.gid === 0 ? nobody.gid : owner.gid };
}
