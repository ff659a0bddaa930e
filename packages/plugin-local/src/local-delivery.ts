import { join } from 'node:path';
import { statSync, type Stats } from 'node:fs';
import { deferral, DirectoryNames, failure, splitAddress, type Delivery, type DeliveryResult, type Logger } from '@quail/core';
import type { DotQmailFileRunner } from './dot-qmail-runner.js';
import { hostileLocalPart, safeExt } from './local-part.js';
import { AssignSyntaxError, type LocalOwner, type UsersAssign } from './users-assign.js';

export interface LocalDeliveryOptions {
  /** The server root: `<root>/alias` is the alias user's home. */
  root: string;
  assign: UsersAssign;
  runner: DotQmailFileRunner;
  log: Logger;
}

/** The dot-qmail files tried for an extension, in order (reference 5.2). */
export function dotQmailCandidates(dash: string, ext: string): string[] {
  const safe = safeExt(ext);
  if (dash === '' && safe === '') return ['.qmail'];
  const names = [`.qmail${dash}${safe}`];
  for (let at = safe.lastIndexOf('-'); at >= 0; at = safe.lastIndexOf('-', at - 1)) {
    names.push(`.qmail${dash}${safe.slice(0, at)}-default`);
    if (at === 0) break;
  }
  names.push(`.qmail${dash}default`);
  return names;
}

/** qmail-lspawn + qmail-local for one local recipient: find the owner, pick the dot-qmail file, run it. */
export class LocalDelivery {
  readonly #options: LocalDeliveryOptions;
  /** The dot-qmail files found (or not) in home directories, kept while a home directory is unchanged. */
  readonly #homeFiles = new DirectoryNames();

  constructor(options: LocalDeliveryOptions) {
    this.#options = options;
  }

  async deliver(delivery: Delivery): Promise<DeliveryResult> {
    const recipient = delivery.recipients[0];
    if (!recipient || delivery.recipients.length !== 1) return deferral('local delivery needs exactly one recipient. (#4.3.0)');
    const { local, domain } = splitAddress(recipient.route.address);
    const hostile = hostileLocalPart(local);
    if (hostile) return failure(`Sorry, no mailbox here by that name: ${hostile}. (#5.1.1)`);
    let owner: LocalOwner;
    try {
      owner = (await this.#options.assign.lookup(local)) ?? (await this.#aliasOwner(local));
    } catch (err) {
      if (err instanceof AssignSyntaxError) {
        this.#options.log.error({ file: err.file, line: err.line }, err.message);
        return deferral(`Unable to read users/assign: line ${err.line}: ${err.reason}. (#4.3.0)`);
      }
      return deferral(`Unable to find the owner of ${local}: ${(err as Error).message}. (#4.3.0)`);
    }
    const statAt = Date.now();
    const home = checkHome(owner.home);
    if (!('info' in home)) return home;
    this.#homeFiles.observe(owner.home, home.info, statAt);
    const file = await this.#chooseFile(owner);
    if (file === undefined) return failure('Sorry, no mailbox here by that name. (#5.1.1)');
    return this.#options.runner.run(file, {
      delivery,
      recipient,
      home: owner.home,
      local,
      host: domain,
      ext: owner.ext,
      user: owner.user,
      uid: owner.uid,
      gid: owner.gid,
    });
  }

  /** No assignment: the alias user, dash `-`, ext = the whole local part. */
  async #aliasOwner(local: string): Promise<LocalOwner> {
    const home = join(this.#options.root, 'alias');
    const info = statSync(home);
    return { user: 'alias', uid: info.uid, gid: info.gid, home, dash: '-', ext: local };
  }

  /** The first dot-qmail file that exists; `.qmail` itself may be missing (default delivery). */
  async #chooseFile(owner: LocalOwner): Promise<string | undefined> {
    const candidates = dotQmailCandidates(owner.dash, owner.ext);
    for (const name of candidates) {
      const path = join(owner.home, name);
      if (await this.#homeFiles.exists(owner.home, name, async () => exists(path))) return path;
    }
    return owner.dash === '' && owner.ext === '' ? join(owner.home, '.qmail') : undefined;
  }
}

/**
 * The home directory's stat, or why qmail-local would not deliver there. Stats
 * here run on the calling thread: they cost less than a trip through libuv's
 * thread pool, and every delivery makes them.
 */
function checkHome(home: string): DeliveryResult | { info: Stats } {
  let info;
  try {
    info = statSync(home);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return deferral(`Unable to switch to ${home}: ${code === 'ENOENT' ? 'file does not exist' : (code ?? 'error')}. (#4.3.0)`);
  }
  if (!info.isDirectory()) return deferral(`Unable to switch to ${home}: not a directory. (#4.3.0)`);
  if ((info.mode & 0o022) !== 0) return deferral('Uh-oh: home directory is writable. (#4.7.0)');
  if ((info.mode & 0o1000) !== 0) return deferral('Home directory is sticky: user is editing his .qmail file. (#4.2.1)');
  return { info };
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
