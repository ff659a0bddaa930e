import { Transform, type TransformCallback } from 'node:stream';

const FROM = Buffer.from('From ');
const GT = 0x3e;
const LF = 0x0a;

/**
 * mboxrd quoting while streaming: a `>` goes before every line that matches
 * `>*From `. Only the undecided start of a line is held back, never a whole line.
 * Tracks whether the data ended with LF (mbox needs to know).
 */
export class FromQuoting extends Transform {
  /** Bytes at the start of the current line that may still turn out to be `>*From `. */
  #pending: Buffer | undefined = Buffer.alloc(0);
  #last = LF;
  #any = false;

  /** True when the data was empty or ended with LF. */
  get endedWithNewline(): boolean {
    return !this.#any || this.#last === LF;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) return callback();
    this.#any = true;
    this.#last = chunk[chunk.length - 1]!;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#pending !== undefined) {
        const lf = chunk.indexOf(LF, pos);
        const end = lf < 0 ? chunk.length : lf + 1;
        const start = Buffer.concat([this.#pending, chunk.subarray(pos, end)]);
        const verdict = classify(start);
        if (verdict === 'undecided' && lf < 0) {
          this.#pending = start;
          return callback();
        }
        if (verdict === 'quote') this.push(Buffer.from('>'));
        this.push(start);
        pos = end;
        this.#pending = lf < 0 ? undefined : Buffer.alloc(0);
        continue;
      }
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0) {
        this.push(chunk.subarray(pos));
        return callback();
      }
      this.push(chunk.subarray(pos, lf + 1));
      pos = lf + 1;
      this.#pending = Buffer.alloc(0);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#pending && this.#pending.length > 0) this.push(this.#pending);
    callback();
  }
}

/** Looks at the start of a line: does it match `>*From `, surely not, or not yet known? */
function classify(start: Buffer): 'quote' | 'plain' | 'undecided' {
  let i = 0;
  while (i < start.length && start[i] === GT) i++;
  for (let j = 0; j < FROM.length; j++) {
    if (i + j >= start.length) return 'undecided';
    if (start[i + j] !== FROM[j]) return 'plain';
  }
  return 'quote';
}
