import type { Clock } from '@quail/core';

interface FailureRecord {
  failures: number;
  last: number;
}

/**
 * Failed logins per client address, to slow down password guessing. Memory is
 * bounded: at most `maxAddresses` entries (the least recently failed go first),
 * and an address is forgotten `forgetAfterMs` after its last failure.
 */
export class LoginThrottle {
  readonly #byAddress = new Map<string, FailureRecord>();
  readonly #clock: Clock;
  readonly #maxAddresses: number;
  readonly #forgetAfterMs: number;

  constructor(clock: Clock, options: { maxAddresses?: number; forgetAfterMs?: number } = {}) {
    this.#clock = clock;
    this.#maxAddresses = options.maxAddresses ?? 10_000;
    this.#forgetAfterMs = options.forgetAfterMs ?? 15 * 60_000;
  }

  /** Addresses currently remembered. */
  get size(): number {
    return this.#byAddress.size;
  }

  /** Recent failures from this address. */
  failures(address: string): number {
    const record = this.#byAddress.get(address);
    if (!record) return 0;
    if (this.#clock.now() - record.last > this.#forgetAfterMs) {
      this.#byAddress.delete(address);
      return 0;
    }
    return record.failures;
  }

  /** Counts a failure; returns the failures now on record for the address. */
  fail(address: string): number {
    const failures = this.failures(address) + 1;
    this.#byAddress.delete(address);
    this.#byAddress.set(address, { failures, last: this.#clock.now() });
    while (this.#byAddress.size > this.#maxAddresses) {
      const oldest = this.#byAddress.keys().next().value as string;
      this.#byAddress.delete(oldest);
    }
    return failures;
  }

  /** A successful login clears the address. */
  succeed(address: string): void {
    this.#byAddress.delete(address);
  }

  /**
   * How long to hold back the answer to a failed login: `baseMs` times the
   * failures on record for the address, at most `maxMs`.
   */
  delayFor(address: string, baseMs: number, maxMs = 30_000): number {
    return Math.min(baseMs * Math.max(1, this.failures(address)), maxMs);
  }
}
