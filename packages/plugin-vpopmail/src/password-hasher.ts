import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { temporary } from './errors.js';
import { HASH_WORKER_SOURCE, hashLibraries, type HashLibraries } from './hash-worker.js';
import { cryptJob, matchesStored, newSetting, runCryptJob, schemeOf, type CryptJob, type HashScheme } from './passwords.js';

export interface PasswordHasherOptions {
  /** Worker threads; default min(2, os.availableParallelism()). */
  size?: number;
  /** Checks that may wait for a free worker (default 64); any more are refused at once with QUAIL_E_TEMPORARY. */
  maxWaiting?: number;
  /** Told once when no worker can be started and hashing falls back to the calling thread. */
  warn?: (message: string) => void;
  /** Where the workers load the hashing libraries from; default this package's own dependencies. */
  libraries?: HashLibraries;
}

/** `idle` before the first use and after close(), `workers` once started, `sync` after the workers could not start. */
export type HasherMode = 'idle' | 'workers' | 'sync';

interface Pending {
  id: number;
  job: CryptJob;
  resolve(value: string | undefined): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  pending?: Pending;
}

type Reply = { ready: true } | { failed: string } | { id: number; value: string | null };

const DEFAULT_MAX_WAITING = 64;

/**
 * Password hashing and checking on a small pool of worker threads, so that a
 * burst of logins (a password-guessing flood above all: every failure costs a
 * full SHA-512 crypt) never blocks the event loop that serves every other
 * session. Workers are started as checks arrive (up to `size`), each runs one
 * job at a time, and they hold the process open only while a job is running,
 * never when idle. A worker that dies fails its own job as temporary and is
 * replaced.
 * When more than `maxWaiting` checks wait, new ones are refused with
 * QUAIL_E_TEMPORARY instead of queueing without bound. If the workers cannot
 * be started at all, the work is done on the calling thread (told once).
 */
export class PasswordHasher {
  readonly #size: number;
  readonly #maxWaiting: number;
  readonly #warn: (message: string) => void;
  readonly #libraries: HashLibraries | undefined;
  #slots: Slot[] = [];
  #waiting: Pending[] = [];
  #mode: HasherMode = 'idle';
  #nextId = 1;
  #warned = false;

  constructor(options: PasswordHasherOptions = {}) {
    this.#size = Math.max(1, options.size ?? Math.min(2, availableParallelism()));
    this.#maxWaiting = Math.max(0, options.maxWaiting ?? DEFAULT_MAX_WAITING);
    this.#warn = options.warn ?? ((message) => process.emitWarning(message));
    this.#libraries = options.libraries;
  }

  get mode(): HasherMode {
    return this.#mode;
  }

  /** Checks waiting for a free worker. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** `crypt(candidate, stored) == stored`, compared in constant time; unknown formats never match. */
  async verify(candidate: string, stored: string): Promise<boolean> {
    const scheme = schemeOf(stored);
    if (!scheme) return false;
    return matchesStored(await this.#run(cryptJob(candidate, stored, scheme)), stored);
  }

  /** A new hash with a random salt; SHA-512 (`$6$`) unless another scheme is asked for. */
  async hash(password: string, scheme: HashScheme = 'sha512'): Promise<string> {
    const hash = await this.#run(cryptJob(password, newSetting(scheme), scheme));
    if (hash === undefined) throw temporary(`the ${scheme} hashing library failed`);
    return hash;
  }

  /**
   * Starts the workers and has each hash once, so that the first login after a
   * start pays neither for starting a thread nor for running the hashing code
   * cold (about 50 ms against 10 ms warm).
   */
  async warm(): Promise<void> {
    const setting = newSetting('sha512');
    const jobs = Array.from({ length: this.#size }, () => this.#run(cryptJob('warm-up', setting, 'sha512')).catch(() => undefined));
    await Promise.all(jobs);
  }

  /** Stops the workers; checks still waiting or running fail with QUAIL_E_TEMPORARY. A later check starts them again. */
  async close(): Promise<void> {
    const slots = this.#slots;
    const waiting = this.#waiting;
    this.#slots = [];
    this.#waiting = [];
    this.#mode = 'idle';
    const stopped = temporary('password checks stopped: the service is shutting down');
    for (const p of waiting) p.reject(stopped);
    for (const slot of slots) slot.pending?.reject(stopped);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  async #run(job: CryptJob): Promise<string | undefined> {
    if (this.#mode === 'idle') this.#mode = 'workers';
    let free: Slot | undefined;
    if (this.#mode === 'workers') {
      free = this.#slots.find((slot) => !slot.pending) ?? (this.#slots.length < this.#size ? this.#spawn() : undefined);
    }
    if (this.#mode === 'sync') return runCryptJob(job);
    if (!free && this.#waiting.length >= this.#maxWaiting) {
      throw temporary(`too many password checks waiting (${this.#waiting.length}); try again later`);
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = { id: this.#nextId++, job, resolve, reject };
      if (free) this.#send(free, pending);
      else this.#waiting.push(pending);
    });
  }

  #spawn(): Slot | undefined {
    let worker: Worker;
    try {
      worker = new Worker(HASH_WORKER_SOURCE, { eval: true, workerData: this.#libraries ?? hashLibraries(), name: 'quail password hasher' });
    } catch (err) {
      this.#fallBack((err as Error).message);
      return undefined;
    }
    const slot: Slot = { worker, ready: false };
    this.#slots.push(slot);
    const gone = (reason: string) => {
      if (!this.#slots.includes(slot)) return;
      if (slot.ready) this.#lose(slot, reason);
      else this.#fallBack(reason);
    };
    worker.on('message', (reply: Reply) => this.#answer(slot, reply));
    worker.on('error', (err) => gone(err.message));
    worker.on('exit', (code) => gone(`exit code ${code}`));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
    return slot;
  }

  #answer(slot: Slot, reply: Reply): void {
    if (!this.#slots.includes(slot)) return;
    if ('ready' in reply) {
      slot.ready = true;
    } else if ('failed' in reply) {
      this.#fallBack(reply.failed);
    } else if (slot.pending?.id === reply.id) {
      const done = slot.pending;
      slot.pending = undefined;
      done.resolve(reply.value ?? undefined);
      this.#next(slot);
    }
  }

  #send(slot: Slot, pending: Pending): void {
    slot.pending = pending;
    slot.worker.ref();
    slot.worker.postMessage({ id: pending.id, job: pending.job });
  }

  #next(slot: Slot): void {
    const next = this.#waiting.shift();
    if (next) this.#send(slot, next);
    else slot.worker.unref();
  }

  /** A worker that ran before has died: its job fails, and a new worker takes over the waiting ones. */
  #lose(slot: Slot, reason: string): void {
    this.#slots = this.#slots.filter((s) => s !== slot);
    slot.pending?.reject(temporary(`password check failed: the hash worker stopped (${reason})`));
    void slot.worker.terminate();
    if (this.#waiting.length === 0) return;
    const replacement = this.#spawn();
    if (replacement) this.#next(replacement);
  }

  /** No worker could start: everything from now on runs on the calling thread. */
  #fallBack(reason: string): void {
    if (this.#mode === 'sync') return;
    this.#mode = 'sync';
    if (!this.#warned) {
      this.#warned = true;
      this.#warn(`password checks run on the main thread: the hash workers could not start (${reason})`);
    }
    const slots = this.#slots;
    const stranded = [...slots.flatMap((slot) => (slot.pending ? [slot.pending] : [])), ...this.#waiting];
    this.#slots = [];
    this.#waiting = [];
    for (const slot of slots) void slot.worker.terminate();
    for (const p of stranded) p.resolve(runCryptJob(p.job));
  }
}

let shared: PasswordHasher | undefined;

/** One hasher for the whole process, for code without a start and stop of its own (VpopmailAdmin, the quail command). */
export function sharedPasswordHasher(): PasswordHasher {
  return (shared ??= new PasswordHasher());
}
