import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, QuailError } from '@quail/core';

/** qmail's paternalism: bits that must not be set on what decides where mail goes (other-write). */
const FORBIDDEN = 0o002;

/**
 * Refuses to serve from a root whose control files anybody may change: the
 * root, control/ and every control file must not be writable by others
 * (control/plugins names code the daemon loads).
 */
export async function checkControlPermissions(root: string): Promise<void> {
  const control = join(root, 'control');
  const paths = [root, control];
  try {
    for (const name of await readdir(control)) paths.push(join(control, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const path of paths) {
    let mode: number;
    try {
      const info = await lstat(path);
      if (info.isSymbolicLink()) continue;
      mode = info.mode;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (mode & FORBIDDEN) {
      const shown = path === root ? root : path.slice(root.length + 1);
      throw new QuailError(
        ErrorCodes.PERMANENT,
        `${shown} is writable by everyone (mode ${(mode & 0o7777).toString(8)}): anyone could change where mail goes; fix it with chmod o-w ${path}`,
      );
    }
  }
}
