import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { Connection, TLS_SERVER_OPTIONS, normaliseIp, type Logger } from '@quail/core';
import type { ListenAddress } from './listen.js';
import { QmailConnection } from './qmail-connection.js';
import type { SmtpSession } from './session.js';
import type { ServerCertificate } from '@quail/core';
import type { ListenerKind } from './settings.js';
import type { GateTicket, TcpGate } from './tcp-gate.js';

export interface ListenerOptions {
  kind: ListenerKind;
  address: ListenAddress;
  gate: TcpGate;
  /** Makes the quail session for an admitted connection. */
  session: (conn: Connection, ticket: GateTicket, kind: ListenerKind) => SmtpSession;
  certificate?: ServerCertificate | undefined;
  log: Logger;
}

type TicketOptions = SMTPConnectionOptions & { ticket?: GateTicket };

let connectionSeq = 0;
const connectionPrefix = `${process.pid.toString(36)}.`;

/** Connection ids for the log: unique within this process, and the pid tells processes apart. */
function nextConnectionId(): string {
  connectionSeq++;
  return connectionPrefix + connectionSeq.toString(36);
}

/**
 * smtp-server with the qmail command layer and tcpserver's gate in front. One
 * instance per listening address. The gate sits on the `connection` event of
 * the net.Server, so a socket handed over from elsewhere (a cluster primary)
 * goes through `accept` the same way.
 */
class QmailSmtpServer extends SMTPServer {
  readonly #tickets = new WeakMap<Socket, GateTicket>();
  #makeSession!: ListenerOptions['session'];
  #kind!: ListenerKind;
  readonly sessions = new Set<QmailConnection>();
  /** One function for every connection to call when it has closed. */
  readonly #forget = (connection: QmailConnection): void => {
    this.sessions.delete(connection);
  };

  static create(options: SMTPServerOptions, listener: ListenerOptions): QmailSmtpServer {
    const server = new QmailSmtpServer(options);
    server.#makeSession = listener.session;
    server.#kind = listener.kind;
    const [accepted] = server.server.listeners('connection') as Array<(socket: Socket) => void>;
    server.server.removeAllListeners('connection');
    server.server.on('connection', (socket: Socket) => {
      void listener.gate.accept(socket, listener.kind !== 'smtps', (ticket) => {
        server.#tickets.set(socket, ticket);
        accepted!.call(server.server, socket);
      });
    });
    return server;
  }

  /**
   * No PROXY protocol here: the socket goes on at once with its gate ticket and a
   * connection id from a per-process counter (smtp-server would draw 10 random
   * bytes, make a BigInt of them and wait for the next turn of the event loop).
   */
  override _handleProxy(socket: Socket, callback: (err: Error | null, options?: TicketOptions & { id: string }) => void): void {
    const ticket = this.#tickets.get(socket);
    this.#tickets.delete(socket);
    callback(null, { id: nextConnectionId(), ...(ticket && { ticket }) });
  }

  override connect(socket: Socket | TLSSocket, socketOptions?: TicketOptions | null): void {
    const ticket = socketOptions?.ticket;
    if (!ticket) {
      socket.destroy();
      return;
    }
    const conn = new Connection({
      protocol: this.#kind,
      remoteAddress: normaliseIp(socket.remoteAddress ?? ''),
      remotePort: socket.remotePort ?? 0,
      localAddress: normaliseIp(socket.localAddress ?? ''),
      localPort: socket.localPort ?? 0,
      env: ticket.env,
      ...(socketOptions?.id !== undefined && { id: socketOptions.id }),
    });
    if (ticket.remoteHost !== undefined) conn.remoteHost = ticket.remoteHost;
    const session = this.#makeSession(conn, ticket, this.#kind);
    const connection = new QmailConnection(this, socket, socketOptions ?? undefined, session, this.#forget);
    this.connections.add(connection);
    this.sessions.add(connection);
    connection.init();
  }
}

/** One listening address of one kind (smtp, submission, smtps). */
export class SmtpListener {
  readonly kind: ListenerKind;
  readonly #options: ListenerOptions;
  readonly #server: QmailSmtpServer;

  constructor(options: ListenerOptions) {
    this.kind = options.kind;
    this.#options = options;
    const cert = options.certificate;
    this.#server = QmailSmtpServer.create(
      {
        secure: options.kind === 'smtps',
        ...(cert && { key: cert.key, cert: cert.cert }),
        ...TLS_SERVER_OPTIONS,
        // STARTTLS is offered by the command layer only when servercert.pem exists
        hideSTARTTLS: !cert,
        disableReverseLookup: true,
        // each QmailConnection names itself from control/me; this only spares smtp-server's os.hostname() per connection
        name: 'localhost',
        logger: false,
        size: 0,
      },
      options,
    );
    this.#server.on('error', (err: Error & { code?: string }) => {
      options.log.debug({ err, kind: this.kind }, `connection error: ${err.message}`);
    });
  }

  /** Binds the address; several processes may bind the same one through node:cluster. */
  listen(): Promise<AddressInfo> {
    const { host, port } = this.#options.address;
    return new Promise((resolve, reject) => {
      const net = this.#server.server;
      const onError = (err: Error) => reject(err);
      net.once('error', onError);
      net.listen({ host, port }, () => {
        net.removeListener('error', onError);
        resolve(net.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | undefined {
    const a = this.#server.server.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /** New key and certificate for the next handshakes (after a reload). */
  updateCertificate(cert: ServerCertificate | undefined): void {
    if (cert) this.#server.updateSecureContext({ key: cert.key, cert: cert.cert });
  }

  /**
   * Graceful stop: no new connections; idle sessions get 421 now, sessions in a
   * transaction may finish it until `deadlineMs`, then everything left is closed
   * (a message not yet committed is not queued).
   */
  async stop(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.server.close(() => resolve()));
    const sessions = [...this.#server.sessions];
    for (const s of sessions) {
      s.stopping = true;
      if (s.idle) s.shutdown();
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const finished = await Promise.race([Promise.all(sessions.map((s) => s.closed())).then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (finished === 'deadline') {
      for (const s of this.#server.sessions) {
        s.shutdown();
        s._socket.destroy();
      }
    }
    await closed;
  }
}
