import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPServer } from 'smtp-server';
import type { AuthMechanism } from '@quail/core';
import { QmailStream, type QmailStreamOwner } from './qmail-stream.js';
import { reply, Texts, type SmtpReply } from './replies.js';
import type { SmtpSession } from './session.js';

type Next = () => void;

/** Commands that need HELO/EHLO first in strict mode (qmail itself never asks for it). */
const STRICT_NEEDS_HELO = new Set(['MAIL', 'RCPT', 'DATA']);

/**
 * Put in place of smtp-server's per-connection maps (XCLIENT, XFORWARD, the
 * recipient index): the command layer here never uses them, and an idle
 * session should not carry them.
 */
const UNUSED_MAP: Map<string, unknown> = new Map();

/** What the server is told when a connection has closed. */
export type ClosedListener = (connection: QmailConnection) => void;

/**
 * One SMTP connection: smtp-server's socket, TLS and line handling with a
 * qmail-smtpd command layer on top (reference 2.2-2.3). Replies come from the
 * SmtpSession; this class only speaks the protocol.
 */
export class QmailConnection extends SMTPConnection implements QmailStreamOwner {
  /** Set right after construction by the server (the base constructor runs first). */
  quail!: SmtpSession;
  /** The listener is stopping: idle sessions are closed, transactions may finish. */
  stopping = false;
  #early: [Buffer, Next | undefined] | undefined;
  /** Lets the parser go on once the running command is done. */
  #release: Next | undefined;
  /** Answers a pending AUTH challenge (with `*` when the client went away). */
  #challengeAnswer: ((line: string) => void) | undefined;
  /** Made by the first call of closed(): an idle session waits for nothing. */
  #closedWaiters: Array<() => void> | undefined;
  readonly #onClosed: ClosedListener | undefined;
  #corked = false;

  constructor(
    server: SMTPServer,
    socket: Socket | TLSSocket,
    options: SMTPConnectionOptions | undefined,
    session: SmtpSession,
    onClosed?: ClosedListener,
  ) {
    super(server, socket, options);
    this.quail = session;
    this.#onClosed = onClosed;
    this.name = session.settings.me;
    this._rcptIndex = UNUSED_MAP as SMTPConnection['_rcptIndex'];
    this._xClient = UNUSED_MAP as SMTPConnection['_xClient'];
    this._xForward = UNUSED_MAP as SMTPConnection['_xForward'];
    const cipher = this.tlsOptions;
    if (this.secure && cipher) session.conn.tls = { protocol: String(cipher.version), cipher: cipher.name };
  }

  /** Resolves once the socket has closed. */
  closed(): Promise<void> {
    if (this._closed) return Promise.resolve();
    return new Promise((resolve) => (this.#closedWaiters ??= []).push(resolve));
  }

  /** True while nothing is in progress: no command running, no message being received, no transaction. */
  get idle(): boolean {
    return !this._handlerPending && !this._dataStream && this.quail.tx === undefined;
  }

  /** Ends the session now with qmail's style of 421. */
  shutdown(): void {
    if (this._closing || this._closed) return;
    this.send(421, `${this.quail.settings.me} shutting down, try again later (#4.3.0)`, false);
    this.close();
  }

  override _createParser(): QmailStream {
    return new QmailStream(this, { maxCommandLength: MAX_COMMAND });
  }

  parserError(err: Error): void {
    this.send(421, `Error: ${err.message}`, false);
  }

  /**
   * smtp-server's session record (envelope, addresses, DSN fields) is not used:
   * the SmtpSession holds the state of the session, so nothing is reset here.
   */
  override _resetSession(): void {}

  /**
   * The socket's listeners, shared by every connection (smtp-server makes a
   * closure for each, and pipe() another nine): bytes go to the parser with
   * pipe()'s backpressure, the end of input ends the parser as pipe() would.
   * After STARTTLS smtp-server drops these and pipes the TLS socket itself.
   */
  override _setListeners(callback: () => void): void {
    const socket = this._socket;
    socketConnections.set(socket, this);
    socket.on('close', onSocketClose);
    socket.on('error', onSocketError);
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('timeout', onSocketTimeout);
    this._armTimeout();
    if (!this.needsUpgrade) return callback();
    this.upgrade(() => false, callback);
  }

  /** A chunk from the socket for the command parser; the socket waits while the parser is full. */
  feed(socket: Socket, chunk: Buffer): void {
    const parser = this._parser;
    if (!parser || socket !== this._socket || parser.write(chunk)) return;
    socket.pause();
    parser.once('drain', () => socket.resume());
  }

  /** The client closed its side: the parser ends (and runs a last unterminated line, as with pipe()). */
  inputEnded(socket: Socket): void {
    const parser = this._parser;
    if (parser && socket === this._socket && !parser.writableEnded) parser.end();
  }

  /** smtp-server's fixed 100 ms early-talker pause becomes GREETDELAY (0: greet at once). */
  override init(): void {
    this._setListeners(() => {
      const delay = this.quail.greetDelayMs;
      if (delay > 0) setTimeout(() => this.connectionReady(), delay).unref();
      else this.connectionReady();
    });
  }

  /**
   * A pipelining client sent several commands in one packet: the replies they get
   * within this turn of the event loop leave in one write (one TCP segment) instead
   * of one write each.
   */
  pipelined(): void {
    if (this.#corked) return;
    const socket = this._socket;
    this.#corked = true;
    socket.cork();
    setImmediate(() => {
      this.#corked = false;
      socket.uncork();
    });
  }

  /** Runs the `connect` hook, then greets (tcpserver already looked up or skipped the host name). */
  override connectionReady(): void {
    this.clientHostname = this.quail.conn.remoteHost ?? `[${this.remoteAddress}]`;
    this.quail.connect().then(
      (refusal) => {
        if (this._closing || this._closed) return;
        if (refusal) return this.#reply(refusal);
        this._ready = true;
        this._sendGreeting();
        const early = this.#early;
        this.#early = undefined;
        if (early) this._onCommand(early[0], early[1]);
      },
      (err: unknown) => {
        this._server.logger.error({ err }, 'connect failed');
        this.#reply(reply(421, Texts.internal, true));
      },
    );
  }

  /**
   * smtp-server's send() for the replies of this command layer (always without
   * enhanced status codes): the same bytes, without its per-reply log record.
   * Control characters become spaces; `334` alone gets its space (RFC 4954).
   * Other calls (from inside smtp-server) go to smtp-server's own.
   */
  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    if (context !== false) return super.send(code, data, context);
    let payload: string;
    if (Array.isArray(data)) {
      payload = '';
      const last = data.length - 1;
      for (let i = 0; i <= last; i++) payload += `${code}${i < last ? '-' : ' '}${replyText(data[i])}${i < last ? '\r\n' : ''}`;
    } else {
      payload = data ? `${code} ${replyText(data)}` : code === 334 ? '334 ' : String(code);
    }
    const socket = this._socket;
    if (!this._upgrading && socket && !socket.destroyed && socket.readyState === 'open') socket.write(`${payload}\r\n`);
    if (code === 421) this.close();
  }

  override _sendGreeting(): void {
    this.send(220, `${this.quail.settings.greeting} ESMTP`, false);
  }

  /**
   * Arms the idle timeout. One 'timeout' listener per socket (smtp-server adds a
   * once-listener at every arming): added by _setListeners, or here for the TLS
   * socket of STARTTLS.
   */
  override _armTimeout(socket: Socket = this._socket): void {
    socket.setTimeout(this.quail?.settings.timeoutMs ?? 1_200_000);
    if (socketConnections.get(socket) !== this) {
      socketConnections.set(socket, this);
      socket.on('timeout', onSocketTimeout);
    }
  }

  /** qmail's read timeout: `451 timeout (#4.4.2)` and close (not while the server itself is busy). */
  override _onTimeout(): void {
    if (this._closing) {
      this._socket.destroy();
      return;
    }
    if (this._handlerPending || (this._dataStream && this._parser && !this._parser._dataMode)) {
      this._armTimeout();
      return;
    }
    this.send(451, Texts.timeout, false);
    this.close();
  }

  override _onClose(): void {
    super._onClose();
    this.#challengeAnswer?.('*');
    this.quail.reset();
    this.quail.conn.closed();
    this.#onClosed?.(this);
    const waiters = this.#closedWaiters;
    this.#closedWaiters = undefined;
    if (waiters) for (const resolve of waiters) resolve();
  }

  /**
   * smtp-server's error handling without its 'error' event: the server's handler
   * is called directly, so a connection needs no listener of its own.
   */
  override _onError(err: Error & { code?: string; remoteAddress?: string }): void {
    err.remoteAddress = this.remoteAddress;
    if (err.code && QUIET_SOCKET_ERRORS.has(err.code)) {
      this.close();
      return;
    }
    this._server._onError(err);
  }

  /**
   * After STARTTLS the session starts over, as RFC 3207 requires. smtp-server
   * removes every listener of the plain socket; the 'close' listeners others put
   * there (the gate's, which frees the connection's slot) are put back.
   */
  override upgrade(callback: Next, secureCallback?: Next): void {
    const plain = this._socket;
    const others = plain.listeners('close').filter((l) => l !== onSocketClose) as Array<(hadError: boolean) => void>;
    super.upgrade(callback, () => {
      const cipher = this.tlsOptions;
      this.quail.secured({ protocol: cipher ? String(cipher.version) : 'TLS', cipher: cipher ? cipher.name : 'unknown' });
      secureCallback?.();
    });
    for (const listener of others) plain.on('close', listener);
  }

  override _onCommand(command: Buffer, callback?: Next): void {
    const next = callback ?? (() => undefined);
    const done = () => this._whenWritable(next);
    if (this._upgrading || this._closing) return done();
    if (!this._ready) {
      if (this.quail.greetDelayMs > 0) {
        this.send(421, `${this.quail.settings.me} You talk too soon`, false);
        return;
      }
      // no greeting delay: a client that talks first is simply answered after the greeting
      this.#early = [command, callback];
      return;
    }
    const line = command.toString('utf8');
    if (this._nextHandler) {
      // a line of an AUTH exchange: the AUTH command still runs and releases the parser when done
      const handler = this._nextHandler;
      this._nextHandler = false;
      this.#release = done;
      this._handlerPending = true;
      handler.call(this, command, () => undefined);
      return;
    }
    if (/^(OPTIONS|GET|HEAD|POST|PUT|DELETE|TRACE|CONNECT) \/.* HTTP\/\d\.\d$/i.test(line)) {
      this.send(421, 'HTTP requests not allowed', false);
      return;
    }
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    if (this.stopping && this.quail.tx === undefined && verb !== 'QUIT') {
      this.shutdown();
      return;
    }
    const argument = space < 0 ? '' : line.slice(space + 1).replace(/^ +/, '');
    this.#run(() => this.#dispatch(verb, argument, line), done);
  }

  /** Runs a command handler; a failure becomes a 451 and never reaches the socket pipe. */
  #run(handler: () => Promise<void>, done: Next): void {
    this._handlerPending = true;
    this.#release = done;
    handler()
      .catch((err: unknown) => {
        this._server.logger.error({ err }, 'command failed');
        if (!this._closing && !this._closed) this.send(451, Texts.internal, false);
      })
      .finally(() => this.#releaseParser());
  }

  /** Lets the parser read the next line (the end of a command, or an AUTH challenge sent). */
  #releaseParser(): void {
    this._handlerPending = false;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  async #dispatch(verb: string, argument: string, line: string): Promise<void> {
    const s = this.quail;
    if (s.settings.strict && STRICT_NEEDS_HELO.has(verb) && s.conn.helo === undefined) {
      return this.#reply(reply(503, Texts.heloFirst));
    }
    switch (verb) {
      case 'HELO':
      case 'EHLO':
        return this.#helo(verb, argument);
      case 'MAIL':
        return this.#reply(await s.mail(argument));
      case 'RCPT':
        return this.#reply(await s.rcpt(argument));
      case 'DATA':
        return this.#data();
      case 'RSET':
        s.reset();
        return this.#reply(reply(250, Texts.flushed));
      case 'NOOP':
        return this.#reply(reply(250, Texts.ok));
      case 'VRFY':
        return this.#reply(reply(252, Texts.vrfy));
      case 'HELP':
        return this.#reply(reply(214, Texts.help));
      case 'QUIT':
        return this.#reply(reply(221, s.settings.greeting, true));
      case 'STARTTLS':
        return this.#startTls(argument);
      case 'AUTH':
        return this.#auth(argument);
      default:
        this._server.logger.debug({ line: line.slice(0, 80) }, 'unimplemented command');
        return this.#reply(reply(502, Texts.unimplemented));
    }
  }

  async #helo(verb: string, argument: string): Promise<void> {
    const s = this.quail;
    const name = argument.trim();
    if (s.settings.strict && (name === '' || /\s/.test(name))) return this.#reply(reply(501, Texts.heloSyntax));
    const refusal = await s.helo(name);
    this.hostNameAppearsAs = name.toLowerCase();
    this.openingCommand = verb;
    if (refusal) return this.#reply(refusal);
    if (verb === 'HELO') return this.#reply(reply(250, s.settings.greeting));
    const lines = [s.settings.greeting, 'PIPELINING', '8BITMIME'];
    if (s.databytes > 0) lines.push(`SIZE ${s.databytes}`);
    if (this.#tlsOffered) lines.push('STARTTLS');
    if (s.authAvailable && s.conn.user === undefined && s.authMechanisms.length > 0) lines.push(`AUTH ${s.authMechanisms.join(' ')}`);
    this.#reply(reply(250, lines));
  }

  get #tlsOffered(): boolean {
    return !this.secure && this.quail.settings.certificate !== undefined;
  }

  async #startTls(argument: string): Promise<void> {
    if (this.secure) return this.#reply(reply(503, Texts.tlsActive));
    if (!this.#tlsOffered) return this.#reply(reply(502, Texts.unimplemented));
    if (argument.trim() !== '') return this.#reply(reply(501, Texts.tlsParams));
    this.send(220, Texts.tlsReady, false);
    await new Promise<void>((resolve) => this.upgrade(resolve));
  }

  async #data(): Promise<void> {
    const s = this.quail;
    const opened = await s.openData();
    if (opened.code !== 354) return this.#reply(opened);
    const parser = this._parser;
    if (!(parser instanceof QmailStream) || this._closing) {
      s.reset();
      return;
    }
    const stream = parser.startQmailData(s.settings.allowBareLf);
    this._dataStream = stream;
    this.#reply(opened);
    // the reply comes once the final dot was read and the queue answered; the
    // parser waits for continue() before it reads the next command
    s.receive(stream).then(
      (r) => {
        this._dataStream = false;
        this._transactionCounter++;
        this.#reply(r);
        if (this._parser) this._parser.continue();
      },
      (err: { code?: string }) => {
        this._dataStream = false;
        if (err?.code === 'BARE_LF') {
          this.#reply(reply(451, Texts.bareLf, true));
        } else if (!this._closing && !this._closed) {
          this._server.logger.error({ err }, 'message not received');
          this.#reply(reply(451, Texts.internal, true));
        }
      },
    );
  }

  async #auth(argument: string): Promise<void> {
    const s = this.quail;
    if (!s.hasAuthenticator) return this.#reply(reply(502, Texts.unimplemented));
    if (s.conn.user !== undefined) return this.#reply(reply(503, Texts.authTwice));
    if (s.tx !== undefined) return this.#reply(reply(503, Texts.authInTransaction));
    const [mech = '', initial, ...extra] = argument.trim().split(/ +/);
    const mechanism = mech.toUpperCase() as AuthMechanism;
    if (!s.authMechanisms.includes(mechanism) || extra.length > 0) return this.#reply(reply(504, Texts.authUnknown));
    if (!s.authAvailable) return this.#reply(reply(538, Texts.authNeedsTls));
    const credentials = mechanism === 'PLAIN' ? await this.#plain(initial) : await this.#login(initial);
    if ('code' in credentials) return this.#reply(credentials);
    this.#reply(await s.authenticate(mechanism, credentials.username, credentials.password));
  }

  /** PLAIN (RFC 4616): `authzid NUL authcid NUL password`, given at once or after `334 `. */
  async #plain(initial: string | undefined): Promise<SmtpReply | { username: string; password: string }> {
    const response = initial === undefined ? await this.#challenge('') : initial === '=' ? '' : initial;
    const decoded = decodeResponse(response);
    if (typeof decoded !== 'string') return decoded;
    const parts = decoded.split('\0');
    if (parts.length !== 3 || parts[1] === '') return reply(501, Texts.authMalformed);
    return { username: parts[1]!, password: parts[2]! };
  }

  /** LOGIN: `334 VXNlcm5hbWU6` (Username:) then `334 UGFzc3dvcmQ6` (Password:). */
  async #login(initial: string | undefined): Promise<SmtpReply | { username: string; password: string }> {
    const username = decodeResponse(initial === undefined ? await this.#challenge('VXNlcm5hbWU6') : initial);
    if (typeof username !== 'string') return username;
    const password = decodeResponse(await this.#challenge('UGFzc3dvcmQ6'));
    if (typeof password !== 'string') return password;
    if (username === '') return reply(501, Texts.authMalformed);
    return { username, password };
  }

  /** Sends a `334` challenge and waits for the client's next line. */
  #challenge(text: string): Promise<string> {
    if (this._closed) return Promise.resolve('*');
    return new Promise((resolve) => {
      this.#challengeAnswer = resolve;
      this._nextHandler = (command: Buffer) => {
        this.#challengeAnswer = undefined;
        resolve(command.toString('latin1').trim());
      };
      this.send(334, text, false);
      this.#releaseParser();
    });
  }

  #reply(r: SmtpReply): void {
    if (this._closed) return;
    this.send(r.code, r.text, false);
    if (r.close && r.code !== 421) this.close();
  }
}

/** Socket errors that mean the client went away (smtp-server's list): the connection is closed, nothing reported. */
const QUIET_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** The connection of each socket, for the shared listeners below (`this` is the socket). */
const socketConnections = new WeakMap<Socket, QmailConnection>();

function onSocketTimeout(this: Socket): void {
  socketConnections.get(this)?._onTimeout();
}

function onSocketClose(this: Socket, hadError: boolean): void {
  socketConnections.get(this)?._onCloseEvent(hadError);
}

function onSocketError(this: Socket, err: Error): void {
  socketConnections.get(this)?._onError(err);
}

function onSocketData(this: Socket, chunk: Buffer): void {
  socketConnections.get(this)?.feed(this, chunk);
}

function onSocketEnd(this: Socket): void {
  socketConnections.get(this)?.inputEnded(this);
}

/** Control characters (smtp-server's CONTROL_CHARS) cannot go into a reply line. */
const REPLY_CONTROL_CHARS = /[\x00-\x1F\x7F-\x9F]/g;

function replyText(line: string | null | undefined): string {
  return line === undefined || line === null ? '' : String(line).replace(REPLY_CONTROL_CHARS, ' ');
}

/** Command lines longer than this get smtp-server's `421 Error: Command line too long` and a close. */
const MAX_COMMAND = 4096;

/** A base64 SASL response, or the reply refusing it (`*` cancels; broken base64 is malformed input). */
function decodeResponse(response: string): string | SmtpReply {
  if (response === '*') return reply(501, Texts.authCanceled);
  if (response.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(response)) return reply(501, Texts.authMalformed);
  const text = Buffer.from(response, 'base64').toString('utf8');
  if (/[\r\n]/.test(text)) return reply(501, Texts.authMalformed);
  return text;
}
