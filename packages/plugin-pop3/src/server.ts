import { BlockList, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { Connection, verdictToPop3Reply, type KernelHooks, type Logger } from '@quail/core';
import type { ListenAddress, PlaintextRule } from './control.js';
import { LineReader, type LineEvent } from './line-reader.js';
import { Pop3Session, type SessionServices } from './session.js';
import { handshake, SocketTransport, tlsInfo } from './socket-transport.js';

/** Longest command line accepted, CRLF excluded (RFC 2449 allows 255; SASL responses need more). */
export const MAX_COMMAND_LENGTH = 2048;
/** Consecutive bad commands before the connection is closed. */
export const MAX_BAD_COMMANDS = 10;
/** Failed AUTH exchanges per connection. */
export const MAX_AUTH_FAILURES = 3;
/** Lines read ahead of the session (pipelining) before the socket is paused. */
const MAX_QUEUED_LINES = 64;

/** What the listener reads for every new connection (the current control snapshot). */
export interface ListenerSettings {
  hostname: string;
  secureContext: SecureContext | undefined;
  idleTimeoutMs: number;
  failDelayMs: number;
  plaintext: readonly PlaintextRule[];
}

export interface Pop3ServerOptions {
  hooks: Pick<KernelHooks, 'connect' | 'auth'>;
  services: SessionServices;
  settings: () => ListenerSettings;
  log: Logger;
}

interface Live {
  raw: Socket;
  session?: Pop3Session;
}

/**
 * The POP3 listeners: accepts connections on POP3 (with STLS) and POP3S
 * addresses, runs the `connect` hook, and drives one Pop3Session per
 * connection with pipelined input, idle timeout and line length limit.
 */
export class Pop3Server {
  readonly #options: Pop3ServerOptions;
  readonly #servers: Server[] = [];
  readonly #live = new Set<Live>();
  #stopping = false;

  constructor(options: Pop3ServerOptions) {
    this.#options = options;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#live.size;
  }

  /** Opens one listener; `implicitTls` for POP3S. Resolves with the bound address (port 0 picks one). */
  async listen(address: ListenAddress, implicitTls: boolean): Promise<AddressInfo> {
    const server = createServer((socket) => this.#accept(socket, implicitTls));
    server.on('error', (err) => this.#options.log.error({ err }, `pop3 listener error: ${err.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.port, address.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.push(server);
    const bound = server.address() as AddressInfo;
    this.#options.log.info(`${implicitTls ? 'pop3s' : 'pop3'} listening on ${bound.address}:${bound.port}`);
    return bound;
  }

  /** Stops listening and ends every session without deleting anything. */
  async close(): Promise<void> {
    this.#stopping = true;
    const closing = this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    this.#servers.length = 0;
    const ended = [...this.#live].map(async (live) => {
      if (live.session) await live.session.shutdown();
      else live.raw.destroy();
      if (!live.raw.destroyed) await new Promise((resolve) => live.raw.once('close', resolve));
    });
    await Promise.all([...closing, ...ended]);
  }

  #accept(raw: Socket, implicitTls: boolean): void {
    const live: Live = { raw };
    if (this.#stopping) {
      raw.destroy();
      return;
    }
    this.#live.add(live);
    raw.on('error', () => undefined);
    raw.once('close', () => this.#live.delete(live));
    this.#run(live, implicitTls).catch((err: unknown) => {
      this.#options.log.error({ err }, `pop3 connection failed: ${(err as Error).message}`);
      raw.destroy();
    });
  }

  async #run(live: Live, implicitTls: boolean): Promise<void> {
    const { raw } = live;
    const settings = this.#options.settings();
    const { hooks, services, log } = this.#options;
    raw.setTimeout(settings.idleTimeoutMs, () => raw.destroy());
    raw.setNoDelay(true);
    const conn = new Connection({
      protocol: implicitTls ? 'pop3s' : 'pop3',
      remoteAddress: raw.remoteAddress ?? '',
      remotePort: raw.remotePort ?? 0,
      localAddress: raw.localAddress ?? '',
      localPort: raw.localPort ?? 0,
    });
    raw.once('close', () => conn.closed());

    let top: Socket = raw;
    if (implicitTls) {
      if (!settings.secureContext) {
        raw.destroy();
        return;
      }
      const secure = new TLSSocket(raw, { isServer: true, secureContext: settings.secureContext });
      secure.on('error', () => undefined);
      try {
        await handshake(secure);
      } catch {
        raw.destroy();
        return;
      }
      conn.tls = tlsInfo(secure);
      top = secure;
    }

    const reader = new LineReader(MAX_COMMAND_LENGTH);
    const queue: LineEvent[] = [];
    let ready = false;
    let pumping = false;
    const transport = new SocketTransport(raw, top, implicitTls, settings.secureContext, {
      onData: (chunk) => {
        queue.push(...reader.push(chunk));
        if (queue.length > MAX_QUEUED_LINES) transport.socket.pause();
        void pump();
      },
      onUpgrade: () => {
        reader.reset();
        queue.length = 0;
        // Input was paused when the queue filled; the TLS handshake must be able to read.
        transport.socket.resume();
      },
    });
    const session = new Pop3Session(conn, transport, services, {
      hostname: settings.hostname,
      tlsAvailable: settings.secureContext !== undefined,
      plaintextWithoutTls: conn.isLoopback || plaintextAllowed(settings.plaintext, conn.remoteAddress),
      failDelayMs: settings.failDelayMs,
      maxBadCommands: MAX_BAD_COMMANDS,
      maxAuthFailures: MAX_AUTH_FAILURES,
    });
    raw.once('close', () => {
      queue.length = 0;
      void session.closed();
    });

    const pump = async (): Promise<void> => {
      if (pumping || !ready) return;
      pumping = true;
      try {
        while (queue.length > 0 && (session.state === 'authorization' || session.state === 'transaction')) {
          const event = queue.shift()!;
          if (event.kind === 'line') await session.handle(event.line);
          else session.tooLong();
        }
      } catch (err) {
        log.error({ conn: conn.id, err }, `pop3 session failed: ${(err as Error).message}`);
        transport.send('-ERR [SYS/TEMP] internal server error');
        transport.close();
        await session.closed();
      } finally {
        pumping = false;
      }
      if (queue.length <= MAX_QUEUED_LINES && transport.socket.isPaused()) transport.socket.resume();
    };

    const verdict = await hooks.connect.promise(conn);
    if (raw.destroyed) return;
    if (verdict && verdict.kind !== 'accept') {
      transport.send(verdictToPop3Reply(verdict).line);
      transport.close();
      return;
    }
    live.session = session;
    if (this.#stopping) {
      await session.shutdown();
      return;
    }
    session.greet();
    ready = true;
    await pump();
  }
}

/** True when control/pop3d.plaintext lets this address log in with a clear-text password without TLS. */
export function plaintextAllowed(rules: readonly PlaintextRule[], address: string): boolean {
  if (rules.some((r) => r.family === 'any')) return true;
  if (rules.length === 0) return false;
  const list = new BlockList();
  for (const rule of rules) list.addSubnet(rule.address, rule.prefix, rule.family as 'ipv4' | 'ipv6');
  const family = address.includes(':') ? 'ipv6' : 'ipv4';
  return list.check(address, family);
}
