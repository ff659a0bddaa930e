import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Name of the lock file in the Maildir's top directory. */
export const LOCK_FILE = '.quail-pop3.lock';

export interface LockHandle {
  release(): Promise<void>;
}

/**
 * One POP3 session per mailbox. Sessions of this process are tracked in memory;
 * other processes are kept out by a lock file holding the owner's pid. A lock
 * file whose process is gone (a crash) is taken over, so a lock never outlives
 * its process.
 */
export class MailboxLocks {
  readonly #held = new Map<string, string>();
  readonly #isAlive: (pid: number) => boolean;

  constructor(options: { isAlive?: (pid: number) => boolean } = {}) {
    this.#isAlive = options.isAlive ?? processIsAlive;
  }

  /** Number of mailboxes locked by this process. */
  get size(): number {
    return this.#held.size;
  }

  /** Locks the Maildir for one session; undefined when another session holds it. */
  async acquire(maildir: string, owner: string): Promise<LockHandle | undefined> {
    if (this.#held.has(maildir)) return undefined;
    this.#held.set(maildir, owner);
    try {
      if (!(await this.#createFile(maildir))) {
        this.#held.delete(maildir);
        return undefined;
      }
    } catch (err) {
      this.#held.delete(maildir);
      throw err;
    }
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        try {
          await unlink(join(maildir, LOCK_FILE));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        } finally {
          this.#held.delete(maildir);
        }
      },
    };
  }

  async #createFile(maildir: string): Promise<boolean> {
    const path = join(maildir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const file = await open(path, 'wx', 0o600);
        try {
          await file.writeFile(`${process.pid}\n`);
        } finally {
          await file.close();
        }
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = await readPid(path);
      // Our own pid without an in-memory entry is a leftover of this process; a dead pid is a crash.
      if (pid !== undefined && pid !== process.pid && this.#isAlive(pid)) return false;
      try {
        await unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return false;
  }
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return /^\d{1,10}$/.test(text) ? Number(text) : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
