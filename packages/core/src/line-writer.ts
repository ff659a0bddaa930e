import { write, writeSync } from 'node:fs';

/** How many bytes of log lines may wait for a slow reader before new lines are dropped. */
const DEFAULT_HIGH_WATER = 4 * 1024 * 1024;
/** Pause before retrying a write the descriptor refused for now (EAGAIN on a non-blocking pipe or TTY). */
const RETRY_MS = 10;

export interface LineWriterOptions {
  /** Bytes allowed to wait; beyond it lines are counted and dropped, and the count is logged when writing resumes. */
  highWater?: number;
}

/**
 * Writes lines to a file descriptor without stopping the event loop: the lines
 * of one turn of the loop are joined and written by the thread pool, one write
 * in flight at a time, in order. Node writes stdout pipes synchronously, so a
 * log reader that is not scheduled at once (multilog, journald) would otherwise
 * stall every session. What is still waiting when the process exits is written
 * synchronously then.
 */
export class LineWriter {
  readonly #fd: number;
  readonly #highWater: number;
  #pending: string[] = [];
  #pendingBytes = 0;
  #inFlight = false;
  #scheduled = false;
  #dropped = 0;

  constructor(fd: number, options: LineWriterOptions = {}) {
    this.#fd = fd;
    this.#highWater = options.highWater ?? DEFAULT_HIGH_WATER;
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  write(line: string): void {
    if (this.#pendingBytes + line.length > this.#highWater) {
      this.#dropped++;
      return;
    }
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    if (!this.#inFlight && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#writeNext());
    }
  }

  /** Writes everything waiting, blocking; for process exit. A write already in flight finishes on its own. */
  flushSync(): void {
    const text = this.#take();
    if (!text) return;
    let buf = Buffer.from(text);
    for (let attempts = 0; buf.length > 0 && attempts < 1000; attempts++) {
      try {
        buf = buf.subarray(writeSync(this.#fd, buf));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      }
    }
  }

  #take(): string {
    let text = this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#dropped > 0) {
      text += `${new Date().toISOString()} warn ${this.#dropped} log lines dropped: the log reader did not keep up\n`;
      this.#dropped = 0;
    }
    return text;
  }

  #writeNext(): void {
    this.#scheduled = false;
    const text = this.#take();
    if (text) this.#writeBuffer(Buffer.from(text));
  }

  #writeBuffer(buf: Buffer): void {
    this.#inFlight = true;
    write(this.#fd, buf, (err, written) => {
      if (err && err.code !== 'EAGAIN') {
        this.#inFlight = false;
        return;
      }
      const rest = buf.subarray(err ? 0 : written);
      if (rest.length > 0) {
        if (err) setTimeout(() => this.#writeBuffer(rest), RETRY_MS);
        else this.#writeBuffer(rest);
        return;
      }
      this.#inFlight = false;
      if (this.#pending.length > 0 || this.#dropped > 0) this.#writeNext();
    });
  }
}

let stdoutWriter: LineWriter | undefined;

/** The process's one writer for standard output, flushed when the process exits. */
export function stdoutLines(): LineWriter {
  if (!stdoutWriter) {
    const writer = new LineWriter(1);
    process.on('exit', () => writer.flushSync());
    stdoutWriter = writer;
  }
  return stdoutWriter;
}
