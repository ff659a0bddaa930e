import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The full check of a password against a stored hash (PasswordHasher.verify). */
export type PasswordCheck = (candidate: string, stored: string) => Promise<boolean>;

/**
 * Remembers recent successful password checks so that a mail client logging in
 * every few minutes does not pay for 5000 rounds of SHA-512 each time. Only
 * successes are kept, as an HMAC of the password under a key made at start-up
 * (never the password), keyed by the stored hash: a changed password has a new
 * hash and misses. Failed attempts always run the full check.
 */
export class VerifiedPasswordCache {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Buffer>();
  readonly #check: PasswordCheck;
  readonly #limit: number;

  constructor(check: PasswordCheck, limit = 10_000) {
    this.#check = check;
    this.#limit = limit;
  }

  async verify(candidate: string, stored: string): Promise<boolean> {
    const tag = createHmac('sha256', this.#key).update(candidate, 'utf8').digest();
    const known = this.#entries.get(stored);
    if (known && timingSafeEqual(known, tag)) {
      this.#entries.delete(stored);
      this.#entries.set(stored, known);
      return true;
    }
    if (!(await this.#check(candidate, stored))) return false;
    this.#entries.delete(stored);
    this.#entries.set(stored, tag);
    if (this.#entries.size > this.#limit) this.#entries.delete(this.#entries.keys().next().value!);
    return true;
  }

  get size(): number {
    return this.#entries.size;
  }
}
