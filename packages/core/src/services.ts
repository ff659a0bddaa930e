import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Message, MessageSource } from './message.js';
import type { MessageParser } from './message-parser.js';

/**
 * A typed service token. Services between plugins are registered and resolved
 * through these, never by importing another plugin.
 */
export type ServiceToken<T> = symbol & { readonly __service?: T };

export function serviceToken<T>(name: string): ServiceToken<T> {
  return Symbol.for(`quail.service.${name}`) as ServiceToken<T>;
}

export type { Logger };

/* ------------------------------------------------------------------ Clock */

export interface TimerHandle {
  readonly __timer?: never;
}

/** Time, injectable so that schedules can be tested without waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/* ------------------------------------------------------------------ Queue */

/** Who handed the message to the queue; decides qmail-queue's `Received: (qmail N invoked ...)` text. */
export type QueueOrigin =
  | { kind: 'network'; remoteAddress: string }
  | { kind: 'local'; uid: number }
  | { kind: 'bounce' }
  | { kind: 'forward' };

export interface Envelope {
  /** '' is the null sender. */
  sender: string;
  recipients: string[];
}

export interface QueueReceipt {
  /** Stable unique id of the queued message. */
  id: string;
  /** The number qmail shows in `250 ok <time> qp <n>`. */
  qp: number;
  acceptedAt: Date;
}

/**
 * A message being written into the queue. Nothing is visible to the scheduler,
 * and nothing survives a crash, until `commit` has resolved.
 */
export interface QueueWriter {
  readonly id: string;
  /** Write the message here (bare LF line endings), then end() it. */
  readonly stream: Writable;
  /** The message as written, for `data` hooks to read back; valid after the stream finished. */
  message(): Message;
  /** Makes the message durable (data, envelope and directories fsynced) and schedules it. */
  commit(envelope: Envelope): Promise<QueueReceipt>;
  /** Throws the message away. Safe to call more than once, and after a failed commit. */
  abort(): Promise<void>;
}

export type RecipientState = 'pending' | 'deferred' | 'delivered' | 'failed';

export interface QueuedRecipient {
  recipient: string;
  channel: string;
  state: RecipientState;
  attempts: number;
  nextAttempt?: Date;
  lastText?: string;
}

export interface QueuedMessageInfo {
  id: string;
  sender: string;
  size: number;
  queuedAt: Date;
  recipients: QueuedRecipient[];
}

export interface QueueStat {
  /** Messages in the queue. */
  messages: number;
  /** Messages accepted but not yet preprocessed (qmail's todo). */
  unprocessed: number;
  /** Recipients still to be delivered, by channel. */
  pending: Record<string, number>;
  paused: boolean;
}

/** The queue: qmail-queue's acceptance, plus the controls qmailctl and qmail-qread use. */
export interface Queue {
  create(origin: QueueOrigin): Promise<QueueWriter>;
  /** create + write + commit in one call. */
  enqueue(envelope: Envelope, body: Readable | Buffer | string, origin: QueueOrigin): Promise<QueueReceipt>;
  list(): AsyncIterable<QueuedMessageInfo>;
  stat(): Promise<QueueStat>;
  /** Retry every deferred recipient now (qmail-send on SIGALRM). */
  flush(): Promise<void>;
  /** Stop starting new deliveries; deliveries in flight finish. */
  pause(): void;
  resume(): void;
  /** Resolves when no delivery is running and nothing is due now (for tests and graceful stop). */
  idle(): Promise<void>;
}

/* ------------------------------------------------------------------ MailStore */

export interface Quota {
  bytes?: number;
  messages?: number;
}

export interface StoredMessage {
  /** The Maildir unique name (base name without `:2,` info). */
  uid: string;
  path: string;
  size: number;
  /** True when a delivery with the same key was already in new/: nothing new was stored. */
  repeated?: boolean;
}

export interface MailboxMessage {
  /** Stable unique id: the Maildir base name, unchanged by new/→cur/ moves and flags. */
  uid: string;
  /** Octets as stored (bare LF). */
  size: number;
  /** Octets as sent over POP3/IMAP with CRLF line endings. */
  crlfSize: number;
  /** Maildir info flags, sorted (`S` seen, `T` trashed, ...). */
  flags: string;
  /** Delivery time (from the name or the file). */
  date: Date;
}

export interface Mailbox {
  readonly path: string;
  /**
   * Lists messages oldest first; with `moveNew` first moves `new/` into `cur/` as
   * qmail-pop3d does. With `moveInBackground` too, a store may answer before the
   * moves are done (the listing is already what they will leave); such a store
   * provides `finishMoves`, and every other call works during the moves.
   */
  list(options?: { moveNew?: boolean; moveInBackground?: boolean }): Promise<MailboxMessage[]>;
  /** Resolves once the moves a `list` left running are done. */
  finishMoves?(): Promise<void>;
  /**
   * Optional fast path for small messages: reads the stored bytes at once and
   * resolves with what `consume` makes of them (the bytes are valid only during
   * the call), or undefined without calling it when the message has more than
   * `maxBytes` octets (then use `read`).
   */
  readWhole?<T>(uid: string, maxBytes: number, consume: (message: Buffer) => T): Promise<T | undefined>;
  /**
   * The message bytes. With `crlf` every line ends in CRLF and the stream is exactly
   * `crlfSize` octets; `bodyLines` limits the body to that many lines after the header (TOP).
   */
  read(uid: string, options?: { crlf?: boolean; bodyLines?: number }): Promise<Readable>;
  setFlags(uid: string, change: { add?: string; remove?: string }): Promise<void>;
  remove(uid: string): Promise<void>;
}

export interface MailStore {
  /** maildirmake: creates the Maildir with tmp/, new/ and cur/ (no error if it exists). */
  create(maildir: string): Promise<void>;
  /**
   * Atomic delivery: tmp/, fsync, rename into new/ (or `folder`'s new/).
   * `prepend` is header text (LF line endings) written before the message.
   * `key` (from core's `deliveryKey`) names the delivery: the same key delivered
   * again finds the first copy and stores no second one (a retry after a crash).
   * Throws QuailError QUAIL_E_QUOTA when over quota, QUAIL_E_TEMPORARY on I/O trouble.
   */
  deliver(
    maildir: string,
    source: MessageSource,
    options?: { prepend?: string; quota?: Quota; folder?: string; key?: string },
  ): Promise<StoredMessage>;
  open(maildir: string): Promise<Mailbox>;
  /** Current use as counted against a quota. */
  usage(maildir: string): Promise<{ bytes: number; messages: number }>;
}

/* ------------------------------------------------------------------ Users */

/** vpopmail's per-user flag bits, by name. */
export interface UserFlags {
  noPassword?: boolean;
  noPop?: boolean;
  noWebmail?: boolean;
  noImap?: boolean;
  bounceMail?: boolean;
  noRelay?: boolean;
  noDialup?: boolean;
  noSmtp?: boolean;
  [flag: string]: boolean | undefined;
}

export interface MailUser {
  /** `name@domain`, lower case. */
  address: string;
  name: string;
  domain: string;
  /** The user's directory (holds `.qmail` and `Maildir/`). */
  home: string;
  maildir: string;
  quota?: Quota;
  uid?: number;
  gid?: number;
  flags: UserFlags;
}

export interface UserStore {
  /** Looks up a login or address; a bare name is looked up in the default domain. */
  lookup(login: string): Promise<MailUser | undefined>;
  /** True when the store serves this domain (an alias domain counts). */
  hasDomain(domain: string): Promise<boolean>;
}

export type AuthMechanism = 'USER' | 'PLAIN' | 'LOGIN' | 'APOP' | 'CRAM-MD5';

export interface Credentials {
  mechanism: AuthMechanism;
  service: 'smtp' | 'pop3' | (string & {});
  username: string;
  /** Clear-text password (USER/PASS, PLAIN, LOGIN). */
  password?: string;
  /** APOP timestamp or CRAM-MD5 challenge, and the client's digest. */
  challenge?: string;
  response?: string;
  remoteAddress?: string;
}

export type AuthOutcome =
  | { ok: true; user: MailUser }
  | { ok: false; reason: 'bad-credentials' | 'disabled' | 'temporary'; message?: string };

/** qmail's checkpassword role. */
export interface Authenticator {
  /** Mechanisms this authenticator can check (APOP and CRAM-MD5 need clear-text passwords). */
  mechanisms(): AuthMechanism[];
  authenticate(credentials: Credentials): Promise<AuthOutcome>;
}

/* ------------------------------------------------------------------ Local delivery */

/** What a dot-qmail file is run for: one local recipient of one delivery. */
export interface DotQmailRequest {
  delivery: import('./delivery.js').Delivery;
  recipient: import('./delivery.js').DeliveryRecipient;
  /** The directory the file's relative paths (`./Maildir/`) are relative to. */
  home: string;
  /** qmail-local's LOCAL and HOST: the address being delivered to. */
  local: string;
  host: string;
  /** The extension (EXT) after the user name, '' for none. */
  ext: string;
  /** Account to run program deliveries as (never root). */
  uid?: number;
  gid?: number;
  /** Maildir used when the file is empty (qmail's default delivery). */
  defaultMaildir?: string;
  quota?: Quota;
}

/** qmail-local's work, offered by plugin-local so that other deliverers (vpopmail) can run a user's .qmail. */
export interface DotQmailRunner {
  /** Carries out the lines of a dot-qmail file; a missing file means the default delivery. */
  run(file: string, request: DotQmailRequest): Promise<import('./delivery.js').DeliveryResult>;
}

/* ------------------------------------------------------------------ DNS */

/** The subset of node's dns.promises.Resolver that quail uses; errors keep node's codes (ENOTFOUND, ENODATA, ETIMEOUT, ESERVFAIL). */
export interface Resolver {
  resolveMx(domain: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(host: string): Promise<string[]>;
  resolve6(host: string): Promise<string[]>;
  resolveTxt(host: string): Promise<string[][]>;
  reverse(ip: string): Promise<string[]>;
}

/* ------------------------------------------------------------------ Tokens */

export const Tokens = {
  Logger: serviceToken<Logger>('Logger'),
  Clock: serviceToken<Clock>('Clock'),
  MessageParser: serviceToken<MessageParser>('MessageParser'),
  Resolver: serviceToken<Resolver>('Resolver'),
  Queue: serviceToken<Queue>('Queue'),
  MailStore: serviceToken<MailStore>('MailStore'),
  UserStore: serviceToken<UserStore>('UserStore'),
  Authenticator: serviceToken<Authenticator>('Authenticator'),
  DotQmail: serviceToken<DotQmailRunner>('DotQmail'),
} as const;
