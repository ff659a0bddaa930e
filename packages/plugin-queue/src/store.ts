import type { MessageSource, QueueOrigin, QueuedMessageInfo, QueueWriter, Route } from '@quail/core';
import type { InfoRecord, RecipientProgress, StateEntry } from './records.js';
import type { CommittedMessage } from './writer.js';

/** A message loaded for a delivery pass: its routed recipients and what happened to each so far. */
export interface LoadedMessage {
  info: InfoRecord;
  progress: RecipientProgress[];
  /** False when the message has no state log (nothing was recorded yet), so removal need not unlink one. */
  hasState: boolean;
  /** Id of the bounce already queued for this message, if any. */
  bounced?: string;
  source: MessageSource;
}

/** A message routed in memory by `preprocess`: not yet in info/, its durable record is still `todo/<id>`. */
export interface Preprocessed {
  info: InfoRecord;
  /** False while no state log can exist (a message committed by this process and never recorded since). */
  hasState: boolean;
}

/** Counts for qmail-qstat, without reading bodies. */
export interface StoreCounts {
  messages: number;
  unprocessed: number;
  pending: Record<string, number>;
}

/**
 * Where the queue keeps its messages. The scheduler only talks to this, so a
 * store on another medium (a database, a replicated log) can replace the disk.
 */
export interface QueueStore {
  /** Creates what the store needs and removes what a crash left half-written. */
  open(): Promise<void>;
  /** `onCommit` receives what was committed, so that this process can preprocess it without reading it back. */
  createWriter(origin: QueueOrigin, onCommit: (id: string, committed: CommittedMessage) => void): Promise<QueueWriter>;
  /**
   * Makes this process the one that delivers (qmail-send's lock/sendmutex). False when another
   * live process already does; this one then only accepts messages.
   */
  lockScheduler(): Promise<{ ok: true } | { ok: false; holder: string }>;
  unlockScheduler(): Promise<void>;
  /** Calls `onId` when another process may have committed a message; returns a function that stops watching. */
  watchUnprocessed(onId: (id: string) => void): () => void;
  /** Committed messages not yet preprocessed, oldest first. */
  listUnprocessed(): Promise<string[]>;
  /**
   * Routes the recipients of a committed message in memory (nothing is written: `todo/<id>` stays the
   * durable record); undefined when the message was quarantined, 'settled' when it turned out to be in
   * info/ already. `committed` is given when this process committed the message itself (nothing is read back then).
   */
  preprocess(id: string, route: (recipient: string, sender: string) => Promise<Route>, committed?: CommittedMessage): Promise<Preprocessed | 'settled' | undefined>;
  /** Makes a preprocessed message that has to wait durable in info/, and removes its `todo/` record. */
  settle(id: string, info: InfoRecord): Promise<void>;
  /** Every preprocessed message and when it is next due (0: now), delivered in batches; `batch` returns false to stop early. */
  scan(batch: (entries: Array<{ id: string; due: number }>) => boolean): Promise<void>;
  /** Loads a settled message from info/, or one preprocessed in memory (`preprocessed`) with its state log if it may have one. */
  load(id: string, preprocessed?: Preprocessed): Promise<LoadedMessage>;
  /** Appends delivery records durably; `due` is the time the message should next be looked at. */
  record(id: string, entries: StateEntry[]): Promise<void>;
  setDue(id: string, due: number): Promise<void>;
  /**
   * Removes a finished message. `hasState` false: no state log was ever written (LoadedMessage.hasState
   * and nothing recorded since); `size` (the message's size) lets the store recycle the files;
   * `unsettled`: the message was never settled, its record is `todo/<id>`.
   */
  remove(id: string, how?: { hasState?: boolean; size?: number; unsettled?: boolean }): Promise<void>;
  /** Gives back what the store keeps only for speed (recycled files); called when the queue is idle and at stop. */
  release(): Promise<void>;
  /** Moves a message that cannot be read out of the way; returns the paths moved. */
  quarantine(id: string, reason: string): Promise<string[]>;
  list(): AsyncIterable<QueuedMessageInfo>;
  counts(): Promise<StoreCounts>;
}
