import { createHash } from 'node:crypto';
import type { Message } from './message.js';

/** Delivery channels. `local` and `remote` are qmail's; a plugin may add its own (`lmtp`, ...). */
export type Channel = 'local' | 'remote' | (string & {});

/** What the `route` hook is asked: where does this recipient go? */
export interface RouteRequest {
  messageId: string;
  sender: string;
  recipient: string;
}

/** The answer of the `route` hook, stored with the recipient in the queue. */
export interface Route {
  channel: Channel;
  /** The recipient as the envelope named it. */
  recipient: string;
  /**
   * The address the channel works with after qmail's rewriting: for a
   * virtualdomains hit `prefix-local@domain` (qmail-send's rewrite), after
   * percenthack `user@host`; otherwise the recipient itself.
   */
  address: string;
  /** The virtualdomains prefix that matched (local channel only). */
  prefix?: string;
}

export interface DeliveryRecipient {
  recipient: string;
  route: Route;
}

/**
 * One delivery attempt handed to the `deliver` hook. Local deliveries carry one
 * recipient; remote deliveries may carry several recipients of one message that
 * share a domain, so that they go in one SMTP transaction.
 */
export interface Delivery {
  /** Sequence number for log lines ("delivery 17: success: ..."). */
  id: number;
  messageId: string;
  /** Envelope sender; '' is the null sender (bounces). */
  sender: string;
  channel: Channel;
  recipients: DeliveryRecipient[];
  /** The queued message (bare LF line endings, with the queue's Received line on top). */
  message: Message;
  queuedAt: Date;
  /** 1 on the first attempt for these recipients. */
  attempt: number;
  /** Aborted when the server stops with this delivery still running. */
  signal: AbortSignal;
}

/** qmail-send's r/h/s model: K success, Z deferral (temporary), D failure (permanent). */
export type DeliveryResult =
  | { kind: 'success'; text: string }
  | { kind: 'deferral'; text: string }
  | { kind: 'failure'; text: string };

/** One result for all recipients, or one per recipient in the order of `Delivery.recipients`. */
export type DeliveryReport = DeliveryResult | DeliveryResult[];

export const success = (text: string): DeliveryResult => ({ kind: 'success', text });
export const deferral = (text: string): DeliveryResult => ({ kind: 'deferral', text });
export const failure = (text: string): DeliveryResult => ({ kind: 'failure', text });

/** Spreads a report over the delivery's recipients. A short array defers the rest. */
export function reportPerRecipient(delivery: Delivery, report: DeliveryReport): DeliveryResult[] {
  if (!Array.isArray(report)) return delivery.recipients.map(() => report);
  return delivery.recipients.map((_, i) => report[i] ?? deferral('delivery plugin gave no result for this recipient'));
}

/** Asked of the `bounce` hook before a bounce message is queued. */
export interface BounceRequest {
  messageId: string;
  /** The sender the bounce goes to ('' : a double bounce is being made). */
  sender: string;
  failures: Array<{ recipient: string; text: string }>;
  message: Message;
}

/** `suppress`: make no bounce (the failures are only logged). */
export type BounceDecision = { kind: 'suppress'; reason: string };

/** Given to the `clean` hook when every recipient of a message is done. */
export interface CleanInfo {
  messageId: string;
  sender: string;
  results: Array<{ recipient: string; result: DeliveryResult }>;
}

/**
 * A stable name for delivering one queued message to one recipient (and, where
 * one recipient gets several copies, a `part` such as the dot-qmail line):
 * `<queued seconds>.M<microseconds>Q<hash>`. Given to `MailStore.deliver` as `key`, it makes a
 * delivery repeated after a crash find its first copy instead of making a second.
 */
export function deliveryKey(delivery: Pick<Delivery, 'messageId' | 'queuedAt'>, recipient: string, part = ''): string {
  const hash = createHash('sha256').update(`${delivery.messageId}\0${recipient}\0${part}`).digest('hex').slice(0, 24);
  const ms = delivery.queuedAt.getTime();
  // seconds and zero-padded microseconds, as in Maildir names: readers sort keyed names in queue order
  return `${Math.floor(ms / 1000)}.M${String((ms % 1000) * 1000).padStart(6, '0')}Q${hash}`;
}
