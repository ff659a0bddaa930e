import type { QueueFs } from './fs-seam.js';

interface Round {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface DirState {
  /** The fsync running now: it covers only the changes made before it started. */
  running: Promise<void> | undefined;
  /** Callers that arrived while `running` was in flight; one fsync after it serves them all. */
  next: Round | undefined;
}

function round(): Round {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Group commit for directory fsyncs. `sync(dir)` resolves once an fsync of `dir`
 * that STARTED after the call has returned, so every name the caller created,
 * renamed or removed in `dir` before calling is durable. While one fsync of a
 * directory runs, all callers that arrive share the single fsync that follows it:
 * under load, one fsync per directory makes a whole batch of messages durable.
 * A failed fsync rejects every caller that was waiting on it.
 */
export class DirectorySyncer {
  readonly #fs: QueueFs;
  readonly #dirs = new Map<string, DirState>();

  constructor(fs: QueueFs) {
    this.#fs = fs;
  }

  sync(dir: string): Promise<void> {
    let state = this.#dirs.get(dir);
    if (!state) this.#dirs.set(dir, (state = { running: undefined, next: undefined }));
    if (!state.running) return this.#start(dir, state);
    state.next ??= round();
    return state.next.promise;
  }

  #start(dir: string, state: DirState): Promise<void> {
    const running = this.#fs.syncDir(dir);
    state.running = running;
    const after = () => {
      const waiting = state.next;
      state.next = undefined;
      state.running = undefined;
      if (!waiting) {
        this.#dirs.delete(dir);
        return;
      }
      this.#start(dir, state).then(waiting.resolve, waiting.reject);
    };
    running.then(after, after);
    return running;
  }
}
