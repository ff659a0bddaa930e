/**
 * qmail-smtpd's DATA transparency state machine (reference 2.5): CRLF becomes LF,
 * a dot at the start of a line is dropped, `.` CRLF ends the data, and a bare LF
 * is refused (unless the site allows it, then LF counts as a line end).
 * Long lines and 8-bit bytes pass unchanged.
 */
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const enum State {
  /** Beginning of a line. */
  Bol,
  /** Inside a line. */
  Mid,
  /** A line began with a dot (dropped). */
  Dot,
  /** `.` CR at the start of a line. */
  DotCr,
  /** A CR is held. */
  Cr,
}

export type DecodeResult =
  /** All of the chunk was consumed; more data is needed. */
  | { kind: 'more'; out: Buffer }
  /** The final dot was seen; `rest` (after `.` CRLF) belongs to the command stream. */
  | { kind: 'end'; out: Buffer; rest: Buffer }
  /** A bare LF: qmail answers 451 and closes. */
  | { kind: 'bare-lf'; out: Buffer };

export class DataDecoder {
  #state: State = State.Bol;
  readonly #allowBareLf: boolean;

  constructor(options: { allowBareLf?: boolean } = {}) {
    this.#allowBareLf = options.allowBareLf === true;
  }

  decode(chunk: Buffer): DecodeResult {
    // at most two held bytes (`.` CR) come out with the chunk
    const out = Buffer.allocUnsafe(chunk.length + 2);
    let n = 0;
    let i = 0;
    const len = chunk.length;
    while (i < len) {
      if (this.#state === State.Mid) {
        // copy a run of ordinary bytes at once
        let stop = i;
        while (stop < len && chunk[stop] !== CR && chunk[stop] !== LF) stop++;
        if (stop > i) {
          chunk.copy(out, n, i, stop);
          n += stop - i;
          i = stop;
          continue;
        }
      }
      const b = chunk[i++]!;
      switch (this.#state) {
        case State.Bol:
          if (b === DOT) this.#state = State.Dot;
          else if (b === CR) this.#state = State.Cr;
          else if (b === LF) {
            if (!this.#allowBareLf) return { kind: 'bare-lf', out: out.subarray(0, n) };
            out[n++] = LF;
          } else {
            out[n++] = b;
            this.#state = State.Mid;
          }
          break;
        case State.Mid:
          if (b === CR) this.#state = State.Cr;
          else {
            // LF (CR was handled above, other bytes by the run copy)
            if (!this.#allowBareLf) return { kind: 'bare-lf', out: out.subarray(0, n) };
            out[n++] = LF;
            this.#state = State.Bol;
          }
          break;
        case State.Dot:
          if (b === CR) this.#state = State.DotCr;
          else if (b === LF) {
            if (!this.#allowBareLf) return { kind: 'bare-lf', out: out.subarray(0, n) };
            return this.#end(out, n, chunk, i);
          } else {
            out[n++] = b;
            this.#state = State.Mid;
          }
          break;
        case State.DotCr:
          if (b === LF) return this.#end(out, n, chunk, i);
          out[n++] = DOT;
          out[n++] = CR;
          if (b === CR) this.#state = State.Cr;
          else {
            out[n++] = b;
            this.#state = State.Mid;
          }
          break;
        case State.Cr:
          if (b === LF) {
            out[n++] = LF;
            this.#state = State.Bol;
          } else if (b === CR) {
            out[n++] = CR;
          } else {
            out[n++] = CR;
            out[n++] = b;
            this.#state = State.Mid;
          }
          break;
      }
    }
    return { kind: 'more', out: out.subarray(0, n) };
  }

  #end(out: Buffer, n: number, chunk: Buffer, i: number): DecodeResult {
    this.#state = State.Bol;
    return { kind: 'end', out: out.subarray(0, n), rest: chunk.subarray(i) };
  }
}

/**
 * Counts qmail's hops while in the header: lines starting with `received` (8 bytes)
 * or `delivered` (9 bytes), case-insensitive (reference 2.6). Fed the decoded data.
 */
export class HopCounter {
  hops = 0;
  #inHeader = true;
  /** The start of the current line, up to 9 bytes. */
  #prefix = '';
  #atLineStart = true;

  feed(data: Buffer): void {
    if (!this.#inHeader) return;
    let i = 0;
    while (i < data.length && this.#inHeader) {
      if (this.#atLineStart && data[i] === LF) {
        // an empty line ends the header
        this.#inHeader = false;
        return;
      }
      const nl = data.indexOf(LF, i);
      const end = nl < 0 ? data.length : nl;
      if (this.#prefix.length < 9) {
        this.#prefix += data.toString('latin1', i, Math.min(end, i + 9 - this.#prefix.length));
      }
      this.#atLineStart = false;
      if (nl < 0) return;
      this.#count();
      this.#prefix = '';
      this.#atLineStart = true;
      i = nl + 1;
    }
  }

  #count(): void {
    const p = this.#prefix.toLowerCase();
    if (p.startsWith('received') || p.startsWith('delivered')) this.hops++;
  }
}
