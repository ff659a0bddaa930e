import { existsSync } from 'node:fs';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  ErrorCodes,
  QuailError,
  bufferSource,
  deferral,
  deliveryKey,
  failure,
  isTemporary,
  success,
  type Delivery,
  type DeliveryRecipient,
  type DeliveryResult,
  type DotQmailRunner,
  type Logger,
  type MailStore,
  type Queue,
  type Quota,
  type StoredMessage,
} from '@quail/core';
import { QMAIL_DEFAULT, type DefaultAction } from './domain-default.js';
import { flagsFromGid } from './flags.js';
import { userName } from './names.js';
import { quotaFromField } from './quota.js';
import { findExtensionFile, findRecipientUser } from './recipients.js';
import type { DomainLocation, VpopmailStore } from './store.js';
import type { VpasswdEntry } from './vpasswd.js';

export interface VdeliverMailServices {
  store: VpopmailStore;
  mailStore: () => MailStore;
  dotQmail: () => DotQmailRunner | undefined;
  queue: () => Queue | undefined;
  /** The Clock service's time (the quota warning's once-a-day rule). */
  now: () => number;
  log: Logger;
}

/** Where one delivery stands: the recipient, its domain, and qmail-local's LOCAL/HOST/EXT. */
interface Target {
  delivery: Delivery;
  recipient: DeliveryRecipient;
  location: DomainLocation;
  local: string;
  host: string;
  ext: string;
}

const NO_MAILBOX = 'Sorry, no mailbox here by that name. (#5.1.1)';
const OVER_QUOTA = 'user is over quota';
/** Longest custom message (.no-user.msg, .over-quota.msg) used in a bounce. */
const MAX_MESSAGE_FILE = 4096;
const DELIVERED = 'did 0+0+1/';
/** Most maildirs remembered as existing. */
const MAX_SEEN_MAILDIRS = 10_000;
/** vpopmail's QUOTA_WARN_PERCENT, and how often one maildir gets the warning. */
const QUOTA_WARN_PERCENT = 90;
const QUOTA_WARN_INTERVAL_MS = 24 * 60 * 60 * 1000;

/**
 * vdelivermail for quail: takes the local deliveries of vpopmail domains (the
 * route's virtualdomains prefix names one of them) and delivers them as qmail-local
 * running the domain's `.qmail-default` would (reference 5.2, 9.6).
 */
export class VdeliverMail {
  readonly #s: VdeliverMailServices;
  /** Maildirs found with a `new/` directory (or made) by an earlier delivery. */
  readonly #seenMaildirs = new Set<string>();

  constructor(services: VdeliverMailServices) {
    this.#s = services;
  }

  /** The delivery's result, or undefined when it is not for a vpopmail domain. */
  async handle(delivery: Delivery): Promise<DeliveryResult | undefined> {
    if (delivery.channel !== 'local' || delivery.recipients.length !== 1) return undefined;
    const recipient = delivery.recipients[0]!;
    const prefix = recipient.route.prefix;
    if (!prefix) return undefined;
    const location = await this.#s.store.resolveDomain(prefix);
    if (!location) return undefined;
    const address = recipient.route.address;
    const at = address.lastIndexOf('@');
    const local = at < 0 ? address : address.slice(0, at);
    const host = at < 0 ? location.domain : address.slice(at + 1).toLowerCase();
    const ext = local.toLowerCase().startsWith(`${prefix.toLowerCase()}-`) ? local.slice(prefix.length + 1) : local;
    return this.#deliver({ delivery, recipient, location, local, host, ext });
  }

  async #deliver(t: Target): Promise<DeliveryResult> {
    const delivered = (await t.delivery.message.headers()).getAll('delivered-to').map((v) => v.trim().toLowerCase());
    if (delivered.includes(t.recipient.route.address.toLowerCase())) {
      return failure('This message is looping: it already has my Delivered-To line. (#5.4.6)');
    }
    const aliasFile = await findExtensionFile(this.#s.store, t.location.dir, t.ext);
    if (aliasFile) return this.#runDotQmail(t, aliasFile, { home: t.location.dir, local: t.local, host: t.host, ext: t.ext.toLowerCase() });
    const action = await this.#s.store.domainFiles.defaultAction(t.location.dir);
    if (action.kind === 'dot-qmail') {
      return this.#runDotQmail(t, join(t.location.dir, QMAIL_DEFAULT), { home: t.location.dir, local: t.local, host: t.host, ext: t.ext.toLowerCase() });
    }
    if (action.kind === 'invalid') return deferral(action.reason);
    const name = userName(t.ext);
    if (!name) return failure('vdelivermail: invalid username');
    if (delivered.includes(`${name}@${t.location.domain}`)) return failure(`vdelivermail: mail is looping for ${name}@${t.location.domain}`);
    const entry = await findRecipientUser(this.#s.store, name, t.location.domain);
    if (entry) return this.#toUser(t, entry, name);
    return this.#unknownUser(t, action, name);
  }

  async #toUser(t: Target, entry: VpasswdEntry, name: string): Promise<DeliveryResult> {
    const address = `${entry.name}@${t.location.domain}`;
    if (flagsFromGid(entry.gid).bounceMail) return failure(`vdelivermail: account is locked email bounced ${address}`);
    const home = this.#s.store.homeOf(entry, t.location.domain);
    const quota = quotaFromField(entry.quota);
    const dotQmail = join(home, '.qmail');
    if (existsSync(dotQmail)) {
      const ext = name.length > entry.name.length ? name.slice(entry.name.length + 1) : '';
      return this.#runDotQmail(t, dotQmail, { home, local: entry.name, host: t.location.domain, ext, defaultMaildir: `${join(home, 'Maildir')}/`, ...(quota && { quota }) });
    }
    return this.#toMaildir(t, join(home, 'Maildir'), address, quota);
  }

  async #unknownUser(t: Target, action: DefaultAction, name: string): Promise<DeliveryResult> {
    const address = `${name}@${t.location.domain}`;
    switch (action.kind) {
      case 'delete':
        return success(`vdelivermail: mail for unknown user ${address} deleted`);
      case 'forward':
        return this.#forward(t, action.address, `${name}@${t.host}`);
      case 'maildir':
        return this.#toMaildir(t, action.path, address, undefined);
      case 'directory': {
        const dotQmail = join(action.path, '.qmail');
        if (existsSync(dotQmail)) {
          return this.#runDotQmail(t, dotQmail, { home: action.path, local: name, host: t.location.domain, ext: '', defaultMaildir: `${join(action.path, 'Maildir')}/` });
        }
        return this.#toMaildir(t, join(action.path, 'Maildir'), address, undefined);
      }
      default:
        return failure(await this.#message(t.location.dir, '.no-user.msg', NO_MAILBOX));
    }
  }

  async #toMaildir(t: Target, maildir: string, address: string, quota: Quota | undefined): Promise<DeliveryResult> {
    const store = this.#s.mailStore();
    const prepend = `Return-Path: <${t.delivery.sender}>\nDelivered-To: ${address}\n`;
    try {
      const key = deliveryKey(t.delivery, t.recipient.recipient);
      const stored = await this.#intoMaildir(maildir, () => store.deliver(maildir, t.delivery.message.source, { prepend, key, ...(quota && { quota }) }));
      this.#s.log.debug({ maildir, uid: stored.uid }, `vdelivermail: ${address} delivered`);
      if (quota) await this.#quotaWarning(t, maildir, address, quota);
      return success(DELIVERED);
    } catch (err) {
      if (err instanceof QuailError && err.code === ErrorCodes.QUOTA) {
        await this.#quotaWarning(t, maildir, address, quota);
        return failure(await this.#message(t.location.dir, '.over-quota.msg', OVER_QUOTA));
      }
      const text = `vdelivermail: cannot deliver to ${address}: ${(err as Error).message}`;
      return isTemporary(err) ? deferral(text) : failure(text);
    }
  }

  /**
   * Runs a delivery into `maildir`, creating the maildir first when it has no
   * `new/`. A maildir seen before is not checked again: only when a delivery into
   * it fails is it looked at, and made again (then the delivery retried) if it
   * is gone. Nothing was stored by the failed attempt then, as `new/` is missing.
   */
  async #intoMaildir(maildir: string, deliver: () => Promise<StoredMessage>): Promise<StoredMessage> {
    const store = this.#s.mailStore();
    const newDir = join(maildir, 'new');
    if (!this.#seenMaildirs.has(maildir)) {
      if (!existsSync(newDir)) await store.create(maildir);
      if (this.#seenMaildirs.size >= MAX_SEEN_MAILDIRS) this.#seenMaildirs.clear();
      this.#seenMaildirs.add(maildir);
      return deliver();
    }
    try {
      return await deliver();
    } catch (err) {
      if (existsSync(newDir)) throw err;
      await store.create(maildir);
      return deliver();
    }
  }

  /**
   * vdelivermail's quota warning: when the maildir is at 90% or more and a
   * `.quotawarn.msg` exists (domain, else site-wide), that text is delivered into
   * the maildir, at most once a day (the `quotawarn` file's mtime records when).
   */
  async #quotaWarning(t: Target, maildir: string, address: string, quota: Quota | undefined): Promise<void> {
    if (!quota) return;
    const stamp = join(maildir, 'quotawarn');
    const now = this.#s.now();
    const last = await stat(stamp).then((s) => s.mtimeMs, () => undefined);
    if (last !== undefined && now - last < QUOTA_WARN_INTERVAL_MS) return;
    const text = await this.#message(t.location.dir, '.quotawarn.msg', '');
    if (!text) return;
    const store = this.#s.mailStore();
    const use = await store.usage(maildir);
    const percent = Math.max(quota.bytes ? (use.bytes * 100) / quota.bytes : 0, quota.messages ? (use.messages * 100) / quota.messages : 0);
    if (percent < QUOTA_WARN_PERCENT) return;
    const head = `Return-Path: <>\nDelivered-To: ${address}\nTo: ${address}\nDate: ${new Date(now).toUTCString()}\n`;
    await store.deliver(maildir, bufferSource(`${head}${text}\n`));
    await writeFile(stamp, '');
    await utimes(stamp, new Date(now), new Date(now));
  }

  /** A catch-all forward, as vdelivermail does it with qmail-inject: Return-Path and Delivered-To on top. */
  async #forward(t: Target, to: string, deliveredTo: string): Promise<DeliveryResult> {
    const queue = this.#s.queue();
    if (!queue) return deferral('vdelivermail: no Queue service to forward the message with');
    const head = `Return-Path: <${t.delivery.sender}>\nDelivered-To: ${deliveredTo}\n`;
    const message = t.delivery.message;
    const body = Readable.from(
      (async function* () {
        yield Buffer.from(head);
        yield* message.stream();
      })(),
    );
    try {
      const receipt = await queue.enqueue({ sender: t.delivery.sender, recipients: [to] }, body, { kind: 'forward' });
      return success(`forwarded to ${to} qp ${receipt.qp}`);
    } catch (err) {
      const text = `vdelivermail: cannot forward to ${to}: ${(err as Error).message}`;
      return isTemporary(err) ? deferral(text) : failure(text);
    }
  }

  async #runDotQmail(
    t: Target,
    file: string,
    request: { home: string; local: string; host: string; ext: string; defaultMaildir?: string; quota?: Quota },
  ): Promise<DeliveryResult> {
    const runner = this.#s.dotQmail();
    if (!runner) return deferral(`vdelivermail: ${file} needs the DotQmail service (plugin local), which is not loaded`);
    return runner.run(file, {
      delivery: t.delivery,
      recipient: t.recipient,
      ...request,
      ...(t.location.uid !== 0 && { uid: t.location.uid, gid: t.location.gid }),
    });
  }

  /** The domain's custom text, else the site-wide one in domains/, else vdelivermail's own. */
  async #message(domainDir: string, file: string, fallback: string): Promise<string> {
    for (const path of [join(domainDir, file), join(this.#s.store.domainsDir, file)]) {
      const text = await readFile(path, 'utf8').catch(() => undefined);
      const cleaned = text?.slice(0, MAX_MESSAGE_FILE).replace(/\0/g, '').trim();
      if (cleaned) return cleaned;
    }
    return fallback;
  }
}
