import { errnoCode, type QueueFs } from './fs-seam.js';
import type { QueueLayout } from './layout.js';

/** Files at most this large are kept for reuse; bigger ones are removed (their blocks are worth freeing). */
const MAX_SPARE_BYTES = 256 * 1024;
/** Spare files one process keeps at most. */
const MAX_SPARES = 256;

/**
 * Recycled queue files. Creating a file is the most expensive call of an
 * acceptance (an inode is allocated; on ext4 without a journal the allocator also
 * skips every inode freed in the last 30 seconds, so the cost grows with the
 * queue's own turnover), and removing one is what makes the next creation slow.
 * So a file leaving the queue (a preprocessed envelope, a delivered message and
 * its info) is renamed to `tmp/spare.<pid>.<n>` instead of being unlinked, and
 * the next file the queue needs is opened there with O_TRUNC and renamed into
 * place once written and synced: no inode is allocated or freed.
 *
 * A spare is an ordinary leftover of tmp/ as far as a crash is concerned (it is
 * removed at the next start). Its old content is never visible: a spare is
 * truncated when it is opened, and it only gets a queue name (mess/, todo/,
 * info/) after its new content was written and synced. A file becomes reusable
 * only once its old name is durably gone (a `todo/` or `info/` name that a crash
 * could bring back must not point at another message's data); a body's old
 * `mess/` name may come back, but without `todo/` or `info/` it is a leftover
 * that the next start removes. The pool is emptied when the queue goes idle and
 * when it stops.
 */
export class SpareFiles {
  readonly #layout: QueueLayout;
  readonly #fs: QueueFs;
  #names: string[] = [];
  #seq = 0;

  constructor(layout: QueueLayout, fs: QueueFs) {
    this.#layout = layout;
    this.#fs = fs;
  }

  get size(): number {
    return this.#names.length;
  }

  /** A spare file to open with 'w' (truncating it), or undefined when there is none. */
  take(): string | undefined {
    return this.#names.pop();
  }

  /**
   * Takes `path` (a file leaving the queue; `bytes` its size when known) out of
   * the queue by renaming it to a spare name, or unlinks it when the pool is full
   * or the file is large. Either way the name `path` is gone once this resolves.
   * Returns the spare name, which the caller hands to `keep` once the removal of
   * `path` is durable (its directory fsynced): until then a crash could bring
   * `path` back, and the file must not have been reused by then.
   */
  async retire(path: string, bytes = 0): Promise<string | undefined> {
    if (this.#names.length >= MAX_SPARES || bytes > MAX_SPARE_BYTES) {
      await this.#fs.unlink(path);
      return undefined;
    }
    const spare = this.#layout.tmp(`spare.${process.pid}.${++this.#seq}`);
    await this.#fs.rename(path, spare);
    return spare;
  }

  /** Puts a spare from `retire` into the pool. */
  keep(spare: string | undefined): void {
    if (spare !== undefined) this.#names.push(spare);
  }

  /** Unlinks every spare file. */
  async drain(): Promise<void> {
    const names = this.#names;
    this.#names = [];
    for (const name of names) {
      await this.#fs.unlink(name).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw err;
      });
    }
  }
}
