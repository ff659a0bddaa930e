import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@quail/core';
import { lookupAccount, type Account } from '../passwd.js';

/** The account named in control/user, or undefined when the file is absent or empty. */
export function configuredAccount(root: string): Account | undefined {
  let name: string;
  try {
    name = readFileSync(join(root, 'control', 'user'), 'utf8').split('\n')[0]!.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return name === '' ? undefined : lookupAccount(name);
}

/**
 * After the listeners are bound: as root with control/user, become that account
 * (groups, gid, then uid, as setuidgid does). Without control/user a root daemon
 * keeps running as root, with a warning.
 */
export function dropPrivileges(account: Account | undefined, log: Logger): void {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    if (account && process.getuid?.() !== account.uid) log.warn(`control/user names ${account.name}, but only root can switch accounts; running as uid ${process.getuid?.()}`);
    return;
  }
  if (!account) {
    log.warn('running as root: write an account name to control/user (quail init --user NAME) so that the daemon drops its privileges after binding');
    return;
  }
  process.setgroups?.([account.gid]);
  process.setgid?.(account.gid);
  process.setuid?.(account.uid);
  log.info(`privileges dropped to ${account.name} (uid ${account.uid}, gid ${account.gid})`);
}
