import { randomBytes } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import {
  verdictToPop3Reply,
  type AuthMechanism,
  type Authenticator,
  type AuthOutcome,
  type Clock,
  type Connection,
  type Credentials,
  type KernelHooks,
  type Logger,
  type MailStore,
  type MailUser,
  type UserStore,
} from '@quail/core';
import { parseCommand, parseLineCount, type Pop3Command } from './command.js';
import { DotStuffTransform, multilineResponse } from './dot-stuff.js';
import type { LoginThrottle } from './login-throttle.js';
import type { LockHandle, MailboxLocks } from './mailbox-lock.js';
import { Maildrop, uidlOf, type DropMessage } from './maildrop.js';
import { decodeBase64, encodeBase64, parseCramResponse, parsePlain } from './sasl.js';
import type { Pop3Transport } from './transport.js';

export type Pop3State = 'authorization' | 'transaction' | 'update' | 'closed';

/** The services a session works with. */
export interface SessionServices {
  hooks: Pick<KernelHooks, 'auth'>;
  authenticator: Authenticator;
  mailStore: MailStore;
  /** Used when an `auth` hook vouches for a login itself: the user's Maildir is looked up here. */
  userStore?: UserStore;
  locks: MailboxLocks;
  throttle: LoginThrottle;
  clock: Clock;
  log: Logger;
}

export interface SessionSettings {
  /** Host name in the APOP timestamp (control/me). */
  hostname: string;
  /** STLS can be offered (a certificate is configured). */
  tlsAvailable: boolean;
  /** Plain-text logins are allowed on this connection even without TLS (loopback, control/pop3d.plaintext). */
  plaintextWithoutTls: boolean;
  /** Base delay before answering a failed login, in milliseconds. */
  failDelayMs: number;
  /** Consecutive unknown, malformed or out-of-state commands tolerated before the connection is closed. */
  maxBadCommands: number;
  /** Failed AUTH exchanges allowed on one connection (USER/PASS and APOP get one try, as in qmail-popup). */
  maxAuthFailures: number;
}

type SaslState =
  | { mechanism: 'PLAIN' }
  | { mechanism: 'LOGIN'; username?: string }
  | { mechanism: 'CRAM-MD5'; challenge: string };

type LoginStyle = 'popup' | 'sasl';

const SASL_MECHANISMS: readonly AuthMechanism[] = ['PLAIN', 'LOGIN', 'CRAM-MD5'];
const PLAINTEXT_MECHANISMS: readonly AuthMechanism[] = ['USER', 'PLAIN', 'LOGIN'];
const PLAINTEXT_REFUSED = '-ERR [AUTH] plain-text logins need an encrypted connection: use STLS first';

/** Messages up to this size are read with one read and sent with one write; larger ones are streamed. */
const WHOLE_MESSAGE_LIMIT = 128 * 1024;
/** Messages up to this size are read ahead for a client retrieving in order. */
const READ_AHEAD_LIMIT = 64 * 1024;

let timestampSerial = 0;

/**
 * One POP3 conversation (RFC 1939, 2449, 2595, 5034) as a state machine:
 * AUTHORIZATION (qmail-popup's part) → TRANSACTION (qmail-pop3d's part) →
 * UPDATE at QUIT. Lines come in through `handle`, answers go out through the
 * transport. Mail is removed only in UPDATE.
 */
export class Pop3Session {
  readonly connection: Connection;
  readonly #transport: Pop3Transport;
  readonly #services: SessionServices;
  readonly #settings: SessionSettings;
  readonly #timestamp: string;
  #state: Pop3State = 'authorization';
  #userName?: string;
  #sasl?: SaslState;
  #capaSeen = false;
  #badCommands = 0;
  #authFailures = 0;
  #lock?: LockHandle;
  #drop?: Maildrop;
  #user?: MailUser;
  /** A RETR/TOP body is on its way out: nothing else may be written in between. */
  #transferring = false;
  /** The message number of the last RETR, to notice a client retrieving in order. */
  #lastRetrieved = 0;
  /** The RETR answer prepared for the next message while the client reads the current one. */
  #readAhead?: { number: number; response: Buffer };

  constructor(connection: Connection, transport: Pop3Transport, services: SessionServices, settings: SessionSettings) {
    this.connection = connection;
    this.#transport = transport;
    this.#services = services;
    this.#settings = settings;
    const seconds = Math.floor(services.clock.now() / 1000);
    timestampSerial = (timestampSerial + 1) % 1_000_000;
    this.#timestamp = `<${process.pid}.${seconds}.${timestampSerial}@${settings.hostname}>`;
  }

  get state(): Pop3State {
    return this.#state;
  }

  /** The APOP timestamp of this session (shown in the greeting when APOP is offered). */
  get timestamp(): string {
    return this.#timestamp;
  }

  /** The logged-in user, in TRANSACTION state. */
  get user(): MailUser | undefined {
    return this.#user;
  }

  /** Sends the greeting. */
  greet(): void {
    const apop = this.#mechanisms().includes('APOP');
    this.#transport.send(apop ? `+OK ${this.#timestamp}` : `+OK ${this.#settings.hostname} POP3 ready`);
  }

  /** Handles one command line (without its line end). */
  async handle(line: Buffer): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'update') return;
    if (line.includes(0)) {
      this.#sasl = undefined;
      this.#bad('NUL byte in command');
      return;
    }
    const text = line.toString('utf8');
    if (this.#sasl) {
      await this.#saslStep(text);
      return;
    }
    const command = parseCommand(text);
    if (this.#state === 'authorization') await this.#authorization(command);
    else await this.#transaction(command);
  }

  /** The client sent a line longer than the limit. */
  tooLong(): void {
    if (this.#state === 'closed' || this.#state === 'update') return;
    this.#sasl = undefined;
    this.#bad('line too long');
  }

  /**
   * The connection is gone (client hung up, timeout, error). Nothing is deleted;
   * retrieved messages are marked seen, and the lock is released once every
   * listed message is in cur/.
   */
  async closed(): Promise<void> {
    if (this.#state === 'closed') return;
    const updating = this.#state === 'update';
    this.#state = 'closed';
    // An UPDATE in progress finishes the deletions the client asked for and releases the lock itself.
    if (!updating) await this.#finish();
  }

  /** Server shutdown: tells the client, closes, deletes nothing (an UPDATE already running completes). */
  async shutdown(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'update') return;
    if (!this.#transferring) this.#transport.send('-ERR [SYS/TEMP] server shutting down, nothing was deleted');
    this.#close();
    await this.#finish();
  }

  /* ------------------------------------------------------------ AUTHORIZATION */

  async #authorization(command: Pop3Command): Promise<void> {
    switch (command.verb) {
      case 'USER':
        return this.#userCommand(command);
      case 'PASS':
        return this.#passCommand(command);
      case 'APOP':
        return this.#apopCommand(command);
      case 'AUTH':
        return this.#authCommand(command);
      case 'STLS':
        return this.#stlsCommand();
      case 'CAPA':
        return this.#capa();
      case 'NOOP':
        return this.#ok();
      case 'QUIT':
        this.#ok();
        this.#close();
        await this.#release();
        return;
      default:
        this.#bad('authorization first');
    }
  }

  #userCommand(command: Pop3Command): void {
    if (!this.#plaintextAllowed()) return this.#refuse(PLAINTEXT_REFUSED);
    if (command.rest === '') return this.#bad('syntax error');
    this.#userName = command.rest;
    this.#ok();
  }

  async #passCommand(command: Pop3Command): Promise<void> {
    if (this.#userName === undefined) return this.#bad('USER first');
    if (command.rest === '') return this.#bad('syntax error');
    if (!this.#plaintextAllowed()) return this.#refuse(PLAINTEXT_REFUSED);
    await this.#login({ mechanism: 'USER', service: 'pop3', username: this.#userName, password: command.rest }, 'popup');
  }

  async #apopCommand(command: Pop3Command): Promise<void> {
    if (command.args.length !== 2) return this.#bad('syntax error');
    if (!this.#mechanisms().includes('APOP')) return this.#bad('APOP is not available here');
    const [username, digest] = command.args as [string, string];
    await this.#login({ mechanism: 'APOP', service: 'pop3', username, challenge: this.#timestamp, response: digest.toLowerCase() }, 'popup');
  }

  async #authCommand(command: Pop3Command): Promise<void> {
    const offered = this.#saslMechanisms();
    if (command.args.length === 0) {
      this.#badCommands = 0;
      this.#transport.send('+OK SASL mechanisms follow');
      for (const mechanism of offered) this.#transport.send(mechanism);
      this.#transport.send('.');
      return;
    }
    if (command.args.length > 2) return this.#bad('syntax error');
    const mechanism = command.args[0]!.toUpperCase() as AuthMechanism;
    const initial = command.args[1];
    if (!SASL_MECHANISMS.includes(mechanism) || !this.#mechanisms().includes(mechanism)) {
      return this.#bad('unsupported authentication mechanism');
    }
    if (!offered.includes(mechanism)) return this.#refuse(PLAINTEXT_REFUSED);
    this.#badCommands = 0;
    switch (mechanism) {
      case 'PLAIN':
        this.#sasl = { mechanism: 'PLAIN' };
        if (initial === undefined) return this.#transport.send('+ ');
        return this.#saslStep(initial);
      case 'LOGIN':
        this.#sasl = { mechanism: 'LOGIN' };
        if (initial === undefined) return this.#transport.send(`+ ${encodeBase64('Username:')}`);
        return this.#saslStep(initial);
      default: {
        if (initial !== undefined) return this.#bad('CRAM-MD5 takes no initial response');
        const challenge = `<${process.pid}.${randomBytes(8).toString('hex')}@${this.#settings.hostname}>`;
        this.#sasl = { mechanism: 'CRAM-MD5', challenge };
        this.#transport.send(`+ ${encodeBase64(challenge)}`);
      }
    }
  }

  async #saslStep(line: string): Promise<void> {
    const sasl = this.#sasl!;
    if (line === '*') {
      this.#sasl = undefined;
      this.#transport.send('-ERR authentication cancelled');
      return;
    }
    const data = decodeBase64(line);
    if (!data) {
      this.#sasl = undefined;
      return this.#bad('invalid base64 in the authentication exchange');
    }
    switch (sasl.mechanism) {
      case 'PLAIN': {
        this.#sasl = undefined;
        const plain = parsePlain(data);
        if (!plain) return this.#bad('malformed PLAIN credentials');
        if (plain.authzid !== '' && plain.authzid !== plain.username) {
          return this.#loginFailed('sasl', '-ERR [AUTH] authorization identity differs from the login');
        }
        return this.#login({ mechanism: 'PLAIN', service: 'pop3', username: plain.username, password: plain.password }, 'sasl');
      }
      case 'LOGIN': {
        const value = data.toString('utf8');
        if (sasl.username === undefined) {
          if (value === '') {
            this.#sasl = undefined;
            return this.#bad('empty login name');
          }
          this.#sasl = { mechanism: 'LOGIN', username: value };
          this.#transport.send(`+ ${encodeBase64('Password:')}`);
          return;
        }
        this.#sasl = undefined;
        return this.#login({ mechanism: 'LOGIN', service: 'pop3', username: sasl.username, password: value }, 'sasl');
      }
      case 'CRAM-MD5': {
        this.#sasl = undefined;
        const cram = parseCramResponse(data);
        if (!cram) return this.#bad('malformed CRAM-MD5 response');
        return this.#login(
          { mechanism: 'CRAM-MD5', service: 'pop3', username: cram.username, challenge: sasl.challenge, response: cram.digest },
          'sasl',
        );
      }
    }
  }

  async #stlsCommand(): Promise<void> {
    if (this.#transport.secure) return this.#bad('Command not permitted when TLS active');
    if (!this.#settings.tlsAvailable) return this.#bad('STLS is not available: no certificate configured');
    this.#badCommands = 0;
    this.#transport.send('+OK Begin TLS negotiation');
    try {
      this.connection.tls = await this.#transport.startTls();
    } catch (err) {
      this.#services.log.info({ conn: this.connection.id, err }, 'STLS handshake failed');
      this.#close();
      return;
    }
    // RFC 2595: what the client said before the handshake is forgotten.
    this.#userName = undefined;
    this.#capaSeen = false;
  }

  async #login(credentials: Credentials, style: LoginStyle): Promise<void> {
    const { hooks, authenticator, userStore, throttle, log } = this.#services;
    const conn = this.connection;
    credentials.remoteAddress = conn.remoteAddress;
    this.#badCommands = 0;
    let outcome: AuthOutcome;
    const verdict = await hooks.auth.promise(conn, { mechanism: credentials.mechanism, username: credentials.username, failures: this.#authFailures });
    if (this.#state !== 'authorization') return;
    if (verdict && verdict.kind !== 'accept') {
      const reply = verdictToPop3Reply(verdict);
      this.#transport.send(reply.line);
      if (reply.close || style === 'popup') this.#close();
      return;
    }
    try {
      if (verdict) {
        const user = await userStore?.lookup(credentials.username);
        outcome = user ? { ok: true, user } : { ok: false, reason: 'bad-credentials' };
      } else {
        outcome = await authenticator.authenticate(credentials);
      }
    } catch (err) {
      log.error({ conn: conn.id, err }, `authentication of ${credentials.username} failed: ${(err as Error).message}`);
      outcome = { ok: false, reason: 'temporary' };
    }
    if (this.#state !== 'authorization') return;
    if (outcome.ok && outcome.user.flags.noPop) outcome = { ok: false, reason: 'disabled' };
    if (!outcome.ok) {
      if (outcome.reason === 'temporary') {
        this.#transport.send(`-ERR [SYS/TEMP] ${outcome.message ?? 'authentication is temporarily unavailable, try again later'}`);
        this.#close();
        return;
      }
      log.info({ conn: conn.id, ip: conn.remoteAddress, login: credentials.username, mechanism: credentials.mechanism }, 'pop3 login failed');
      throttle.fail(conn.remoteAddress);
      await this.#sleep(throttle.delayFor(conn.remoteAddress, this.#settings.failDelayMs));
      const code = style === 'sasl' || this.#capaSeen ? '[AUTH] ' : '';
      return this.#loginFailed(style, `-ERR ${code}authorization failed`);
    }
    throttle.succeed(conn.remoteAddress);
    await this.#enterTransaction(outcome.user);
  }

  #loginFailed(style: LoginStyle, line: string): void {
    if (this.#state !== 'authorization') return;
    this.#authFailures++;
    this.#transport.send(line);
    if (style === 'popup' || this.#authFailures >= this.#settings.maxAuthFailures) this.#close();
  }

  async #enterTransaction(user: MailUser): Promise<void> {
    const { locks, mailStore, log } = this.#services;
    let lock: LockHandle | undefined;
    try {
      lock = await locks.acquire(user.maildir, this.connection.id);
    } catch (err) {
      log.error({ conn: this.connection.id, err, maildir: user.maildir }, 'cannot lock the mailbox');
      return this.#fail('-ERR [SYS/TEMP] unable to lock the mailbox');
    }
    if (!lock) return this.#fail('-ERR [IN-USE] mailbox in use by another POP3 session');
    this.#lock = lock;
    if (this.#state !== 'authorization') {
      await this.#release();
      return;
    }
    try {
      this.#drop = await Maildrop.open(await mailStore.open(user.maildir));
    } catch (err) {
      log.error({ conn: this.connection.id, err, maildir: user.maildir }, `cannot scan ${user.maildir}`);
      await this.#release();
      return this.#fail('-ERR [SYS/TEMP] unable to scan $HOME/Maildir');
    }
    if (this.#state !== 'authorization') {
      await this.#finish();
      return;
    }
    this.#user = user;
    this.connection.user = user.address;
    this.#state = 'transaction';
    log.info({ conn: this.connection.id, user: user.address, messages: this.#drop.messages.length }, 'pop3 login');
    this.#ok();
  }

  /* ------------------------------------------------------------ TRANSACTION */

  async #transaction(command: Pop3Command): Promise<void> {
    const drop = this.#drop!;
    switch (command.verb) {
      case 'STAT': {
        const { count, octets } = drop.stat();
        return this.#ok(`${count} ${octets}`);
      }
      case 'LIST':
        return this.#listing(command, (m) => `${m.number} ${m.size}`);
      case 'UIDL':
        return this.#listing(command, (m) => `${m.number} ${uidlOf(m.uid)}`);
      case 'RETR':
        if (command.args.length !== 1) return this.#bad('syntax error');
        return this.#retrieve(command.args[0], undefined);
      case 'TOP': {
        if (command.args.length === 0 || command.args.length > 2) return this.#bad('syntax error');
        const lines = command.args[1] === undefined ? undefined : parseLineCount(command.args[1]);
        if (command.args[1] !== undefined && lines === undefined) return this.#bad('syntax error');
        return this.#retrieve(command.args[0], { lines });
      }
      case 'DELE': {
        const found = drop.lookup(command.args[0]);
        if (!found.ok) return this.#bad(found.error);
        drop.delete(found.message);
        return this.#ok();
      }
      case 'LAST':
        return this.#ok(String(drop.last));
      case 'RSET':
        drop.reset();
        return this.#ok();
      case 'NOOP':
        return this.#ok();
      case 'CAPA':
        return this.#capa();
      case 'QUIT':
        return this.#update();
      case 'USER':
      case 'PASS':
      case 'APOP':
      case 'AUTH':
      case 'STLS':
        return this.#bad('not allowed after login');
      default:
        return this.#bad('unimplemented');
    }
  }

  #listing(command: Pop3Command, format: (m: DropMessage) => string): void {
    const drop = this.#drop!;
    if (command.args.length > 1) return this.#bad('syntax error');
    if (command.args.length === 1) {
      const found = drop.lookup(command.args[0]);
      if (!found.ok) return this.#bad(found.error);
      return this.#ok(format(found.message));
    }
    this.#badCommands = 0;
    const lines = drop.live().map(format);
    this.#transport.send(['+OK ', ...lines, '.'].join('\r\n'));
  }

  /**
   * RETR (no `top`) or TOP (`top.lines` body lines; all of them when absent, as
   * qmail-pop3d allows). A message up to WHOLE_MESSAGE_LIMIT is read at once and
   * sent as one write; a larger one is streamed with backpressure. A RETR sent
   * whole marks the message for the seen flag set when the session ends.
   */
  async #retrieve(argument: string | undefined, top: { lines: number | undefined } | undefined): Promise<void> {
    const drop = this.#drop!;
    const found = drop.lookup(argument);
    if (!found.ok) return this.#bad(found.error);
    this.#badCommands = 0;
    const message = found.message;
    const status = top ? '+OK ' : `+OK ${message.size} octets`;
    let response = top ? undefined : this.#takeReadAhead(message.number);
    try {
      response ??= await drop.readWhole(message, WHOLE_MESSAGE_LIMIT, (stored) => multilineResponse(status, stored, top?.lines));
    } catch (err) {
      this.#services.log.warn({ conn: this.connection.id, uid: message.uid, err }, 'cannot open a message');
      if (this.#state === 'transaction') this.#err('unable to open that message');
      return;
    }
    if (this.#state !== 'transaction') return;
    const sent = response ? await this.#sendWhole(response, message) : await this.#sendStreamed(status, message, top);
    if (!sent || top) return;
    message.retrieved = true;
    // A client retrieving in order (fetchmail, most mail programs) gets the next
    // answer prepared while it reads this one; the messages' files never change.
    if (response && message.number === this.#lastRetrieved + 1) setImmediate(() => this.#prepare(message.number + 1));
    this.#lastRetrieved = message.number;
  }

  /** The answer prepared for RETR of message `number`, if that is the one read ahead. */
  #takeReadAhead(number: number): Buffer | undefined {
    const ahead = this.#readAhead;
    this.#readAhead = undefined;
    return ahead?.number === number ? ahead.response : undefined;
  }

  /** Reads message `number` ahead (small messages only); any trouble is left for the RETR itself to report. */
  #prepare(number: number): void {
    const drop = this.#drop;
    if (!drop || this.#state !== 'transaction' || number > drop.messages.length) return;
    const message = drop.messages[number - 1]!;
    if (message.deleted) return;
    // A copy of its own: an answer kept while the client is idle must not hold a whole shared slab.
    const prepare = (stored: Buffer) => Buffer.from(multilineResponse(`+OK ${message.size} octets`, stored));
    drop.readWhole(message, READ_AHEAD_LIMIT, prepare).then(
      (response) => {
        if (response && this.#state === 'transaction') this.#readAhead = { number, response };
      },
      () => undefined,
    );
  }

  /** Sends a prepared response; false when the client went away (the session is then closed). */
  async #sendWhole(response: Buffer, message: DropMessage): Promise<boolean> {
    this.#transferring = true;
    try {
      if (this.#transport.sendWhole) await this.#transport.sendWhole(response);
      else await this.#transport.sendStream(Readable.from([response]));
      return true;
    } catch (err) {
      await this.#brokenOff(message, err);
      return false;
    } finally {
      this.#transferring = false;
    }
  }

  /** Streams a large message; false when it could not be sent (answered -ERR, or the session closed). */
  async #sendStreamed(status: string, message: DropMessage, top: { lines: number | undefined } | undefined): Promise<boolean> {
    const drop = this.#drop!;
    let source: Readable;
    try {
      source = await drop.read(message, top?.lines);
    } catch (err) {
      this.#services.log.warn({ conn: this.connection.id, uid: message.uid, err }, 'cannot open a message');
      this.#err('unable to open that message');
      return false;
    }
    if (this.#state !== 'transaction') {
      source.destroy();
      return false;
    }
    // The +OK goes out in front of the first bytes of the message: a store that
    // opens lazily and fails before any data can still be answered with -ERR.
    const announce = new Announce(`${status}\r\n`);
    this.#transferring = true;
    try {
      await this.#transport.sendStream(source, new DotStuffTransform(), announce);
      return true;
    } catch (err) {
      if (!announce.started && this.#state === 'transaction') {
        this.#services.log.warn({ conn: this.connection.id, uid: message.uid, err }, 'cannot read a message');
        this.#err('unable to open that message');
        return false;
      }
      await this.#brokenOff(message, err);
      return false;
    } finally {
      this.#transferring = false;
    }
  }

  /** Part of a message is on the wire: the only clean way out is to hang up. */
  async #brokenOff(message: DropMessage, err: unknown): Promise<void> {
    this.#services.log.info({ conn: this.connection.id, uid: message.uid, err }, 'message transfer broken off');
    this.#close();
    await this.#finish();
  }

  async #update(): Promise<void> {
    this.#state = 'update';
    const result = await this.#drop!.update();
    await this.#finish();
    this.#services.log.info({ conn: this.connection.id, user: this.#user?.address, ...result }, 'pop3 quit');
    if (result.failed > 0) this.#transport.send('-ERR [SYS/TEMP] unable to remove all deleted messages');
    else this.#ok();
    this.#close();
  }

  /* ------------------------------------------------------------ shared */

  #capa(): void {
    this.#capaSeen = true;
    this.#badCommands = 0;
    const lines = ['+OK Capability list follows', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
    if (this.#state === 'authorization') {
      if (this.#plaintextAllowed()) lines.push('USER');
      const sasl = this.#saslMechanisms();
      if (sasl.length > 0) lines.push(`SASL ${sasl.join(' ')}`);
      if (this.#settings.tlsAvailable && !this.#transport.secure) lines.push('STLS');
    }
    lines.push('IMPLEMENTATION quail', '.');
    this.#transport.send(lines.join('\r\n'));
  }

  #mechanisms(): AuthMechanism[] {
    return this.#services.authenticator.mechanisms();
  }

  /** SASL mechanisms usable right now on this connection. */
  #saslMechanisms(): AuthMechanism[] {
    const plaintext = this.#plaintextAllowed();
    const available = this.#mechanisms();
    return SASL_MECHANISMS.filter((m) => available.includes(m) && (plaintext || !PLAINTEXT_MECHANISMS.includes(m)));
  }

  #plaintextAllowed(): boolean {
    return this.#transport.secure || this.#settings.plaintextWithoutTls;
  }

  #ok(text = ''): void {
    this.#badCommands = 0;
    this.#transport.send(`+OK ${text}`);
  }

  #err(text: string): void {
    this.#transport.send(`-ERR ${text}`);
  }

  /** A command that was refused for policy, not a client mistake. */
  #refuse(line: string): void {
    this.#transport.send(line);
  }

  /** A client mistake: counted, and the connection is closed after too many in a row. */
  #bad(text: string): void {
    this.#badCommands++;
    if (this.#badCommands > this.#settings.maxBadCommands) {
      this.#err(`${text}; too many bad commands, closing`);
      this.#close();
      void this.#finish();
      return;
    }
    this.#err(text);
  }

  #fail(line: string): void {
    this.#transport.send(line);
    this.#close();
  }

  #close(): void {
    if (this.#state !== 'update') this.#state = 'closed';
    this.#transport.close();
  }

  /**
   * Ends the session's use of the mailbox: seen flags set and the moves into
   * cur/ complete (Maildrop.close), then the lock released.
   */
  async #finish(): Promise<void> {
    await this.#drop?.close(this.#services.log, this.connection.id);
    await this.#release();
  }

  async #release(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    if (!lock) return;
    try {
      await lock.release();
    } catch (err) {
      this.#services.log.error({ conn: this.connection.id, err }, 'cannot remove the mailbox lock');
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => this.#services.clock.setTimeout(resolve, ms));
  }
}

/** Passes bytes through, with one status line in front of the first chunk. */
class Announce extends Transform {
  #line: string;
  started = false;

  constructor(line: string) {
    super();
    this.#line = line;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(Buffer.from(this.#line));
    }
    callback(null, chunk);
  }
}
