import { AsyncParallelHook, AsyncSeriesBailHook, AsyncSeriesHook, type Tap } from 'tapable';
import type { EnvelopeAddress } from './address.js';
import type { BounceDecision, BounceRequest, CleanInfo, Delivery, DeliveryReport, DeliveryResult, Route, RouteRequest } from './delivery.js';
import type { Message } from './message.js';
import type { AuthMechanism, Logger } from './services.js';
import type { Connection, Transaction } from './session.js';
import { defer, isVerdict, type HookResult } from './verdict.js';

/** What the `auth` hook sees before credentials are checked. */
export interface AuthAttempt {
  mechanism: AuthMechanism;
  username: string;
  /** Failed attempts so far on this connection. */
  failures: number;
}

/**
 * Every extension point of a quail server, in one place.
 *
 * Lifecycle hooks run every tap in order. Session hooks bail on the first
 * verdict (`undefined` passes to the next tap). Delivery hooks bail on the first
 * result. Observer hooks (`delivered`, `clean`) run every tap.
 */
export interface KernelHooks {
  /** Once, after every plugin registered and services are resolvable. */
  readonly init: AsyncSeriesHook<[]>;
  /** Open listeners, start schedulers. */
  readonly start: AsyncSeriesHook<[]>;
  /** Stop accepting, finish work in flight, close. Runs in tap (plugin list) order. */
  readonly stop: AsyncSeriesHook<[]>;
  /** After a new control snapshot was validated and swapped in. */
  readonly reload: AsyncSeriesHook<[]>;

  /** A client connected (SMTP or POP3). */
  readonly connect: AsyncSeriesBailHook<[Connection], HookResult>;
  /** HELO/EHLO argument given (an empty string for a bare EHLO). */
  readonly helo: AsyncSeriesBailHook<[Connection, string], HookResult>;
  /** An authentication attempt, before the Authenticator checks it. `accept` means a plugin verified it. */
  readonly auth: AsyncSeriesBailHook<[Connection, AuthAttempt], HookResult>;
  /** MAIL FROM, after syntax and badmailfrom checks. */
  readonly mail: AsyncSeriesBailHook<[Transaction, EnvelopeAddress], HookResult>;
  /** RCPT TO, after the relay check; an `accept` here overrides nothing earlier. */
  readonly rcpt: AsyncSeriesBailHook<[Transaction, EnvelopeAddress], HookResult>;
  /** End of DATA: the message is staged, its size known and its headers readable. */
  readonly data: AsyncSeriesBailHook<[Transaction, Message], HookResult>;
  /**
   * Last word before the message is committed to the Queue service. `accept`
   * means the tap took responsibility for the message (the Queue is skipped).
   */
  readonly queue: AsyncSeriesBailHook<[Transaction, Message], HookResult>;

  /** Which channel a recipient goes to, and under what address. */
  readonly route: AsyncSeriesBailHook<[RouteRequest], Route | undefined>;
  /** Carry out a delivery; a tap returns undefined for deliveries it does not handle. */
  readonly deliver: AsyncSeriesBailHook<[Delivery], DeliveryReport | undefined>;
  /** Before a bounce is queued; `suppress` makes none. */
  readonly bounce: AsyncSeriesBailHook<[BounceRequest], BounceDecision | undefined>;
  /** Observer: a delivery attempt finished. */
  readonly delivered: AsyncParallelHook<[Delivery, DeliveryResult[]]>;
  /** Every recipient of a message is done; its files are about to be removed. */
  readonly clean: AsyncSeriesHook<[CleanInfo]>;
}

/** Named tap stages (webpack style): lower runs first. */
export const Stage = { EARLY: -100, DEFAULT: 0, LATE: 100 } as const;

const SESSION_HOOKS = ['connect', 'helo', 'auth', 'mail', 'rcpt', 'data', 'queue'] as const;
const DELIVERY_HOOKS = ['route', 'deliver', 'bounce'] as const;
/** Hooks where one plugin's failure is logged and the others still run. */
const OBSERVER_HOOKS = ['delivered', 'clean', 'stop', 'reload'] as const;

export function createHooks(log: Logger): KernelHooks {
  const hooks: KernelHooks = {
    init: new AsyncSeriesHook([]),
    start: new AsyncSeriesHook([]),
    stop: new AsyncSeriesHook([]),
    reload: new AsyncSeriesHook([]),
    connect: new AsyncSeriesBailHook(['connection']),
    helo: new AsyncSeriesBailHook(['connection', 'helo']),
    auth: new AsyncSeriesBailHook(['connection', 'attempt']),
    mail: new AsyncSeriesBailHook(['transaction', 'sender']),
    rcpt: new AsyncSeriesBailHook(['transaction', 'recipient']),
    data: new AsyncSeriesBailHook(['transaction', 'message']),
    queue: new AsyncSeriesBailHook(['transaction', 'message']),
    route: new AsyncSeriesBailHook(['request']),
    deliver: new AsyncSeriesBailHook(['delivery']),
    bounce: new AsyncSeriesBailHook(['request']),
    delivered: new AsyncParallelHook(['delivery', 'results']),
    clean: new AsyncSeriesHook(['info']),
  };
  for (const name of SESSION_HOOKS) {
    hooks[name].intercept({ register: (tap) => guardTap(tap as GuardedTap, name, log, sessionFallback) as typeof tap });
  }
  for (const name of DELIVERY_HOOKS) {
    hooks[name].intercept({ register: (tap) => guardTap(tap as GuardedTap, name, log, deliveryFallback(name)) as typeof tap });
  }
  for (const name of OBSERVER_HOOKS) {
    hooks[name].intercept({ register: (tap) => guardTap(tap as GuardedTap, name, log, () => undefined) as typeof tap });
  }
  return Object.freeze(hooks);
}

function sessionFallback(): HookResult {
  return defer(451, 'temporary failure in a server plugin', '4.3.0');
}

function deliveryFallback(hook: string): (err: unknown) => unknown {
  if (hook === 'deliver') {
    return (err) => ({ kind: 'deferral', text: `Temporary failure in delivery plugin: ${describe(err)}` });
  }
  // route and bounce: a broken tap must not decide; the next tap (or the default) does.
  return () => undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Wraps every tap so that (1) sync, callback and promise taps all become promise
 * taps, (2) a throwing or rejecting plugin is logged with its name and turned into
 * the hook's safe fallback, and (3) `null`/`false` results count as "no opinion"
 * (tapable would otherwise stop the chain on them).
 */
type GuardedTap = Tap & { fn: (...args: unknown[]) => unknown; type: string };

function guardTap(tap: GuardedTap, hook: string, log: Logger, fallback: (err: unknown) => unknown): Tap {
  const original = tap.fn;
  const type = tap.type;
  const call = (args: unknown[]): Promise<unknown> => {
    if (type === 'async') {
      return new Promise((resolve, reject) => original(...args, (err: unknown, value: unknown) => (err ? reject(err) : resolve(value))));
    }
    return Promise.resolve().then(() => original(...args));
  };
  const wrapped = async (...args: unknown[]) => {
    try {
      const value = await call(args);
      if (value === null || value === false) return undefined;
      if (SESSION_HOOKS.includes(hook as (typeof SESSION_HOOKS)[number]) && value !== undefined && !isVerdict(value)) {
        log.error({ plugin: tap.name, hook }, `plugin ${tap.name} returned something that is not a verdict from ${hook}`);
        return sessionFallback();
      }
      return value;
    } catch (err) {
      log.error({ plugin: tap.name, hook, err }, `plugin ${tap.name} failed in ${hook}: ${describe(err)}`);
      if (OBSERVER_HOOKS.includes(hook as (typeof OBSERVER_HOOKS)[number])) return undefined;
      return fallback(err);
    }
  };
  return { ...tap, type: 'promise', fn: wrapped } as Tap;
}
