import type { SmtpSession } from './smtp-session.js';

export interface PoolLimits {
  /** Messages one connection carries before it is closed (1: a connection per message, qmail's way). */
  maxMessages: number;
  /** Milliseconds an unused connection stays open. */
  idleMs: number;
  /** Connections open at once, busy and idle together (concurrencyremote). */
  maxConnections: number;
}

interface Idle {
  key: string;
  session: SmtpSession;
  timer: NodeJS.Timeout;
}

/**
 * Keeps SMTP connections to a destination open between messages. A connection
 * is keyed by everything that shapes it (address, port, TLS level, credentials),
 * handed to one delivery at a time, and closed when idle too long, when it has
 * carried its share of messages, or when room is needed for another destination.
 */
export class SessionPool {
  readonly #limits: () => PoolLimits;
  /** Idle connections, oldest first. */
  #idle: Idle[] = [];
  readonly #busy = new Set<SmtpSession>();
  #closed = false;

  constructor(limits: () => PoolLimits) {
    this.#limits = limits;
  }

  /** An idle connection for `key`, now busy; undefined when there is none. */
  take(key: string): SmtpSession | undefined {
    const i = this.#idle.findIndex((e) => e.key === key && e.session.alive);
    if (i < 0) return undefined;
    const [entry] = this.#idle.splice(i, 1);
    clearTimeout(entry!.timer);
    this.#busy.add(entry!.session);
    return entry!.session;
  }

  /** Makes room for `extra` more connections by closing the oldest idle ones over the limit. */
  reserve(extra = 1): void {
    const max = Math.max(1, this.#limits().maxConnections);
    while (this.#idle.length > 0 && this.#idle.length + this.#busy.size + extra > max) this.#drop(this.#idle[0]!);
  }

  /** Records a connection just opened, busy with its first message. */
  add(session: SmtpSession): void {
    this.#busy.add(session);
    session.onDeath(() => this.#busy.delete(session));
  }

  /** Gives a connection back after a message: kept idle if it may carry more, else closed. */
  release(key: string, session: SmtpSession): void {
    this.#busy.delete(session);
    const limits = this.#limits();
    if (this.#closed || !session.alive || session.messages >= limits.maxMessages) {
      void session.close();
      return;
    }
    const entry: Idle = { key, session, timer: setTimeout(() => this.#drop(entry), limits.idleMs) };
    entry.timer.unref();
    this.#idle.push(entry);
    session.onDeath(() => this.#forget(entry));
    this.reserve(0);
  }

  /** Closes every connection, idle and busy; later releases close at once. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#idle.map((e) => e.session), ...this.#busy].map((s) => s.close());
    for (const e of this.#idle) clearTimeout(e.timer);
    this.#idle = [];
    this.#busy.clear();
    await Promise.all(closing);
  }

  #forget(entry: Idle): void {
    clearTimeout(entry.timer);
    this.#idle = this.#idle.filter((e) => e !== entry);
  }

  #drop(entry: Idle): void {
    this.#forget(entry);
    void entry.session.close();
  }
}
