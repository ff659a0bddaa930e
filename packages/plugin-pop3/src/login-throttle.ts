import { LoginThrottle as AddressFailures, type Clock } from '@quail/core';

/**
 * Failed logins per client address, to slow down password guessing: core's
 * per-address count (bounded to `maxAddresses`, an address forgotten
 * `forgetAfterMs` after its last failure), never refusing by itself (the
 * server-wide throttle in front of every Authenticator does that), plus the
 * growing delay before a failed login is answered.
 */
export class LoginThrottle extends AddressFailures {
  constructor(clock: Clock, options: { maxAddresses?: number; forgetAfterMs?: number } = {}) {
    const windowSeconds = (options.forgetAfterMs ?? 15 * 60_000) / 1000;
    super(clock, () => ({ maxFailures: 0, windowSeconds }), options.maxAddresses ?? 10_000);
  }

  /**
   * How long to hold back the answer to a failed login: `baseMs` times the
   * failures on record for the address, at most `maxMs`.
   */
  delayFor(address: string, baseMs: number, maxMs = 30_000): number {
    return Math.min(baseMs * Math.max(1, this.failures(address)), maxMs);
  }
}
