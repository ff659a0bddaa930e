import { fsyncDir } from '@quail/core';

interface DirectoryState {
  /** The fsync in progress. */
  running?: Promise<void>;
  /** The fsync that starts when `running` ends, shared by everyone who asked meanwhile. */
  next?: Promise<void>;
}

/**
 * Group commit of directory fsyncs. An fsync of a directory makes durable every
 * link made in it before the fsync started, so deliveries into the same new/
 * share syncs: a caller whose link is done gets the next fsync that starts after
 * its call; while one runs, everyone who asks meanwhile waits for the single
 * fsync that follows it.
 */
export class DirectorySyncs {
  readonly #syncDir: (dir: string) => Promise<void>;
  readonly #dirs = new Map<string, DirectoryState>();

  constructor(syncDir: (dir: string) => Promise<void> = fsyncDir) {
    this.#syncDir = syncDir;
  }

  /** Resolves once an fsync of `dir` that started after this call has completed; rejects when that fsync fails. */
  sync(dir: string): Promise<void> {
    let state = this.#dirs.get(dir);
    if (!state) {
      state = {};
      this.#dirs.set(dir, state);
    }
    if (!state.running) return this.#start(dir, state);
    const current = state;
    current.next ??= current.running!.then(ignore, ignore).then(() => {
      current.next = undefined;
      return this.#start(dir, current);
    });
    return current.next;
  }

  #start(dir: string, state: DirectoryState): Promise<void> {
    const running: Promise<void> = this.#syncDir(dir).finally(() => {
      if (state.running === running) state.running = undefined;
      if (!state.running && !state.next && this.#dirs.get(dir) === state) this.#dirs.delete(dir);
    });
    state.running = running;
    return running;
  }
}

function ignore(): void {}
