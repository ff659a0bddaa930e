import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ErrorCodes,
  QuailError,
  type Envelope,
  type Queue,
  type QueueOrigin,
  type QueueReceipt,
  type QueueStat,
  type QueueWriter,
  type QueuedMessageInfo,
} from '@quail/core';
import { describe } from './disk-store.js';
import type { Scheduler } from './scheduler.js';
import type { QueueStore } from './store.js';

/**
 * The Queue service: acceptance through the store (qmail-queue), everything
 * after commit through the scheduler (qmail-send), plus the controls qmailctl,
 * qmail-qread and qmail-qstat offer.
 */
export interface QueueRuntime {
  store: QueueStore;
  scheduler: Scheduler;
  /** Resolves once the store is open. */
  opened: Promise<void>;
}

export class StoreQueue implements Queue {
  readonly #runtime: () => QueueRuntime;

  /** `runtime` gives the store and scheduler; it throws while the server is not initialised. */
  constructor(runtime: () => QueueRuntime) {
    this.#runtime = runtime;
  }

  async #ready(): Promise<QueueStore> {
    const { store, opened } = this.#runtime();
    await opened;
    return store;
  }

  #scheduler(): Scheduler {
    return this.#runtime().scheduler;
  }

  async create(origin: QueueOrigin): Promise<QueueWriter> {
    const store = await this.#ready();
    return store.createWriter(origin, (id, committed) => this.#scheduler().committed(id, committed));
  }

  async enqueue(envelope: Envelope, body: Readable | Buffer | string, origin: QueueOrigin): Promise<QueueReceipt> {
    const writer = await this.create(origin);
    try {
      await pipeline(typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([Buffer.from(body)]) : body, writer.stream);
      return await writer.commit(envelope);
    } catch (err) {
      await writer.abort();
      if (err instanceof QuailError) throw err;
      throw new QuailError(ErrorCodes.TEMPORARY, `qq read error (#4.3.0): ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  /** The messages in info/, then those preprocessed in memory whose record is still `todo/<id>`. */
  async *list(): AsyncIterable<QueuedMessageInfo> {
    const store = await this.#ready();
    const listed = new Set<string>();
    for await (const m of store.list()) {
      listed.add(m.id);
      yield m;
    }
    for await (const m of this.#scheduler().listUnsettled()) if (!listed.has(m.info.id)) yield describe(m);
  }

  /** A message preprocessed in memory counts as preprocessed, with its pending recipients. */
  async stat(): Promise<QueueStat> {
    const store = await this.#ready();
    const counts = await store.counts();
    for await (const m of this.#scheduler().listUnsettled()) {
      counts.unprocessed = Math.max(0, counts.unprocessed - 1);
      m.progress.forEach((p, i) => {
        if (p.done) return;
        const channel = m.info.recipients[i]!.route.channel;
        counts.pending[channel] = (counts.pending[channel] ?? 0) + 1;
      });
    }
    return { ...counts, paused: this.#scheduler().paused };
  }

  async flush(): Promise<void> {
    this.#scheduler().flush();
  }

  pause(): void {
    this.#scheduler().pause();
  }

  resume(): void {
    this.#scheduler().resume();
  }

  idle(): Promise<void> {
    return this.#scheduler().idle();
  }
}
