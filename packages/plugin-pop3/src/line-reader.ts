const LF = 0x0a;
const CR = 0x0d;

export type LineEvent = { kind: 'line'; line: Buffer } | { kind: 'too-long' };

/**
 * Cuts the client's bytes into command lines. A line ends at LF with an optional
 * CR before it (qmail-popup's rule). A line longer than `maxLength` is reported
 * once as `too-long` and its bytes are dropped up to the next LF, so an endless
 * line never fills memory.
 */
export class LineReader {
  readonly maxLength: number;
  #parts: Buffer[] = [];
  #length = 0;
  #discarding = false;

  constructor(maxLength: number) {
    this.maxLength = maxLength;
  }

  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    let from = 0;
    while (from < chunk.length) {
      const lf = chunk.indexOf(LF, from);
      const end = lf < 0 ? chunk.length : lf;
      const piece = chunk.subarray(from, end);
      if (!this.#discarding) {
        if (this.#length + piece.length > this.maxLength + 1) {
          this.#discarding = true;
          this.#parts = [];
          this.#length = 0;
          events.push({ kind: 'too-long' });
        } else {
          this.#parts.push(piece);
          this.#length += piece.length;
        }
      }
      if (lf < 0) break;
      if (this.#discarding) {
        this.#discarding = false;
      } else {
        let line = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts);
        if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
        if (line.length > this.maxLength) events.push({ kind: 'too-long' });
        else events.push({ kind: 'line', line });
      }
      this.#parts = [];
      this.#length = 0;
      from = lf + 1;
    }
    return events;
  }

  /** Forgets buffered input (after STLS, plain-text bytes must not reach the TLS session). */
  reset(): void {
    this.#parts = [];
    this.#length = 0;
    this.#discarding = false;
  }
}
