import { randomBytes } from 'node:crypto';
import type { EnvelopeAddress } from './address.js';
import { Notes } from './notes.js';

/** Ids unique within the process (a serial) and across restarts (a random prefix drawn once). */
const ID_PREFIX = randomBytes(3).toString('hex');
let serial = 0;
function nextId(): string {
  serial++;
  return `${ID_PREFIX}${serial.toString(16).padStart(6, '0')}`;
}

export type Protocol = 'smtp' | 'submission' | 'smtps' | 'pop3' | 'pop3s' | (string & {});

export interface TlsInfo {
  protocol: string;
  cipher: string;
}

/**
 * One client connection, from accept to close. Created by the listener plugin
 * (smtpd, pop3) and handed to every session hook.
 */
export class Connection {
  readonly id: string;
  readonly protocol: Protocol;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly #startedAt: number;
  /** Name of the client host from reverse DNS, when looked up. */
  remoteHost?: string;
  /** Argument of HELO/EHLO, once given. */
  helo?: string;
  /** Set once TLS is up (implicit or STARTTLS/STLS). */
  tls?: TlsInfo;
  /** Authenticated login, once AUTH/PASS succeeded. */
  user?: string;
  /**
   * Environment of the connection: variables set by the matching tcprules rule
   * (`RELAYCLIENT`, `DATABYTES`, ...), as tcpserver exports them to qmail-smtpd.
   */
  readonly env: Record<string, string>;
  #notes?: Notes;
  #abort?: AbortController;
  #closed = false;

  constructor(init: {
    protocol: Protocol;
    remoteAddress: string;
    remotePort: number;
    localAddress: string;
    localPort: number;
    env?: Record<string, string>;
    id?: string;
  }) {
    this.id = init.id ?? nextId();
    this.protocol = init.protocol;
    this.remoteAddress = normaliseIp(init.remoteAddress);
    this.remotePort = init.remotePort;
    this.localAddress = normaliseIp(init.localAddress);
    this.localPort = init.localPort;
    this.env = { ...init.env };
    this.#startedAt = Date.now();
  }

  get startedAt(): Date {
    return new Date(this.#startedAt);
  }

  /** Plugins' state for this connection (made on first use: an idle session keeps none). */
  get notes(): Notes {
    return (this.#notes ??= new Notes());
  }

  /**
   * Aborted when the client goes away, so long-running hook work can stop.
   * Made on first use: most connections never need one.
   */
  get signal(): AbortSignal {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (this.#closed) this.#abort.abort();
    }
    return this.#abort.signal;
  }

  /** True when the client may relay: RELAYCLIENT set by tcprules, or authenticated. */
  get relaying(): boolean {
    return this.env.RELAYCLIENT !== undefined || this.user !== undefined;
  }

  get isLoopback(): boolean {
    return this.remoteAddress === '::1' || this.remoteAddress.startsWith('127.');
  }

  /** Called by the listener when the connection ends. */
  closed(): void {
    this.#closed = true;
    this.#abort?.abort();
  }
}

/** IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are shown and matched as IPv4. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** One mail transaction: from MAIL to the end of DATA (or RSET). */
export class Transaction {
  readonly id: string;
  readonly connection: Connection;
  sender?: EnvelopeAddress;
  readonly recipients: EnvelopeAddress[] = [];
  /** Bytes of message data received, once DATA is complete. */
  size?: number;
  #notes?: Notes;

  constructor(connection: Connection, id?: string) {
    this.connection = connection;
    this.id = id ?? nextId();
  }

  /** Plugins' state for this transaction, made on first use. */
  get notes(): Notes {
    return (this.#notes ??= new Notes());
  }
}
