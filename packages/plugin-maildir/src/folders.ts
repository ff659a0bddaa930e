import { access, mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCodes, QuailError } from '@quail/core';
import { errnoCode } from './errors.js';

/** The directory of a Maildir++ folder (`Sent` or `.Sent` → `<maildir>/.Sent`). */
export function folderPath(maildir: string, folder: string): string {
  const name = folder.startsWith('.') ? folder.slice(1) : folder;
  const bad =
    name === '' ||
    /[/\\\0\r\n]/.test(name) ||
    name.split('.').some((part) => part === '') ||
    name.toLowerCase() === 'inbox';
  if (bad) throw new QuailError(ErrorCodes.INVALID, `not a Maildir++ folder name: ${JSON.stringify(folder)}`);
  return join(maildir, `.${name}`);
}

/** maildirmake: the directory and its tmp/, new/ and cur/, mode 0700; an existing maildir is left alone. */
export async function makeMaildir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const sub of ['tmp', 'new', 'cur']) {
    try {
      await mkdir(join(dir, sub), { mode: 0o700 });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
  }
}

/** Creates a Maildir++ folder: a maildir plus the empty `maildirfolder` marker file. */
export async function makeFolder(maildir: string, folder: string): Promise<string> {
  const dir = folderPath(maildir, folder);
  await makeMaildir(dir);
  const marker = await open(join(dir, 'maildirfolder'), 'a', 0o600);
  await marker.close();
  return dir;
}

/** The maildir whose `maildirsize` counts for `dir`: a folder's parent, else `dir` itself. */
export async function quotaRoot(dir: string): Promise<string> {
  try {
    await access(join(dir, 'maildirfolder'));
    return dirname(dir);
  } catch {
    return dir;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
