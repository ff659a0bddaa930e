import { chown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Hands a tree to the daemon's account (what qmail's install does for its
 * users): every directory and regular file below `dir`, symlinks left alone.
 */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  let info;
  try {
    info = await lstat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (info.isSymbolicLink()) return;
  if (info.uid !== uid || info.gid !== gid) await chown(dir, uid, gid);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() || entry.isFile()) await chownTree(path, uid, gid);
  }
}
