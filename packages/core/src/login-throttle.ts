import type { AuthOutcome, Authenticator, Clock, Credentials } from './services.js';

export interface LoginThrottleSettings {
  /** Failed logins from one address before its logins are refused for a while; 0 turns the throttle off. */
  maxFailures: number;
  /** Seconds a failure is remembered, and how long an address stays refused. */
  windowSeconds: number;
}

interface Record_ {
  failures: number;
  last: number;
}

/**
 * Counts failed logins per client address across every protocol of one server.
 * Past the limit the address gets temporary refusals until the window has passed
 * since its last failure, whatever the password. Memory is bounded: the oldest
 * addresses are forgotten first.
 */
export class LoginThrottle {
  readonly #byAddress = new Map<string, Record_>();
  readonly #clock: Clock;
  readonly #settings: () => LoginThrottleSettings;
  readonly #maxAddresses: number;

  constructor(clock: Clock, settings: () => LoginThrottleSettings, maxAddresses = 10_000) {
    this.#clock = clock;
    this.#settings = settings;
    this.#maxAddresses = maxAddresses;
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.#byAddress.size;
  }

  /** Recent failures from an address (0 once the window has passed). */
  failures(address: string): number {
    const record = this.#byAddress.get(address);
    if (!record) return 0;
    if (this.#clock.now() - record.last > this.#settings().windowSeconds * 1000) {
      this.#byAddress.delete(address);
      return 0;
    }
    return record.failures;
  }

  /** True when logins from the address are refused for now. */
  refused(address: string): boolean {
    const { maxFailures } = this.#settings();
    return maxFailures > 0 && this.failures(address) >= maxFailures;
  }

  fail(address: string): void {
    const failures = this.failures(address) + 1;
    this.#byAddress.delete(address);
    this.#byAddress.set(address, { failures, last: this.#clock.now() });
    while (this.#byAddress.size > this.#maxAddresses) this.#byAddress.delete(this.#byAddress.keys().next().value as string);
  }

  succeed(address: string): void {
    this.#byAddress.delete(address);
  }
}

/**
 * An Authenticator behind the throttle: refused addresses get a temporary
 * failure without a password check; outcomes are counted. Credentials without
 * a remote address (checks made by the server itself) pass through untouched.
 */
export function throttledAuthenticator(inner: Authenticator, throttle: LoginThrottle): Authenticator {
  return {
    mechanisms: () => inner.mechanisms(),
    async authenticate(credentials: Credentials): Promise<AuthOutcome> {
      const address = credentials.remoteAddress;
      if (address === undefined) return inner.authenticate(credentials);
      if (throttle.refused(address)) {
        return { ok: false, reason: 'temporary', message: 'too many failed logins from your address, try again later' };
      }
      const outcome = await inner.authenticate(credentials);
      if (outcome.ok) throttle.succeed(address);
      else if (outcome.reason !== 'temporary') throttle.fail(address);
      return outcome;
    },
  };
}
