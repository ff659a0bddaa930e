import type { Socket } from 'node:net';
import { normaliseIp, type Logger } from '@quail/core';
import type { SmtpdSettings } from './settings.js';

/** What the gate hands to the SMTP layer for an admitted connection. */
export interface GateTicket {
  /** The control snapshot in force when the client connected. */
  settings: SmtpdSettings;
  /** Variables of the matching tcprules rule. */
  env: Record<string, string>;
  remoteHost?: string;
}

export interface GateOptions {
  settings: () => SmtpdSettings;
  /** Reverse lookup, used only when control/smtpd.resolvehost is on. */
  reverse?: ((ip: string) => Promise<string[]>) | undefined;
  log: Logger;
}

/** Socket errors are seen by the SMTP layer; this one listener keeps an early error from being thrown. */
function ignoreError(): void {}

/** How long a reverse lookup may hold a new connection. */
const REVERSE_TIMEOUT_MS = 1500;

/**
 * tcpserver's part in front of the SMTP layer: tcprules (`deny` closes at once,
 * no greeting), the concurrency limit (`-c`; connections beyond it wait), and a
 * per-IP limit. Counts are per process; several processes sharing a port each
 * apply their own.
 */
export class TcpGate {
  readonly #options: GateOptions;
  #active = 0;
  readonly #perIp = new Map<string, number>();
  readonly #waiting: Array<{ socket: Socket; start: () => void }> = [];
  #closed = false;

  constructor(options: GateOptions) {
    this.#options = options;
  }

  get active(): number {
    return this.#active;
  }

  /**
   * Decides about a new socket. `admit` runs when it may start; `plainText` says
   * whether a refusal may be written (not on an implicit-TLS port).
   */
  async accept(socket: Socket, plainText: boolean, admit: (ticket: GateTicket) => void): Promise<void> {
    socket.on('error', ignoreError);
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const settings = this.#options.settings();
    const ip = normaliseIp(socket.remoteAddress ?? '');
    const remoteHost = await this.#remoteHost(ip, settings);
    if (socket.destroyed) return;
    const rule = settings.rules.match({ ip, ...(remoteHost !== undefined && { host: remoteHost }) });
    if (rule.action === 'deny') {
      this.#options.log.info({ ip, rule: rule.key }, `tcpserver: deny ${ip}`);
      socket.destroy();
      return;
    }
    const ticket: GateTicket = { settings, env: rule.env, ...(remoteHost !== undefined && { remoteHost }) };
    const start = () => {
      if (socket.destroyed || this.#closed) {
        socket.destroy();
        return this.#next();
      }
      const count = this.#perIp.get(ip) ?? 0;
      if (settings.perIp > 0 && count >= settings.perIp) {
        this.#options.log.info({ ip }, `tcpserver: too many connections from ${ip}`);
        if (plainText) socket.end(`421 too many connections from your address, try again later (#4.7.0)\r\n`);
        else socket.destroy();
        return this.#next();
      }
      this.#active++;
      this.#perIp.set(ip, count + 1);
      // 'close' comes once: a plain listener spares once()'s wrapper
      socket.on('close', () => {
        this.#active--;
        const left = (this.#perIp.get(ip) ?? 1) - 1;
        if (left > 0) this.#perIp.set(ip, left);
        else this.#perIp.delete(ip);
        this.#next();
      });
      // replies are small and answer a waiting client: no Nagle delay (tcpserver -D)
      socket.setNoDelay(true);
      socket.resume();
      admit(ticket);
    };
    if (this.#active < settings.concurrency) return start();
    // tcpserver -c: further connections wait for a free slot (a bounded number of them)
    if (this.#waiting.length >= settings.concurrency) {
      socket.destroy();
      return;
    }
    socket.pause();
    const entry = { socket, start };
    this.#waiting.push(entry);
    socket.once('close', () => {
      const at = this.#waiting.indexOf(entry);
      if (at >= 0) this.#waiting.splice(at, 1);
    });
  }

  /** Stops admitting: new and waiting connections are closed. */
  close(): void {
    this.#closed = true;
    for (const { socket } of this.#waiting.splice(0)) socket.destroy();
  }

  /** Starts the oldest waiting connection when a slot is free. */
  #next(): void {
    while (this.#waiting.length > 0 && this.#active < this.#options.settings().concurrency) {
      this.#waiting.shift()!.start();
    }
  }

  /**
   * TCPREMOTEHOST: with smtpd.resolvehost the reverse lookup (tcpserver -h);
   * otherwise (-H) loopback is `localhost`, known without asking DNS, and other
   * clients have no name.
   */
  async #remoteHost(ip: string, settings: SmtpdSettings): Promise<string | undefined> {
    const fallback = ip === '::1' || ip.startsWith('127.') ? 'localhost' : undefined;
    if (!settings.resolveHost || !this.#options.reverse) return fallback;
    let timer: NodeJS.Timeout | undefined;
    try {
      const names = await Promise.race([
        this.#options.reverse(ip),
        new Promise<string[]>((resolve) => {
          timer = setTimeout(() => resolve([]), REVERSE_TIMEOUT_MS);
        }),
      ]);
      const name = names[0]?.replace(/\.$/, '').toLowerCase();
      // a PTR record is whatever the owner of the address wants it to be
      return name && /^[a-z0-9_.-]{1,253}$/.test(name) ? name : fallback;
    } catch {
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }
}
