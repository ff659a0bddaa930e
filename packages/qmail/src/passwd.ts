import { readFileSync } from 'node:fs';
import { QuailError, ErrorCodes } from '@quail/core';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks an account up in /etc/passwd (getpwnam's job; node has no binding for it). */
export function lookupAccount(name: string, passwdFile = '/etc/passwd'): Account {
  if (!/^[a-z_][a-z0-9_.-]*\$?$/i.test(name)) throw new QuailError(ErrorCodes.INVALID, `not a valid account name: ${JSON.stringify(name)}`);
  let text: string;
  try {
    text = readFileSync(passwdFile, 'utf8');
  } catch (err) {
    throw new QuailError(ErrorCodes.TEMPORARY, `cannot read ${passwdFile}: ${(err as Error).message}`);
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 7) {
      const uid = Number(f[2]);
      const gid = Number(f[3]);
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { name, uid, gid, home: f[5] ?? '/' };
    }
  }
  throw new QuailError(ErrorCodes.INVALID, `no such account: ${name} (not in ${passwdFile})`);
}
