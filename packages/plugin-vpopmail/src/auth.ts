import { ErrorCodes, QuailError, type AuthMechanism, type AuthOutcome, type Authenticator, type Credentials, type UserFlags } from '@quail/core';
import { PasswordHasher } from './password-hasher.js';
import { apopDigest, cramMd5Digest, equalInConstantTime } from './passwords.js';
import { VerifiedPasswordCache } from './verified-cache.js';
import type { VpopmailStore } from './store.js';

/** Verified against when the user does not exist, so that unknown users take as long as known ones. */
const DUMMY_HASH = '$6$quailquailquail$LdyeInLpXJPeQq.tvnWPNLv/nFCXBsNprhnVuu3vhZAIOMT/QQhoCabHeWi1MA.8664P7cJgeHa7sD/A8mEgV.';

/**
 * Longest password checked at all: SHA-crypt's cost grows with the password's
 * length, so a megabyte "password" must not reach it (vpopmail's own limit is 128).
 */
const MAX_CANDIDATE_BYTES = 1024;

/** The flag that closes each service to a user (vchkpw's checks). */
const SERVICE_FLAG: Record<string, keyof UserFlags> = {
  pop3: 'noPop',
  smtp: 'noSmtp',
  imap: 'noImap',
  webmail: 'noWebmail',
};

/**
 * vchkpw: checks a login against vpasswd. USER/PLAIN/LOGIN verify the crypt
 * hash; APOP and CRAM-MD5 need the clear-text field and are offered only when
 * the install keeps it. A correct password for a service the user's flags close
 * gives `disabled`. Crypt hashes are checked on the PasswordHasher's worker
 * threads; when too many checks already wait there, the login gets
 * `temporary` at once.
 */
export class VpopmailAuthenticator implements Authenticator {
  readonly #store: VpopmailStore;
  readonly #clearPasswords: () => boolean;
  readonly #hasher: PasswordHasher;
  readonly #verified: VerifiedPasswordCache;

  constructor(store: VpopmailStore, clearPasswords: () => boolean, hasher: PasswordHasher = new PasswordHasher()) {
    this.#store = store;
    this.#clearPasswords = clearPasswords;
    this.#hasher = hasher;
    this.#verified = new VerifiedPasswordCache((candidate, stored) => hasher.verify(candidate, stored));
  }

  mechanisms(): AuthMechanism[] {
    const base: AuthMechanism[] = ['USER', 'PLAIN', 'LOGIN'];
    return this.#clearPasswords() ? [...base, 'APOP', 'CRAM-MD5'] : base;
  }

  async authenticate(credentials: Credentials): Promise<AuthOutcome> {
    if (!this.mechanisms().includes(credentials.mechanism)) return { ok: false, reason: 'bad-credentials', message: 'mechanism not available' };
    let found;
    try {
      found = await this.#store.find(credentials.username);
    } catch (err) {
      return { ok: false, reason: 'temporary', message: (err as Error).message };
    }
    const entry = found?.entry;
    let matched: boolean;
    try {
      matched = await this.#check(credentials, entry?.passwd ?? '', entry?.clear);
    } catch (err) {
      if (err instanceof QuailError && err.code === ErrorCodes.TEMPORARY) return { ok: false, reason: 'temporary', message: err.message };
      throw err;
    }
    if (!matched || !found || !entry) return { ok: false, reason: 'bad-credentials' };
    const user = this.#store.toMailUser(entry, found.location);
    const closing = SERVICE_FLAG[credentials.service];
    if (closing && user.flags[closing]) return { ok: false, reason: 'disabled', message: `${credentials.service} access closed for ${user.address}` };
    return { ok: true, user };
  }

  async #check(c: Credentials, hash: string, clear: string | undefined): Promise<boolean> {
    switch (c.mechanism) {
      case 'USER':
      case 'PLAIN':
      case 'LOGIN': {
        if (c.password === undefined || c.password === '' || Buffer.byteLength(c.password) > MAX_CANDIDATE_BYTES) return false;
        if (hash === '') {
          await this.#hasher.verify(c.password, DUMMY_HASH);
          return false;
        }
        return this.#verified.verify(c.password, hash);
      }
      case 'APOP':
        return this.#digest(c, clear, apopDigest);
      case 'CRAM-MD5':
        return this.#digest(c, clear, cramMd5Digest);
    }
  }

  #digest(c: Credentials, clear: string | undefined, digest: (challenge: string, clear: string) => string): boolean {
    if (c.challenge === undefined || c.response === undefined) return false;
    const expected = digest(c.challenge, clear ?? '');
    return clear !== undefined && clear !== '' && equalInConstantTime(expected, c.response.trim().toLowerCase());
  }
}
