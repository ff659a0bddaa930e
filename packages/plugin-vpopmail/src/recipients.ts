import { join } from 'node:path';
import { dotQmailSuffix, userName } from './names.js';
import type { VpopmailStore } from './store.js';
import type { VpasswdEntry } from './vpasswd.js';

/**
 * The `.qmail-<ext>` files qmail-local tries in the domain directory before
 * `.qmail-default`, in order: `a-b-c` gives `.qmail-a-b-c`, `.qmail-a-b-default`,
 * `.qmail-a-default`. Dots are written as `:`. An extension with `/` or NUL has none.
 */
export function extensionFiles(ext: string): string[] {
  const e = ext.toLowerCase();
  if (e === '' || /[/\0]/.test(e)) return [];
  const names = [`.qmail-${dotQmailSuffix(e)}`];
  for (let i = e.lastIndexOf('-'); i > 0; i = e.lastIndexOf('-', i - 1)) names.push(`.qmail-${dotQmailSuffix(e.slice(0, i))}-default`);
  return names.filter((n) => n !== '.qmail-default');
}

/** The first of `extensionFiles(ext)` present in the domain directory (valias entries, mailing lists). */
export async function findExtensionFile(store: VpopmailStore, domainDir: string, ext: string): Promise<string | undefined> {
  for (const name of extensionFiles(ext)) {
    if (await store.domainFiles.exists(domainDir, name)) return join(domainDir, name);
  }
  return undefined;
}

/**
 * vdelivermail's user lookup: the lower-cased name, and when that is not a
 * user and has a `-`, the part before the first `-` (`joe-lists` → `joe`).
 */
export async function findRecipientUser(store: VpopmailStore, ext: string, domain: string): Promise<VpasswdEntry | undefined> {
  const name = userName(ext);
  if (!name) return undefined;
  const entry = await store.findUser(name, domain);
  if (entry || !name.includes('-')) return entry;
  const base = name.slice(0, name.indexOf('-'));
  return base ? store.findUser(base, domain) : undefined;
}
