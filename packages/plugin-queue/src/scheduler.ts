import {
  deferral,
  failure,
  reportPerRecipient,
  success,
  Message,
  type Clock,
  type CleanInfo,
  type Delivery,
  type DeliveryResult,
  type KernelHooks,
  type Logger,
  type MessageParser,
  type MessageSource,
  type QueueReceipt,
  type Route,
  type TimerHandle,
} from '@quail/core';
import { bounceHead, planBounce, type BounceControls, type BouncePlan } from './bounce.js';
import { safeLogText } from './format.js';
import { MinHeap } from './heap.js';
import { CorruptQueueFile, MessageGone, type StateEntry } from './records.js';
import { DYING_TEXT, isDying, nextAttempt } from './retry.js';
import { bounceAddress } from './router.js';
import type { LoadedMessage, Preprocessed, QueueStore } from './store.js';
import type { CommittedMessage } from './writer.js';

/** qmail-send's retry delay after a failed stat/open/unlink. */
export const SLEEP_SYSFAIL_MS = 123_000;
/** qmail-send rescans todo/ at least this often, in case a notification was missed. */
export const SLEEP_TODO_MS = 1_500_000;
/** Messages preprocessed at once (one committed by another process, or found at start, is read from `todo/`). */
const PREPROCESS_CONCURRENCY = 32;
/**
 * Messages preprocessed in memory and not yet settled or removed, at most: preprocessing waits
 * while this many are in flight (their records are what the passes deliver from).
 */
const UNSETTLED_LIMIT = 2048;
/** Envelopes of this process's commits kept for preprocessing, at most (beyond that, preprocessing reads `todo/`). */
const COMMITTED_LIMIT = 16384;
/** Messages settled at once when the scheduler stops. */
const SETTLE_AT_STOP = 64;
/** Ids whose `todo/` name this process preprocessed or removed lately, so the todo/ watcher's report of it is not taken for a new message. */
const RECENT_LIMIT = 4096;

export interface SchedulerControls extends BounceControls {
  concurrencylocal: number;
  concurrencyremote: number;
  queuelifetime: number;
}

export interface SchedulerOptions {
  store: QueueStore;
  hooks: KernelHooks;
  clock: Clock;
  parser: MessageParser;
  log: Logger;
  controls: () => SchedulerControls;
  route: (recipient: string, sender: string, messageId: string) => Promise<Route>;
  /** Queues a bounce: the head text followed by the failed message. */
  injectBounce: (plan: Exclude<BouncePlan, { kind: 'discard' }>, head: string, original: MessageSource) => Promise<QueueReceipt>;
  /** How long stop waits for running deliveries before aborting them (real time). */
  stopTimeoutMs: number;
}

interface Waiting {
  id: string;
  at: number;
  /** Made due by flush: every pending recipient is tried, whatever its own next time. */
  force: boolean;
}

interface OpenMessage {
  id: string;
  m: LoadedMessage;
  message: Message;
  dying: boolean;
  /** Next attempt time for this pass, per channel. */
  passNext: Map<string, number>;
  jobs: number;
}

interface Job {
  open: OpenMessage;
  channel: string;
  indices: number[];
}

const NO_TAP = (channel: string) => `Sorry, no delivery plugin handles the ${channel} channel. (#4.3.0)`;

/**
 * qmail-send: preprocesses committed messages, runs delivery passes through the
 * `deliver` hook within the concurrency limits, records results, retries on
 * qmail's schedule and bounces. Memory per waiting message is one heap entry;
 * a message is read from disk only when it comes due.
 */
/** How often an instance that found another delivering process tries the lock again. */
const LOCK_RETRY_MS = 5_000;

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #heap = new MinHeap<Waiting>((a, b) => a.at < b.at);
  readonly #waiting = new Map<string, Waiting>();
  readonly #open = new Map<string, OpenMessage>();
  /** Messages being loaded or passed over: never scheduled twice. */
  readonly #active = new Set<string>();
  readonly #ready = new Map<string, Job[]>();
  readonly #running = new Map<string, number>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #todo: string[] = [];
  readonly #todoQueued = new Set<string>();
  readonly #idleWaiters: Array<() => void> = [];
  /** Envelopes committed by this process, waiting to be preprocessed without reading them back. */
  readonly #committed = new Map<string, CommittedMessage>();
  /** Messages preprocessed in memory whose durable record is still `todo/<id>` (not settled into info/). */
  readonly #unsettled = new Map<string, Preprocessed>();
  readonly #recent = new Set<string>();
  #loading = 0;
  #preprocessing = 0;
  #timer: { handle: TimerHandle; at: number } | undefined;
  /** Preprocessing retries after I/O trouble. */
  readonly #retryTimers = new Set<TimerHandle>();
  #started = false;
  /** Another process holds the delivery lock: accept only. */
  #guest = false;
  #unwatch: (() => void) | undefined;
  #rescanTimer: TimerHandle | undefined;
  #lockRetry: TimerHandle | undefined;
  #paused = false;
  #stopping = false;
  #deliverySeq = 0;
  #abort = new AbortController();

  constructor(options: SchedulerOptions) {
    this.#o = options;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Takes the queue's delivery lock, then picks up what is on disk and starts
   * delivering; the scan runs in the background. Without the lock (another live
   * process delivers from this queue) this instance only accepts messages.
   */
  async start(): Promise<void> {
    const lock = await this.#o.store.lockScheduler();
    if (!lock.ok) {
      if (!this.#guest) this.#o.log.error(`alert: cannot start: qmail-send is already running (pid ${lock.holder}); this instance only queues messages`);
      this.#guest = true;
      // not forever: when the holder dies this instance takes over the deliveries
      this.#lockRetry = this.#o.clock.setTimeout(() => {
        this.#lockRetry = undefined;
        if (!this.#stopping) this.#track(this.start());
      }, LOCK_RETRY_MS);
      return;
    }
    if (this.#guest) this.#o.log.info('the delivering process is gone: this instance delivers from now on');
    this.#guest = false;
    this.#started = true;
    this.#unwatch = this.#o.store.watchUnprocessed((id) => {
      if (!this.#recent.has(id) && !this.#unsettled.has(id)) this.committed(id);
    });
    this.#armRescan();
    this.#track(this.#startupScan());
    this.#pump();
  }

  /** Picks up messages other processes committed, in case a notification was missed. */
  #armRescan(): void {
    this.#rescanTimer = this.#o.clock.setTimeout(() => {
      this.#track(
        this.#o.store.listUnprocessed().then((ids) => {
          for (const id of ids) this.#addTodo(id);
        }),
      );
      this.#armRescan();
    }, SLEEP_TODO_MS);
  }

  async #startupScan(): Promise<void> {
    for (const id of await this.#o.store.listUnprocessed()) this.#addTodo(id);
    this.#pump();
    await this.#o.store.scan((entries) => {
      // A message still waiting for preprocessing is scheduled by its preprocessing, never by the scan.
      for (const { id, due } of entries) if (!this.#todoQueued.has(id)) this.#waitIfIdle(id, due);
      this.#pump();
      return !this.#stopping;
    });
  }

  /** A message was committed (by this process when `committed` is given): preprocess it now. */
  committed(id: string, committed?: CommittedMessage): void {
    if (this.#guest) return;
    if (committed && this.#committed.size < COMMITTED_LIMIT) this.#committed.set(id, committed);
    this.#addTodo(id);
    this.#pump();
  }

  #addTodo(id: string): void {
    if (this.#guest || this.#todoQueued.has(id) || this.#unsettled.has(id)) return;
    this.#todoQueued.add(id);
    this.#todo.push(id);
  }

  flush(): void {
    const now = this.#o.clock.now();
    this.#heap.clear();
    for (const [id] of this.#waiting) {
      const entry: Waiting = { id, at: now, force: true };
      this.#waiting.set(id, entry);
      this.#heap.push(entry);
    }
    this.#pump();
  }

  /** Control files changed (concurrency limits): start what the new limits allow. */
  reconsider(): void {
    this.#pump();
  }

  pause(): void {
    this.#paused = true;
    this.#clearTimer();
    this.#checkIdle();
  }

  resume(): void {
    this.#paused = false;
    this.#pump();
  }

  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#checkIdle();
    });
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#clearTimer();
    this.#unwatch?.();
    if (this.#rescanTimer) this.#o.clock.clearTimeout(this.#rescanTimer);
    if (this.#lockRetry) this.#o.clock.clearTimeout(this.#lockRetry);
    for (const handle of this.#retryTimers) this.#o.clock.clearTimeout(handle);
    this.#retryTimers.clear();
    const settled = (): Promise<void> => Promise.allSettled([...this.#inflight]).then(() => (this.#inflight.size > 0 ? settled() : undefined));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.#o.stopTimeoutMs);
    });
    const outcome = await Promise.race([settled().then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.#o.log.warn(`warning: ${this.#runningTotal()} deliveries still running at stop; aborting them`);
      this.#abort.abort(new Error('the server is stopping'));
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.min(5000, this.#o.stopTimeoutMs));
      });
      await Promise.race([settled(), grace]);
      clearTimeout(timer);
    }
    // with deliveries still running (aborted, past the grace time) their messages are left to the next start
    if (this.#inflight.size === 0) await this.#settleAll();
    if (this.#started) {
      await this.#o.store.unlockScheduler().catch((err: Error) => this.#o.log.warn(`warning: unable to release the delivery lock: ${err.message}`));
      this.#o.log.info('status: exiting');
    }
    await this.#o.store.release().catch((err: Error) => this.#o.log.warn(`warning: unable to remove spare queue files: ${err.message}`));
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  /**
   * At stop, the messages still preprocessed only in memory go to info/, so that the next start
   * finds them preprocessed, as qmail-send leaves its queue (their `todo/` record was enough).
   */
  async #settleAll(): Promise<void> {
    const ids = [...this.#unsettled.keys()];
    for (let i = 0; i < ids.length; i += SETTLE_AT_STOP) {
      await Promise.all(
        ids.slice(i, i + SETTLE_AT_STOP).map(async (id) => {
          try {
            await this.#o.store.settle(id, this.#unsettled.get(id)!.info);
            this.#unsettled.delete(id);
          } catch (err) {
            this.#o.log.warn(`warning: trouble preprocessing message ${id}: ${(err as Error).message}; the next start will do it`);
          }
        }),
      );
    }
  }

  #track(work: Promise<void>): void {
    const p = work
      .catch((err: unknown) => this.#o.log.error({ err }, `alert: queue work failed: ${(err as Error)?.message ?? String(err)}`))
      .finally(() => {
        this.#inflight.delete(p);
        this.#pump();
      });
    this.#inflight.add(p);
  }

  #wait(id: string, at: number, force: boolean): void {
    const entry: Waiting = { id, at, force };
    this.#waiting.set(id, entry);
    this.#heap.push(entry);
  }

  /** Schedules a message that is neither scheduled nor being passed over already. */
  #waitIfIdle(id: string, at: number): void {
    if (!this.#active.has(id) && !this.#waiting.has(id)) this.#wait(id, at, false);
  }

  /** The earliest current heap entry; stale ones (replaced or taken) are dropped on the way. */
  #peek(): Waiting | undefined {
    for (;;) {
      const top = this.#heap.peek();
      if (!top || this.#waiting.get(top.id) === top) return top;
      this.#heap.pop();
    }
  }

  #limit(channel: string): number {
    const c = this.#o.controls();
    return channel === 'local' ? c.concurrencylocal : c.concurrencyremote;
  }

  #maxOpen(): number {
    const c = this.#o.controls();
    return Math.max(1, c.concurrencylocal + c.concurrencyremote);
  }

  #runningTotal(): number {
    let n = 0;
    for (const v of this.#running.values()) n += v;
    return n;
  }

  #pump(): void {
    if (!this.#started || this.#stopping) {
      this.#checkIdle();
      return;
    }
    while (this.#todo.length > 0 && this.#preprocessing < PREPROCESS_CONCURRENCY && this.#unsettled.size + this.#preprocessing < UNSETTLED_LIMIT) {
      const id = this.#todo.shift()!;
      this.#preprocessing++;
      this.#track(this.#preprocess(id).finally(() => this.#preprocessing--));
    }
    if (!this.#paused) {
      const now = this.#o.clock.now();
      while (this.#open.size + this.#loading < this.#maxOpen()) {
        const top = this.#peek();
        if (!top || top.at > now) break;
        this.#heap.pop();
        this.#waiting.delete(top.id);
        this.#loading++;
        this.#active.add(top.id);
        this.#track(
          this.#beginPass(top.id, top.force).finally(() => {
            this.#loading--;
            if (!this.#open.has(top.id)) this.#active.delete(top.id);
          }),
        );
      }
      for (const [channel, jobs] of this.#ready) {
        while (jobs.length > 0 && (this.#running.get(channel) ?? 0) < this.#limit(channel)) this.#startJob(jobs.shift()!);
      }
      this.#armTimer(now);
    }
    this.#checkIdle();
  }

  #armTimer(now: number): void {
    const top = this.#peek();
    if (!top || top.at <= now) {
      this.#clearTimer();
      return;
    }
    if (this.#timer?.at === top.at) return;
    this.#clearTimer();
    const handle = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, top.at - now);
    this.#timer = { handle, at: top.at };
  }

  #clearTimer(): void {
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer.handle);
    this.#timer = undefined;
  }

  /** Resolves the idle() waiters once nothing is left to do, after the store gave back its spare files. */
  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.#isIdle()) return;
    const waiters = this.#idleWaiters.splice(0);
    void this.#o.store
      .release()
      .catch((err: Error) => this.#o.log.warn(`warning: unable to remove spare queue files: ${err.message}`))
      .finally(() => {
        for (const w of waiters) w();
      });
  }

  #isIdle(): boolean {
    if (this.#stopping) return this.#inflight.size === 0;
    if (this.#inflight.size > 0 || (this.#todo.length > 0 && this.#unsettled.size < UNSETTLED_LIMIT)) return false;
    if (this.#paused || !this.#started) return true;
    for (const [channel, jobs] of this.#ready) if (jobs.length > 0 && this.#limit(channel) > 0) return false;
    const top = this.#peek();
    return !top || top.at > this.#o.clock.now() || this.#open.size >= this.#maxOpen();
  }

  async #preprocess(id: string): Promise<void> {
    let preprocessed: Preprocessed | 'settled' | undefined;
    const committed = this.#committed.get(id);
    this.#committed.delete(id);
    try {
      preprocessed = await this.#o.store.preprocess(id, (recipient, sender) => this.#o.route(recipient, sender, id), committed);
    } catch (err) {
      if (err instanceof MessageGone) {
        this.#todoQueued.delete(id);
        return;
      }
      this.#o.log.warn(`warning: trouble preprocessing message ${id}: ${(err as Error).message}; will try again later`);
      // The id stays in todoQueued, so the scan keeps its hands off the message until it is preprocessed.
      const handle = this.#o.clock.setTimeout(() => {
        this.#retryTimers.delete(handle);
        this.#todo.push(id);
        this.#pump();
      }, SLEEP_SYSFAIL_MS);
      this.#retryTimers.add(handle);
      return;
    }
    this.#todoQueued.delete(id);
    this.#remember(id);
    if (!preprocessed) return;
    if (preprocessed === 'settled') {
      this.#waitIfIdle(id, 0);
      return;
    }
    this.#unsettled.set(id, preprocessed);
    const { info } = preprocessed;
    const uid = info.origin.kind === 'local' ? info.origin.uid : (process.getuid?.() ?? 0);
    this.#o.log.info(`new msg ${id}`);
    this.#o.log.info(`info msg ${id}: bytes ${info.size} from <${info.sender}> qp ${info.qp} uid ${uid}`);
    this.#waitIfIdle(id, 0);
  }

  /** A later pass over an unsettled message reads its state log once this pass wrote one. */
  #noteState(open: OpenMessage): void {
    const unsettled = this.#unsettled.get(open.id);
    if (unsettled && open.m.hasState) unsettled.hasState = true;
  }

  /** Messages preprocessed in memory, not yet settled into info/ (qmail-qread lists them too). */
  async *listUnsettled(): AsyncIterable<LoadedMessage> {
    for (const [id, preprocessed] of [...this.#unsettled]) {
      const open = this.#open.get(id);
      if (open) {
        yield open.m;
        continue;
      }
      try {
        yield await this.#o.store.load(id, preprocessed);
      } catch (err) {
        // left the queue, or unreadable, while being listed: the delivery pass deals with it
        if (!(err instanceof CorruptQueueFile || err instanceof MessageGone)) throw err;
      }
    }
  }

  /** Ids whose `todo/` changes are this process's own: the todo/ watcher must not take them for new messages. */
  #remember(id: string): void {
    this.#recent.delete(id);
    this.#recent.add(id);
    if (this.#recent.size > RECENT_LIMIT) this.#recent.delete(this.#recent.values().next().value!);
  }

  async #beginPass(id: string, force: boolean): Promise<void> {
    let m: LoadedMessage;
    const unsettled = this.#unsettled.get(id);
    try {
      m = await this.#o.store.load(id, unsettled);
    } catch (err) {
      if (err instanceof MessageGone) {
        this.#unsettled.delete(id);
        return;
      }
      if (err instanceof CorruptQueueFile) {
        this.#unsettled.delete(id);
        await this.#o.store.quarantine(id, err.message);
        return;
      }
      this.#o.log.warn(`warning: unable to read message ${id}: ${(err as Error).message}; will try again later`);
      this.#wait(id, this.#o.clock.now() + SLEEP_SYSFAIL_MS, false);
      return;
    }
    const now = this.#o.clock.now();
    const pending = m.progress.flatMap((p, i) => (p.done ? [] : [i]));
    const open: OpenMessage = {
      id,
      m,
      message: new Message(m.source, this.#o.parser),
      dying: isDying(m.info.birth, now, this.#o.controls().queuelifetime),
      passNext: new Map(),
      jobs: 0,
    };
    if (pending.length === 0) {
      this.#open.set(id, open);
      await this.#finish(open).finally(() => this.#open.delete(id));
      return;
    }
    const due = pending.filter((i) => force || m.progress[i]!.next <= now);
    if (due.length === 0) {
      this.#wait(id, Math.min(...pending.map((i) => m.progress[i]!.next)), false);
      return;
    }
    const jobs = this.#jobsFor(open, due);
    for (const job of jobs) {
      if (!open.passNext.has(job.channel)) open.passNext.set(job.channel, nextAttempt(m.info.birth, now, job.channel));
      let list = this.#ready.get(job.channel);
      if (!list) this.#ready.set(job.channel, (list = []));
      list.push(job);
    }
    open.jobs = jobs.length;
    this.#open.set(id, open);
  }

  /** Local deliveries carry one recipient; other channels group a message's recipients by domain, in file order. */
  #jobsFor(open: OpenMessage, indices: number[]): Job[] {
    const jobs: Job[] = [];
    const groups = new Map<string, Job>();
    for (const i of indices) {
      const route = open.m.info.recipients[i]!.route;
      if (route.channel === 'local') {
        jobs.push({ open, channel: 'local', indices: [i] });
        continue;
      }
      const key = `${route.channel}\n${route.address.slice(route.address.lastIndexOf('@') + 1).toLowerCase()}`;
      const job = groups.get(key);
      if (job) job.indices.push(i);
      else {
        const created = { open, channel: route.channel, indices: [i] };
        groups.set(key, created);
        jobs.push(created);
      }
    }
    return jobs;
  }

  #status(): void {
    const c = this.#o.controls();
    this.#o.log.info(`status: local ${this.#running.get('local') ?? 0}/${c.concurrencylocal} remote ${this.#runningTotal() - (this.#running.get('local') ?? 0)}/${c.concurrencyremote}${this.#stopping ? ' exitasap' : ''}`);
  }

  #startJob(job: Job): void {
    this.#running.set(job.channel, (this.#running.get(job.channel) ?? 0) + 1);
    this.#status();
    this.#track(
      this.#runJob(job).finally(() => {
        this.#running.set(job.channel, (this.#running.get(job.channel) ?? 1) - 1);
        this.#status();
      }),
    );
  }

  async #runJob(job: Job): Promise<void> {
    const { open, channel } = job;
    const { info, progress } = open.m;
    const id = ++this.#deliverySeq;
    const recipients = job.indices.map((i) => ({ recipient: info.recipients[i]!.recipient, route: info.recipients[i]!.route }));
    for (const r of recipients) this.#o.log.info(`starting delivery ${id}: msg ${info.id} to ${channel} ${r.route.address}`);
    const delivery: Delivery = {
      id,
      messageId: info.id,
      sender: info.sender,
      channel,
      recipients,
      message: open.message,
      queuedAt: new Date(info.birth),
      attempt: Math.max(...job.indices.map((i) => progress[i]!.attempts)) + 1,
      signal: this.#abort.signal,
    };
    let results: DeliveryResult[];
    try {
      const report = await this.#o.hooks.deliver.promise(delivery);
      results = report === undefined ? recipients.map(() => deferral(NO_TAP(channel))) : reportPerRecipient(delivery, report);
    } catch (err) {
      results = recipients.map(() => deferral(`Temporary failure in delivery: ${(err as Error)?.message ?? String(err)}`));
    }
    results = results.map((r) => normalise(r, open.dying));
    const next = open.passNext.get(channel)!;
    const entries: StateEntry[] = [];
    results.forEach((r, n) => {
      const i = job.indices[n]!;
      const p = progress[i]!;
      p.attempts++;
      p.text = r.text;
      if (r.kind === 'deferral') {
        p.next = next;
        entries.push({ k: 'defer', i, t: r.text, next });
      } else {
        p.done = true;
        p.ok = r.kind === 'success';
        entries.push({ k: 'done', i, ok: p.ok, t: r.text });
      }
      this.#o.log.info(`delivery ${id}: ${r.kind}: ${safeLogText(r.text)}`);
    });
    const finished = open.jobs === 1 && progress.every((p) => p.done && p.ok);
    try {
      // The last delivery of a message that succeeded everywhere is recorded by removing the message.
      if (!finished) {
        open.m.hasState = true;
        await this.#o.store.record(info.id, entries);
      }
    } catch (err) {
      this.#o.log.warn(`warning: trouble marking message ${info.id}: ${(err as Error).message}; message will be delivered twice!`);
    }
    try {
      await this.#o.hooks.delivered.promise(delivery, results);
    } catch (err) {
      this.#o.log.warn(`warning: delivered hook failed: ${(err as Error).message}`);
    }
    open.jobs--;
    // finishing the pass (bounce, clean, removal) is qmail-clean's work, outside the channel's concurrency slot
    if (open.jobs === 0) this.#track(this.#endPass(open));
  }

  async #endPass(open: OpenMessage): Promise<void> {
    const { progress } = open.m;
    const pending = progress.filter((p) => !p.done);
    const unsettled = this.#unsettled.get(open.id);
    this.#noteState(open);
    try {
      if (pending.length === 0) {
        await this.#finish(open);
        return;
      }
      if (unsettled) {
        // it has to wait: from now on info/ (and the state log) is its durable record
        try {
          await this.#o.store.settle(open.id, open.m.info);
          this.#unsettled.delete(open.id);
          this.#remember(open.id);
        } catch (err) {
          this.#o.log.warn(`warning: trouble preprocessing message ${open.id}: ${(err as Error).message}; will try again later`);
          this.#wait(open.id, this.#o.clock.now() + SLEEP_SYSFAIL_MS, false);
          return;
        }
      }
      const due = Math.min(...pending.map((p) => p.next));
      await this.#o.store.setDue(open.id, due).catch((err: Error) => {
        this.#o.log.warn(`warning: unable to utime state of ${open.id}: ${err.message}; message will be retried too soon`);
      });
      this.#wait(open.id, due, false);
    } finally {
      this.#open.delete(open.id);
      this.#active.delete(open.id);
    }
  }

  /** Every recipient is done: bounce the failures, run `clean`, remove the files (qmail-clean). */
  async #finish(open: OpenMessage): Promise<void> {
    const { info, progress } = open.m;
    const failures = info.recipients.flatMap((r, i) => (progress[i]!.done && !progress[i]!.ok ? [{ recipient: r.recipient, address: bounceAddress(r.route), text: progress[i]!.text ?? '' }] : []));
    if (failures.length > 0 && open.m.bounced === undefined) {
      const bounced = await this.#bounce(open, failures);
      this.#noteState(open);
      if (!bounced) {
        this.#wait(open.id, this.#o.clock.now() + SLEEP_SYSFAIL_MS, false);
        return;
      }
    }
    const clean: CleanInfo = {
      messageId: info.id,
      sender: info.sender,
      results: info.recipients.map((r, i) => {
        const p = progress[i]!;
        return { recipient: r.recipient, result: p.ok ? success(p.text ?? '') : failure(p.text ?? '') };
      }),
    };
    await this.#o.hooks.clean.promise(clean);
    this.#o.log.info(`end msg ${info.id}`);
    const unsettled = this.#unsettled.has(info.id);
    try {
      await this.#o.store.remove(info.id, { hasState: open.m.hasState, size: info.size, unsettled });
      this.#unsettled.delete(info.id);
      if (unsettled) this.#remember(info.id);
    } catch (err) {
      this.#noteState(open);
      this.#o.log.warn(`warning: unable to remove message ${info.id}: ${(err as Error).message}; will try again later`);
      this.#wait(open.id, this.#o.clock.now() + SLEEP_SYSFAIL_MS, false);
    }
  }

  /** Returns false when the bounce could not be queued (the message stays and is tried again later). */
  async #bounce(open: OpenMessage, failures: Array<{ recipient: string; address: string; text: string }>): Promise<boolean> {
    const { info } = open.m;
    const controls = this.#o.controls();
    const plan = planBounce(info.sender, controls);
    if (plan.kind === 'discard') {
      this.#o.log.info(`${plan.reason}: discarding bounce/${info.id}`);
      return true;
    }
    const decision = await this.#o.hooks.bounce.promise({
      messageId: info.id,
      sender: info.sender,
      failures: failures.map((f) => ({ recipient: f.recipient, text: f.text })),
      message: open.message,
    });
    if (decision?.kind === 'suppress') {
      this.#o.log.info(`bounce msg ${info.id} suppressed: ${decision.reason}`);
      return true;
    }
    const head = bounceHead(plan, info.sender, failures, controls, this.#o.clock.now());
    try {
      const receipt = await this.#o.injectBounce(plan, head, open.m.source);
      open.m.hasState = true;
      await this.#o.store.record(info.id, [{ k: 'bounced', id: receipt.id }]).catch(() => undefined);
      open.m.bounced = receipt.id;
      this.#o.log.info(`bounce msg ${info.id} qp ${receipt.qp}`);
      return true;
    } catch (err) {
      this.#o.log.warn(`warning: trouble injecting bounce message, will try later: ${(err as Error).message}`);
      return false;
    }
  }
}

/** Texts end in LF as qmail's reports do; a dying pass turns deferrals into failures. */
function normalise(r: DeliveryResult, dying: boolean): DeliveryResult {
  const text = r.text.endsWith('\n') ? r.text : `${r.text}\n`;
  if (r.kind === 'deferral' && dying) return failure(`${text}${DYING_TEXT}\n`);
  return { kind: r.kind, text } as DeliveryResult;
}
