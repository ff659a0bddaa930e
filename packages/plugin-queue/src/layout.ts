import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** Number of split subdirectories, as qmail's conf-split. */
export const SPLIT = 23;

/** Message ids: `<ms since epoch>.<10 hex digits>`; unique without coordination and sortable by time. */
const ID_PATTERN = /^\d{1,16}\.[0-9a-f]{10}$/;

/** Random bytes drawn a page at a time: one call into the CSPRNG serves 819 ids. */
let randomPool = Buffer.alloc(0);
let randomOffset = 0;
function randomFive(): Buffer {
  if (randomOffset + 5 > randomPool.length) {
    randomPool = randomBytes(4095);
    randomOffset = 0;
  }
  randomOffset += 5;
  return randomPool.subarray(randomOffset - 5, randomOffset);
}

/** How long new messages share one split directory (see newMessageId). */
const SPLIT_WINDOW_MS = 1000;

/**
 * A new id. Its random part is chosen so that messages created within the same
 * second fall into the same split directory: their directory fsyncs then batch
 * together (DirectorySyncs), while over time the messages still spread over
 * all 23 directories.
 */
export function newMessageId(nowMs: number): string {
  const ms = Math.max(0, Math.floor(nowMs));
  const split = Math.floor(ms / SPLIT_WINDOW_MS) % SPLIT;
  const bytes = randomFive();
  let low = bytes.readUIntBE(2, 3);
  low = low - (low % SPLIT) + split;
  if (low > 0xffffff) low -= SPLIT;
  return `${ms}.${bytes.toString('hex', 0, 2)}${low.toString(16).padStart(6, '0')}`;
}

export function isMessageId(name: string): boolean {
  return ID_PATTERN.test(name);
}

/** The split subdirectory of a message: its random part modulo 23. */
export function splitOf(id: string): number {
  return Number.parseInt(id.slice(-6), 16) % SPLIT;
}

/**
 * Where everything lives under `<root>/queue/`:
 *
 *   tmp/<id>            message body being written; tmp/<id>.env, tmp/<id>.info: envelope, info
 *   mess/<s>/<id>       the message: queue Received line + data, bare LF
 *   intd/<id>           envelope being written by an older version (removed at start when uncommitted)
 *   todo/<id>           committed envelope (renamed from tmp/): the commit point; it stays
 *                       until the message leaves the queue or is settled into info/
 *   info/<s>/<id>       settled message (one that has to wait): sender, birth, routed recipients
 *   state/<s>/<id>      append-only delivery log of the message; its mtime is the next attempt time
 *   quarantine/         corrupt files moved aside
 *   lock/sendmutex      pid of the process that delivers (one scheduler per queue)
 */
export class QueueLayout {
  readonly base: string;
  constructor(root: string) {
    this.base = join(root, 'queue');
  }

  get tmpDir(): string {
    return join(this.base, 'tmp');
  }
  get intdDir(): string {
    return join(this.base, 'intd');
  }
  get todoDir(): string {
    return join(this.base, 'todo');
  }
  get lockDir(): string {
    return join(this.base, 'lock');
  }
  get sendLock(): string {
    return join(this.lockDir, 'sendmutex');
  }
  get quarantineDir(): string {
    return join(this.base, 'quarantine');
  }
  splitDir(kind: 'mess' | 'info' | 'state', s: number): string {
    return join(this.base, kind, String(s));
  }

  tmp(name: string): string {
    return join(this.tmpDir, name);
  }
  intd(id: string): string {
    return join(this.intdDir, id);
  }
  todo(id: string): string {
    return join(this.todoDir, id);
  }
  mess(id: string): string {
    return join(this.splitDir('mess', splitOf(id)), id);
  }
  info(id: string): string {
    return join(this.splitDir('info', splitOf(id)), id);
  }
  state(id: string): string {
    return join(this.splitDir('state', splitOf(id)), id);
  }

  /** Every directory the queue needs. */
  directories(): string[] {
    const dirs = [this.tmpDir, this.intdDir, this.todoDir, this.quarantineDir, this.lockDir];
    for (const kind of ['mess', 'info', 'state'] as const) for (let s = 0; s < SPLIT; s++) dirs.push(this.splitDir(kind, s));
    return dirs;
  }
}
