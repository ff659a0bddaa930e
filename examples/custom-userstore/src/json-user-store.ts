import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuthMechanism, AuthOutcome, Authenticator, Credentials, MailUser, UserStore } from '@quail/core';
import { verifyPassword } from './passwords.js';
import { parseUserFile, type UserFile } from './user-file.js';

/**
 * Users from one JSON file, as a UserStore and an Authenticator. The file is
 * read again whenever its size or mtime changed; a broken new version is
 * reported and the last good one stays in use.
 */
export class JsonUserStore implements UserStore, Authenticator {
  readonly file: string;
  readonly #mailRoot: string;
  readonly #defaultDomain: () => string;
  readonly #onError: (message: string) => void;
  #cache?: { mtimeMs: number; size: number; users: UserFile };

  constructor(options: { file: string; mailRoot: string; defaultDomain: () => string; onError: (message: string) => void }) {
    this.file = options.file;
    this.#mailRoot = options.mailRoot;
    this.#defaultDomain = options.defaultDomain;
    this.#onError = options.onError;
  }

  /** The current users; throws (naming the file) only when no good version was ever read. */
  async load(): Promise<UserFile> {
    const info = await stat(this.file);
    if (this.#cache && this.#cache.mtimeMs === info.mtimeMs && this.#cache.size === info.size) return this.#cache.users;
    try {
      const users = parseUserFile(await readFile(this.file, 'utf8'), this.file);
      this.#cache = { mtimeMs: info.mtimeMs, size: info.size, users };
      return users;
    } catch (err) {
      if (!this.#cache) throw err;
      this.#onError(`${(err as Error).message}; the previous users stay in force`);
      return this.#cache.users;
    }
  }

  /** Where a user's mail lives: `<mailRoot>/<domain>/<user>/Maildir`. */
  home(domain: string, name: string): string {
    return join(this.#mailRoot, domain, name);
  }

  async lookup(login: string): Promise<MailUser | undefined> {
    const at = login.lastIndexOf('@');
    const name = (at < 0 ? login : login.slice(0, at)).toLowerCase();
    const given = (at < 0 ? this.#defaultDomain() : login.slice(at + 1)).toLowerCase();
    const users = await this.load();
    const domain = users.names.get(given);
    const user = domain === undefined ? undefined : users.domains.get(domain)!.users.get(name);
    if (!domain || !user) return undefined;
    const home = this.home(domain, name);
    return {
      address: `${name}@${domain}`,
      name,
      domain,
      home,
      maildir: join(home, 'Maildir'),
      ...(user.quotaBytes !== undefined && { quota: { bytes: user.quotaBytes } }),
      flags: { noPassword: user.disabled === true },
    };
  }

  async hasDomain(domain: string): Promise<boolean> {
    return (await this.load()).names.has(domain.toLowerCase());
  }

  /** Only hashes are kept, so the mechanisms that need clear-text passwords (APOP, CRAM-MD5) are not offered. */
  mechanisms(): AuthMechanism[] {
    return ['USER', 'PLAIN', 'LOGIN'];
  }

  async authenticate(credentials: Credentials): Promise<AuthOutcome> {
    if (credentials.password === undefined) return { ok: false, reason: 'bad-credentials' };
    let user: MailUser | undefined;
    let hash: string | undefined;
    try {
      user = await this.lookup(credentials.username);
      if (user) hash = (await this.load()).domains.get(user.domain)!.users.get(user.name)!.password;
    } catch (err) {
      return { ok: false, reason: 'temporary', message: (err as Error).message };
    }
    if (!user || hash === undefined || !(await verifyPassword(credentials.password, hash))) return { ok: false, reason: 'bad-credentials' };
    if (user.flags.noPassword) return { ok: false, reason: 'disabled' };
    return { ok: true, user };
  }
}
