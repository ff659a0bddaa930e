import { connect as netConnect, isIP, type Socket } from 'node:net';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { ErrorCodes, QuailError } from '@quail/core';
import type { RouteCredentials } from './routes.js';
import type { TlsLevel } from './tls-policy.js';

/** What a reply answered: the greeting, a command, or the message body's final dot. */
export type ReplyLabel = 'greeting' | 'helo' | 'tls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'dot' | 'rset' | 'quit' | 'other';

export interface Reply {
  label: ReplyLabel;
  /** The three-digit code, NaN when the peer sent something that is not a reply. */
  code: number;
  text: string;
}

export interface SessionOptions {
  ip: string;
  port: number;
  /** The MX or relay name: SNI and the name a verified certificate must carry. */
  host: string;
  helo: string;
  tls: { level: TlsLevel; ca?: Buffer };
  credentials?: RouteCredentials;
  connectTimeoutMs: number;
  /** Longest wait for any one reply, and for the body to move (qmail's timeoutremote). */
  replyTimeoutMs: number;
}

/** Where an attempt to open a session stopped. */
export type OpenStage = 'connect' | 'greeting' | 'helo' | 'tls' | 'auth';

export class SessionOpenError extends QuailError {
  readonly stage: OpenStage;
  /** The peer's reply that ended it, when there was one. */
  readonly reply?: Reply;
  /** Why TLS or AUTH could not go ahead without a reply to show (not offered, would be in clear). */
  readonly reason?: 'tls-not-offered' | 'auth-not-offered' | 'auth-in-clear';
  constructor(stage: OpenStage, message: string, extra: { reply?: Reply; reason?: SessionOpenError['reason']; cause?: unknown } = {}) {
    super(ErrorCodes.TEMPORARY, message, { cause: extra.cause });
    this.name = 'SessionOpenError';
    this.stage = stage;
    if (extra.reply) this.reply = extra.reply;
    if (extra.reason) this.reason = extra.reason;
  }
}

/** What happened in one mail transaction, reply by reply. */
export interface TransactionLog {
  mail?: Reply;
  /** Replies to RCPT, in the order of the recipients given. */
  rcpt: Reply[];
  data?: Reply;
  dot?: Reply;
  /** The connection closed or timed out before the transaction finished. */
  died: boolean;
  /** The whole body, with its final dot, had been handed to the connection when it died. */
  afterDot: boolean;
  /** The message could not be read from the queue. */
  unreadable: boolean;
}

/** A peer that sends this much without completing a reply is cut off. */
const MAX_REPLY_BYTES = 1024 * 1024;
/** How long a polite QUIT may take before the socket is simply closed. */
const QUIT_GRACE_MS = 2000;

function parseReply(label: ReplyLabel, text: string): Reply {
  const m = /^(\d{3})(?:[ -]|$)/.exec(text);
  return { label, code: m ? Number(m[1]) : Number.NaN, text };
}

function labelOf(command: string, current: ReplyLabel | undefined): ReplyLabel {
  const verb = command.slice(0, 9).toUpperCase();
  if (verb.startsWith('EHLO') || verb.startsWith('HELO')) return 'helo';
  if (verb.startsWith('STARTTLS')) return 'tls';
  if (verb.startsWith('MAIL FROM')) return 'mail';
  if (verb.startsWith('RCPT TO')) return 'rcpt';
  if (verb === 'DATA') return 'data';
  if (verb === 'RSET') return 'rset';
  if (verb === 'QUIT') return 'quit';
  if (verb.startsWith('AUTH') || current === 'auth') return 'auth';
  return 'other';
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.');
}

/**
 * One SMTP client connection to one peer address, built on nodemailer's
 * SMTPConnection (EHLO with HELO fallback, STARTTLS, AUTH, PIPELINING of RCPT,
 * 8BITMIME, SIZE, dot-stuffing and LF to CRLF on the way out).
 *
 * On top of it this class keeps every reply labelled with the command it answers
 * (so that results are taken from what the peer said, per recipient), a watchdog
 * that limits the wait for each reply to the reply timeout even against a peer
 * that trickles bytes, and a cap on reply size.
 */
export class SmtpSession {
  readonly options: SessionOptions;
  /** Messages sent (or tried) on this connection. */
  messages = 0;
  #conn!: SMTPConnection;
  #socket!: Socket;
  #expect: ReplyLabel[] = ['greeting'];
  #lastLabel: ReplyLabel = 'greeting';
  #ehlo = '';
  #replies: Reply[] = [];
  #inBody = false;
  #afterDot = false;
  #dead = false;
  /** No transaction is open: the connection is new, or the last one ended with the reply to the dot. */
  #idle = true;
  #error?: Error;
  #timer?: NodeJS.Timeout;
  #bytes = 0;
  #onDeath: Array<() => void> = [];
  #closing?: Promise<void>;

  private constructor(options: SessionOptions) {
    this.options = options;
  }

  /** Connects, reads the greeting, says EHLO, does STARTTLS and AUTH as configured. */
  static async open(options: SessionOptions): Promise<SmtpSession> {
    const session = new SmtpSession(options);
    const socket = await connectSocket(options.ip, options.port, options.connectTimeoutMs);
    await session.#start(socket);
    return session;
  }

  get alive(): boolean {
    return !this.#dead;
  }

  /** True once STARTTLS succeeded. */
  get secure(): boolean {
    return this.#conn.secure;
  }

  /** The peer's EHLO reply (after STARTTLS, the second one). */
  get ehlo(): string {
    return this.#ehlo;
  }

  /** The SIZE limit the peer announced, 0 for none. */
  get maxSize(): number {
    const m = /^250[ -]SIZE[ \t]+(\d+)/im.exec(this.#ehlo);
    return m ? Number(m[1]) : 0;
  }

  /** Calls `fn` once when the connection is gone (peer closed, timeout, close()). */
  onDeath(fn: () => void): void {
    if (this.#dead) fn();
    else this.#onDeath.push(fn);
  }

  async #start(socket: Socket): Promise<void> {
    const { options } = this;
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#bytes += chunk.length;
      if (this.#bytes > MAX_REPLY_BYTES) this.#kill(new Error(`the peer sent more than ${MAX_REPLY_BYTES} bytes without completing a reply`));
    });
    const level = options.tls.level;
    const verify = level === 'verify';
    const conn = new SMTPConnection({
      connection: socket,
      host: options.ip,
      port: options.port,
      name: options.helo,
      ...(isIP(options.host) === 0 && { servername: options.host }),
      ignoreTLS: level === 'none',
      requireTLS: level === 'encrypt' || level === 'verify',
      opportunisticTLS: level === 'may',
      tls: {
        rejectUnauthorized: verify,
        ...(verify && isIP(options.host) === 0 && { servername: options.host }),
        ...(verify && options.tls.ca && { ca: options.tls.ca }),
      },
      socketTimeout: options.replyTimeoutMs,
      greetingTimeout: options.replyTimeoutMs,
      transactionLog: true,
      logger: this.#trafficLogger(),
    });
    this.#conn = conn;
    conn.on('error', (err: Error) => {
      this.#error ??= err;
    });
    conn.on('end', () => this.#died());

    await this.#op<void>((done) => conn.connect((err) => done(err ?? undefined)), (err) => this.#openError(err));
    if ((level === 'encrypt' || verify) && !conn.secure) {
      void this.close();
      throw new SessionOpenError('tls', 'TLS is required but the connection is not encrypted', { reason: 'tls-not-offered' });
    }
    if (options.credentials) await this.#login(options.credentials);
    this.#replies = [];
  }

  async #login(credentials: RouteCredentials): Promise<void> {
    if (!this.secure && !isLoopback(this.options.ip)) {
      void this.close();
      throw new SessionOpenError('auth', 'credentials are not sent without TLS', { reason: 'auth-in-clear' });
    }
    if (!/^250[ -]AUTH[ =]/im.test(this.#ehlo)) {
      void this.close();
      throw new SessionOpenError('auth', 'the peer does not offer AUTH', { reason: 'auth-not-offered' });
    }
    await this.#op<void>(
      (done) => this.#conn.login({ credentials: { user: credentials.user, pass: credentials.password } }, (err) => done(err ?? undefined)),
      (err) => this.#openError(err, 'auth'),
    );
  }

  /**
   * Runs one mail transaction. Never throws for anything the peer does: the
   * returned log says which replies came and whether the connection died.
   */
  async send(envelope: { from: string; to: string[]; size: number; eightBit: boolean }, body: Readable): Promise<TransactionLog> {
    this.messages++;
    this.#idle = false;
    this.#replies = [];
    this.#afterDot = false;
    let unreadable = false;
    const meter = new BodyMeter(() => this.#arm());
    // The dot counts as sent once the whole body has left our socket buffer (qmail: once the write of the dot succeeded).
    meter.once('end', () => {
      const sent = () => {
        this.#afterDot = true;
      };
      setImmediate(() => (this.#socket.writableLength === 0 ? sent() : this.#socket.once('drain', sent)));
    });
    body.on('error', (err) => {
      unreadable = true;
      meter.destroy(err);
    });
    body.pipe(meter);
    try {
      await this.#op<unknown>(
        (done) => {
          this.#conn.send({ from: envelope.from, to: envelope.to, size: envelope.size, use8BitMime: envelope.eightBit } as SMTPConnection.Envelope, meter, (err) =>
            done(err ?? undefined),
          );
        },
        (err) => err,
      );
    } catch {
      // What went wrong is read from the replies below; a broken body leaves the connection unusable.
      if (unreadable) this.close();
    } finally {
      this.#inBody = false;
    }
    body.unpipe(meter);
    if (!meter.writableFinished) body.destroy();
    const pick = (label: ReplyLabel) => this.#replies.find((r) => r.label === label);
    this.#idle = pick('dot') !== undefined;
    return {
      ...(pick('mail') && { mail: pick('mail') }),
      rcpt: this.#replies.filter((r) => r.label === 'rcpt'),
      ...(pick('data') && { data: pick('data') }),
      ...(pick('dot') && { dot: pick('dot') }),
      died: this.#dead,
      afterDot: this.#afterDot,
      unreadable,
    };
  }

  /**
   * Readies a reused connection for the next message; false when it is no good.
   * After a transaction that ended with the reply to the dot the peer is already
   * back in its initial state (RFC 5321 4.1.1.4), so RSET is sent only after one
   * that stopped earlier, saving a round trip per message.
   */
  async reset(): Promise<boolean> {
    if (this.#dead) return false;
    if (this.#idle) return true;
    try {
      await this.#op<void>((done) => this.#conn.reset((err) => done(err ?? undefined)), (err) => err);
      this.#idle = true;
      return true;
    } catch {
      this.close();
      return false;
    }
  }

  /** Says QUIT and closes; resolves once the socket is gone. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      this.onDeath(resolve);
      if (this.#dead) return;
      const force = setTimeout(() => this.#kill(new Error('closed')), QUIT_GRACE_MS);
      force.unref();
      this.onDeath(() => clearTimeout(force));
      try {
        if (this.#conn && this.#socket.writable && this.#expect.length === 0) this.#conn.quit();
        else this.#kill(new Error('closed'));
      } catch {
        this.#kill(new Error('closed'));
      }
    });
    return this.#closing;
  }

  /** Runs one nodemailer call with the reply watchdog armed; connection death rejects it. */
  #pending?: (err: Error) => void;
  #op<T>(start: (done: (err?: Error, value?: T) => void) => void, mapError: (err: Error) => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#dead) return reject(mapError(this.#error ?? new Error('connection closed')));
      let settled = false;
      const finish = (err?: Error, value?: T) => {
        if (settled) return;
        settled = true;
        this.#pending = undefined;
        this.#disarm();
        if (err) reject(mapError(err));
        else resolve(value as T);
      };
      this.#pending = (err) => finish(err);
      this.#arm();
      try {
        start(finish);
      } catch (err) {
        finish(err as Error);
      }
    });
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#kill(new Error(`no complete reply within ${Math.round(this.options.replyTimeoutMs / 1000)} s`)), this.options.replyTimeoutMs);
    this.#timer.unref();
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #kill(err: Error): void {
    if (this.#dead) return;
    this.#error ??= err;
    this.#conn?.close();
    this.#socket?.destroy();
    this.#died();
  }

  #died(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#disarm();
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.(this.#error ?? new Error('connection closed by the peer'));
    for (const fn of this.#onDeath.splice(0)) fn();
  }

  /** Sees every command nodemailer sends and every reply it reads (its transaction log). */
  #trafficLogger() {
    const onEntry = (entry: { tnx?: string }, message?: unknown) => {
      if (typeof message !== 'string') return;
      if (entry?.tnx === 'client') {
        const label = labelOf(message, this.#lastLabel);
        this.#lastLabel = label;
        this.#expect.push(label);
        this.#arm();
      } else if (entry?.tnx === 'server') {
        this.#bytes = 0;
        const label = this.#expect.shift() ?? (this.#inBody ? 'dot' : 'other');
        const reply = parseReply(label, message);
        if (label === 'helo' && reply.code === 250) this.#ehlo = message;
        if (label === 'data') this.#inBody = reply.code >= 200 && reply.code < 400;
        if (label === 'dot') this.#inBody = false;
        this.#replies.push(reply);
        if (this.#pending) this.#arm();
      }
    };
    const ignore = () => undefined;
    return { level: ignore, trace: ignore, debug: onEntry, info: ignore, warn: ignore, error: ignore, fatal: ignore };
  }

  /** The reply that ended the open, if the peer gave one. */
  #lastReply(label: ReplyLabel): Reply | undefined {
    const r = this.#replies[this.#replies.length - 1];
    return r && r.label === label ? r : undefined;
  }

  #openError(err: Error, forced?: OpenStage): SessionOpenError {
    const code = (err as { code?: string }).code;
    const last = this.#replies[this.#replies.length - 1];
    const stage: OpenStage = forced ?? (code === 'ETLS' ? 'tls' : last === undefined ? 'greeting' : toOpenStage(this.#lastLabel));
    const reply = this.#lastReply(stage === 'connect' ? 'greeting' : stage);
    const ok = reply !== undefined && reply.code >= 200 && reply.code < 400;
    this.close();
    return new SessionOpenError(stage, err.message, { ...(reply && !ok && { reply }), cause: err });
  }
}

function toOpenStage(label: ReplyLabel): OpenStage {
  switch (label) {
    case 'greeting':
    case 'helo':
    case 'tls':
    case 'auth':
      return label;
    default:
      return 'helo';
  }
}

/** Passes the body through, re-arming the reply watchdog while it moves. */
class BodyMeter extends Transform {
  readonly #moved: () => void;
  constructor(moved: () => void) {
    super();
    this.#moved = moved;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#moved();
    done(null, chunk);
  }
}

function connectSocket(ip: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: ip, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SessionOpenError('connect', `connect to ${ip}:${port} timed out after ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    timer.unref();
    socket.once('connect', () => {
      clearTimeout(timer);
      // Commands are small writes that wait for replies: Nagle's algorithm would hold each one back.
      socket.setNoDelay(true);
      resolve(socket);
    });
    // Stays for the socket's life: errors after connecting reach nodemailer's own listener and end the session.
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new SessionOpenError('connect', `connect to ${ip}:${port} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err }));
    });
  });
}
