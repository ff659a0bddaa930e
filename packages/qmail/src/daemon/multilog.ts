import { chmodSync, closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tai64n } from '../tai64n.js';

/** How each line is stamped: `multilog t` style, ISO-8601, or not at all. */
export type LogStamp = 'tai64n' | 'iso' | 'none';

export interface MultilogOptions {
  /** The log directory (multilog's `./dir`). */
  dir: string;
  /** `sSIZE`: the size at which `current` is rotated; 4096..16777215, default 99999. */
  size?: number;
  /** `nNUM`: how many rotated files to keep; at least 2, default 10. */
  count?: number;
  stamp?: LogStamp;
  /** The time source, for tests. */
  now?: () => number;
}

/** Lines go somewhere: stdout, or a rotated log directory. */
export interface LineSink {
  write(line: string): void;
  close(): void;
}

/** Writes lines to standard output, stamped or not. */
export class StdoutSink implements LineSink {
  readonly #stamp: LogStamp;
  constructor(stamp: LogStamp = 'none') {
    this.#stamp = stamp;
  }
  write(line: string): void {
    process.stdout.write(stampLine(line, this.#stamp, Date.now()));
  }
  close(): void {}
}

/** multilog rotates at a newline once `current` is within this many bytes of SIZE. */
const NEAR_END = 2000;

/**
 * multilog's log directory: lines are appended to `current` (mode 0644 while
 * written); when it reaches the size limit it is fsynced, marked complete (0744)
 * and renamed to `@<tai64n>.s`, and the oldest `@...` files beyond the count are
 * removed. A `current` left unfinished by a crash becomes `@<tai64n>.u` at start.
 */
export class MultilogWriter implements LineSink {
  readonly dir: string;
  readonly size: number;
  readonly count: number;
  readonly #stamp: LogStamp;
  readonly #now: () => number;
  #fd: number | undefined;
  #written = 0;

  constructor(options: MultilogOptions) {
    this.dir = options.dir;
    this.size = options.size ?? 99999;
    this.count = options.count ?? 10;
    this.#stamp = options.stamp ?? 'tai64n';
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.size) || this.size < 4096 || this.size > 16777215) {
      throw new RangeError(`log size must be a whole number from 4096 to 16777215 (got ${options.size})`);
    }
    if (!Number.isInteger(this.count) || this.count < 2) throw new RangeError(`log count must be a whole number of at least 2 (got ${options.count})`);
    mkdirSync(this.dir, { recursive: true });
    this.#recover();
    this.#open();
  }

  /** Appends one line (a newline is added when missing), rotating as multilog does. */
  write(line: string): void {
    if (this.#fd === undefined) this.#open();
    let data = Buffer.from(stampLine(line, this.#stamp, this.#now()));
    while (data.length > 0) {
      if (this.#written > 0 && this.#written + data.length > this.size) this.#rotate();
      const room = this.size - this.#written;
      const chunk = data.length > room ? data.subarray(0, room) : data;
      this.#writeAll(chunk);
      data = data.subarray(chunk.length);
      if (data.length > 0) this.#rotate();
    }
    if (this.#written >= this.size - Math.min(NEAR_END, this.size / 2)) this.#rotate();
  }

  /** Finishes `current` (fsync, mark complete) as multilog does on TERM; a later write reopens it. */
  close(): void {
    if (this.#fd === undefined) return;
    fsyncSync(this.#fd);
    closeSync(this.#fd);
    this.#fd = undefined;
    chmodSync(join(this.dir, 'current'), 0o744);
  }

  /** Rotated files, oldest first. */
  rotated(): string[] {
    return readdirSync(this.dir)
      .filter((f) => /^@[0-9a-f]{24}\.[su]$/.test(f))
      .sort();
  }

  #writeAll(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.#fd!, chunk, off, chunk.length - off);
    this.#written += chunk.length;
  }

  #open(): void {
    const path = join(this.dir, 'current');
    this.#fd = openSync(path, 'a', 0o644);
    chmodSync(path, 0o644);
    this.#written = fstatSync(this.#fd).size;
  }

  #recover(): void {
    const path = join(this.dir, 'current');
    let info;
    try {
      info = statSync(path);
    } catch {
      return;
    }
    if (info.size === 0) return;
    const finished = (info.mode & 0o100) !== 0;
    renameSync(path, join(this.dir, `${this.#label()}.${finished ? 's' : 'u'}`));
    this.#prune();
  }

  #rotate(): void {
    const fd = this.#fd!;
    fsyncSync(fd);
    closeSync(fd);
    this.#fd = undefined;
    const current = join(this.dir, 'current');
    chmodSync(current, 0o744);
    renameSync(current, join(this.dir, `${this.#label()}.s`));
    this.#prune();
    this.#open();
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  /** A label for a rotated file, later than every existing one even within one millisecond. */
  #label(): string {
    let label = tai64n(this.#now());
    const last = this.rotated().at(-1)?.slice(0, 25);
    if (last !== undefined && label <= last) {
      const next = BigInt(`0x${last.slice(1)}`) + 1n;
      label = `@${next.toString(16).padStart(24, '0')}`;
    }
    return label;
  }

  #prune(): void {
    const files = this.rotated();
    for (const old of files.slice(0, Math.max(0, files.length - this.count))) unlinkSync(join(this.dir, old));
  }
}

/** Prefixes a line with its stamp and makes sure it ends in a newline. */
export function stampLine(line: string, stamp: LogStamp, now: number): string {
  const text = line.endsWith('\n') ? line : `${line}\n`;
  if (stamp === 'tai64n') return `${tai64n(now)} ${text}`;
  if (stamp === 'iso') return `${new Date(now).toISOString()} ${text}`;
  return text;
}
