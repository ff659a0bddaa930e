import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import {
  Transaction,
  isTemporary,
  matchesHostList,
  qmailText,
  splitAddress,
  verdictToSmtpReply,
  type AuthMechanism,
  type Authenticator,
  type Clock,
  type Connection,
  type HookResult,
  type KernelHooks,
  type Logger,
  type Queue,
  type QueueWriter,
} from '@quail/core';
import { parsePath } from './address.js';
import { HopCounter } from './data-decoder.js';
import { receivedLine } from './received.js';
import { reply, Texts, type SmtpReply } from './replies.js';
import type { ListenerKind, SmtpdSettings } from './settings.js';

/** What a session needs from the server around it. */
export interface SessionServices {
  hooks: KernelHooks;
  queue(): Queue;
  authenticator?: Authenticator | undefined;
  clock: Clock;
  log: Logger;
}

/** qmail counts 100 or more Received/Delivered-To lines as a loop. */
const MAX_HOPS = 100;

/**
 * The quail side of one SMTP connection: qmail-smtpd's rules (relay control,
 * badmailfrom, databytes, hops), the kernel hooks at their points, and the
 * message streamed into the Queue. It knows nothing of the wire; the
 * connection turns its replies into bytes.
 */
export class SmtpSession {
  readonly conn: Connection;
  readonly settings: SmtpdSettings;
  readonly kind: ListenerKind;
  /** The current transaction, from MAIL until the end of DATA or a reset. */
  tx: Transaction | undefined;
  authFailures = 0;
  readonly #services: SessionServices;
  #badSender = false;
  #writer: QueueWriter | undefined;

  constructor(services: SessionServices, settings: SmtpdSettings, kind: ListenerKind, conn: Connection) {
    this.#services = services;
    this.settings = settings;
    this.kind = kind;
    this.conn = conn;
  }

  /** DATABYTES from tcprules overrides control/databytes, as in qmail. */
  get databytes(): number {
    const env = this.conn.env.DATABYTES;
    if (env !== undefined && /^\d+$/.test(env)) return Number(env);
    return this.settings.databytes;
  }

  /** Seconds-to-milliseconds GREETDELAY of the matching tcprules rule (0: greet at once). */
  get greetDelayMs(): number {
    const env = this.conn.env.GREETDELAY;
    if (env === undefined || !/^\d+(\.\d+)?$/.test(env)) return 0;
    return Math.min(Number(env) * 1000, this.settings.timeoutMs);
  }

  /** AUTH may be used here: an Authenticator exists, and TLS is up or plain text is allowed. */
  get authAvailable(): boolean {
    if (!this.#services.authenticator) return false;
    if (this.conn.tls) return true;
    const force = this.conn.env.FORCETLS;
    if (force === '0') return true;
    if (force !== undefined && force !== '') return false;
    return this.conn.isLoopback;
  }

  /** The mechanisms to advertise (PLAIN and LOGIN, as far as the Authenticator checks them). */
  get authMechanisms(): AuthMechanism[] {
    const known = this.#services.authenticator?.mechanisms() ?? [];
    return (['PLAIN', 'LOGIN'] as const).filter((m) => known.includes(m));
  }

  get hasAuthenticator(): boolean {
    return this.#services.authenticator !== undefined;
  }

  /** The `connect` hook; a reply means the connection is refused with it. */
  async connect(): Promise<SmtpReply | undefined> {
    const verdict = await this.#services.hooks.connect.promise(this.conn);
    if (!verdict || verdict.kind === 'accept') return undefined;
    const r = verdictToSmtpReply(verdict, { code: 220, text: '' });
    return reply(r.code, r.text, true);
  }

  /** HELO/EHLO: resets the transaction and runs the `helo` hook. */
  async helo(name: string): Promise<SmtpReply | undefined> {
    this.reset();
    this.conn.helo = name;
    const r = this.#refusal(await this.#services.hooks.helo.promise(this.conn, name));
    return r.code >= 400 ? r : undefined;
  }

  /** RSET, HELO, EHLO and the end of DATA forget the transaction. */
  reset(): void {
    this.tx = undefined;
    this.#badSender = false;
    const writer = this.#writer;
    this.#writer = undefined;
    if (writer) void writer.abort().catch((err: unknown) => this.#services.log.warn({ err }, 'could not abort a queue write'));
  }

  /** After STARTTLS: everything learned before is forgotten (RFC 3207 4.2). */
  secured(tls: { protocol: string; cipher: string }): void {
    this.reset();
    this.conn.tls = tls;
    delete this.conn.helo;
    delete this.conn.user;
  }

  /** Checks a login; `undefined` username/password means the client sent something undecodable. */
  async authenticate(mechanism: AuthMechanism, username: string, password: string): Promise<SmtpReply> {
    const attempt = { mechanism, username, failures: this.authFailures };
    const verdict = await this.#services.hooks.auth.promise(this.conn, attempt);
    if (verdict?.kind === 'accept') return this.#authenticated(username);
    if (verdict) {
      const r = verdictToSmtpReply(verdict, { code: 535, text: Texts.authFailed });
      if (verdict.kind === 'deny') return this.#authFailed(reply(r.code, r.text, r.close));
      return reply(r.code, r.text, r.close);
    }
    const authenticator = this.#services.authenticator;
    if (!authenticator) return reply(502, Texts.unimplemented);
    let outcome;
    try {
      outcome = await authenticator.authenticate({ mechanism, service: 'smtp', username, password, remoteAddress: this.conn.remoteAddress });
    } catch (err) {
      this.#services.log.error({ err }, `authenticator failed for ${username}`);
      return reply(454, Texts.authTemporary);
    }
    if (outcome.ok) return this.#authenticated(username);
    if (outcome.reason === 'temporary') return reply(454, outcome.message ? qmailText(outcome.message, '4.7.0') : Texts.authTemporary);
    return this.#authFailed(reply(535, Texts.authFailed));
  }

  #authenticated(username: string): SmtpReply {
    this.conn.user = username;
    this.#services.log.info({ conn: this.conn.id, user: username }, `authenticated ${username} from ${this.conn.remoteAddress}`);
    return reply(235, Texts.authOk);
  }

  /** A failed attempt waits before its reply, and the connection closes after too many. */
  async #authFailed(r: SmtpReply): Promise<SmtpReply> {
    this.authFailures++;
    this.#services.log.info({ conn: this.conn.id, failures: this.authFailures }, `authentication failed from ${this.conn.remoteAddress}`);
    const delay = this.settings.authFailDelayMs;
    if (delay > 0) await new Promise<void>((resolve) => this.#services.clock.setTimeout(resolve, delay));
    return this.authFailures >= this.settings.maxAuthFailures ? { ...r, close: true } : r;
  }

  /** MAIL FROM: qmail's parsing, SIZE against databytes, badmailfrom noted, then the `mail` hook. */
  async mail(argument: string): Promise<SmtpReply> {
    if (this.kind === 'submission' && this.conn.user === undefined) return reply(530, Texts.authRequired);
    const parsed = parsePath(argument, 'from', this.settings.strict);
    if (!parsed.ok) return this.#pathError(parsed.reason);
    const size = parsed.params.SIZE;
    if (typeof size === 'string' && /^\d+$/.test(size)) {
      if (this.databytes > 0 && Number(size) > this.databytes) return reply(552, Texts.databytes);
    } else if (size !== undefined && this.settings.strict) {
      return reply(501, Texts.badParams);
    }
    const body = parsed.params.BODY;
    if (this.settings.strict && body !== undefined && !(typeof body === 'string' && /^(7BIT|8BITMIME)$/i.test(body))) {
      return reply(501, Texts.badParams);
    }
    this.reset();
    const tx = new Transaction(this.conn);
    tx.sender = splitAddress(parsed.address, parsed.params);
    const sender = tx.sender;
    this.#badSender = this.settings.badmailfrom.has(sender.address.toLowerCase()) || (sender.domain !== '' && this.settings.badmailfrom.has(`@${sender.domain}`));
    const refusal = this.#refusal(await this.#services.hooks.mail.promise(tx, sender), Texts.ok);
    if (refusal.code >= 400) return refusal;
    this.tx = tx;
    return refusal;
  }

  /** RCPT TO: badmailfrom, the recipient limit, rcpthosts or RELAYCLIENT, then the `rcpt` hook. */
  async rcpt(argument: string): Promise<SmtpReply> {
    const tx = this.tx;
    if (!tx) return reply(503, Texts.mailFirst);
    const parsed = parsePath(argument, 'to', this.settings.strict);
    if (!parsed.ok) return this.#pathError(parsed.reason);
    if (this.#badSender) return reply(553, Texts.badmailfrom);
    if (tx.recipients.length >= this.settings.maxrcpt) return reply(452, Texts.tooManyRcpt);
    let address = this.#localIpHost(parsed.address);
    const relayClient = this.conn.env.RELAYCLIENT;
    if (relayClient !== undefined) {
      address += relayClient;
    } else if (this.conn.user === undefined && !matchesHostList(splitAddress(address).domain, this.settings.rcpthosts)) {
      return reply(553, Texts.rcpthosts);
    }
    // a bare name is qualified with envnoathost, as qmail-send would
    if (!address.includes('@')) address = `${address}@${this.settings.envnoathost}`;
    const recipient = splitAddress(address, parsed.params);
    const r = this.#refusal(await this.#services.hooks.rcpt.promise(tx, recipient), Texts.ok);
    if (r.code < 400 && this.tx === tx) tx.recipients.push(recipient);
    return r;
  }

  /** DATA: the order checks, then a queue write is opened and the Received line written. */
  async openData(): Promise<SmtpReply> {
    const tx = this.tx;
    if (!tx) return reply(503, Texts.mailFirst);
    if (tx.recipients.length === 0) return reply(503, Texts.rcptFirst);
    try {
      this.#writer = await this.#services.queue().create({ kind: 'network', remoteAddress: this.conn.remoteAddress });
    } catch (err) {
      this.#services.log.error({ err }, 'cannot open a queue write');
      return reply(451, Texts.qqt);
    }
    this.#writer.stream.write(
      receivedLine({
        ...(this.conn.remoteHost !== undefined && { remoteHost: this.conn.remoteHost }),
        remoteIp: this.conn.remoteAddress,
        ...(this.conn.helo !== undefined && { helo: this.conn.helo }),
        ...(this.conn.user !== undefined && { remoteInfo: this.conn.user }),
        localHost: this.settings.me,
        ...(this.conn.tls && { tlsCipher: this.conn.tls.cipher }),
        authenticated: this.conn.user !== undefined,
        date: new Date(this.#services.clock.now()),
      }),
    );
    return reply(354, Texts.goAhead);
  }

  /**
   * Streams the decoded message (LF line ends, dots undone) into the queue write,
   * then runs the `data` and `queue` hooks and commits. Throws when the client
   * went away or sent a bare LF: the write is aborted and nothing is queued.
   */
  async receive(data: Readable): Promise<SmtpReply> {
    const tx = this.tx;
    const writer = this.#writer;
    if (!tx || !writer) throw new Error('receive without an open DATA');
    try {
      const limit = this.databytes;
      const hops = new HopCounter();
      const sink = new Sink(writer.stream);
      let size = 0;
      for await (const chunk of data as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (limit > 0 && size > limit) continue; // keep reading to the final dot, write nothing more
        hops.feed(chunk);
        await sink.write(chunk);
      }
      tx.size = size;
      if (limit > 0 && size > limit) return this.#drop(reply(552, Texts.databytes));
      if (hops.hops >= MAX_HOPS) return this.#drop(reply(554, Texts.hops));
      if (!(await sink.end())) return this.#drop(reply(451, Texts.qqWrite));
      const message = writer.message();
      const dataRefusal = this.#refusal(await this.#services.hooks.data.promise(tx, message), Texts.ok);
      if (dataRefusal.code >= 400) return this.#drop(dataRefusal);
      const queueVerdict = await this.#services.hooks.queue.promise(tx, message);
      if (queueVerdict) {
        // accept: a plugin took the message over; otherwise it refused it
        const r = verdictToSmtpReply(queueVerdict, { code: 250, text: Texts.ok });
        return this.#drop(reply(r.code, r.text, r.close));
      }
      return await this.#commit(tx, writer);
    } catch (err) {
      this.#writer = undefined;
      await writer.abort().catch(() => undefined);
      this.tx = undefined;
      throw err;
    }
  }

  async #commit(tx: Transaction, writer: QueueWriter): Promise<SmtpReply> {
    this.#writer = undefined;
    this.tx = undefined;
    try {
      const receipt = await writer.commit({ sender: tx.sender?.address ?? '', recipients: tx.recipients.map((r) => r.address) });
      this.#services.log.info({ conn: this.conn.id, id: receipt.id, qp: receipt.qp, size: tx.size }, `message accepted, qp ${receipt.qp}`);
      return reply(250, `ok ${Math.floor(receipt.acceptedAt.getTime() / 1000)} qp ${receipt.qp}`);
    } catch (err) {
      this.#services.log.error({ err }, 'queue commit failed');
      await writer.abort().catch(() => undefined);
      return reply(451, isTemporary(err) ? Texts.qqWrite : Texts.qqt);
    }
  }

  /** Ends the transaction without queueing anything. */
  #drop(r: SmtpReply): SmtpReply {
    this.reset();
    return r;
  }

  /** qmail's localiphost rule: `box@[ip-of-this-host]` becomes `box@localiphost`. */
  #localIpHost(address: string): string {
    const at = address.lastIndexOf('@');
    if (at < 0) return address;
    const domain = address.slice(at + 1);
    if (domain === `[${this.conn.localAddress}]`) return `${address.slice(0, at)}@${this.settings.localiphost}`;
    return address;
  }

  #pathError(reason: 'syntax' | 'too-long' | 'params'): SmtpReply {
    if (reason === 'params') return reply(501, Texts.badParams);
    return reply(555, Texts.syntax);
  }

  /** A hook verdict as a reply: refusals as given, accept or no opinion as `fallback` (250). */
  #refusal(verdict: HookResult, fallback?: string): SmtpReply {
    if (!verdict) return reply(250, fallback ?? Texts.ok);
    const r = verdictToSmtpReply(verdict, { code: 250, text: fallback ?? Texts.ok });
    return reply(r.code, r.text, r.close);
  }
}

/** Writes into the queue stream with backpressure, remembering a write error instead of throwing it. */
class Sink {
  readonly #stream: Writable;
  #failed = false;

  constructor(stream: Writable) {
    this.#stream = stream;
    stream.on('error', () => {
      this.#failed = true;
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#failed) return;
    if (!this.#stream.write(chunk) && !this.#failed) {
      await Promise.race([once(this.#stream, 'drain'), once(this.#stream, 'close')]).catch(() => undefined);
    }
  }

  /** Ends the stream; false when writing failed. */
  async end(): Promise<boolean> {
    if (this.#failed) return false;
    await new Promise<void>((resolve) => {
      this.#stream.once('error', () => resolve());
      this.#stream.end(() => resolve());
    });
    return !this.#failed;
  }
}
