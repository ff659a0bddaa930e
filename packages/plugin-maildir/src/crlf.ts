import { Transform, type TransformCallback } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n');

/**
 * Counts a message's octets as stored and as sent with CRLF line endings while
 * it streams past: every LF not already preceded by a CR costs one more octet.
 */
export class CrlfCounter {
  bytes = 0;
  bareLineFeeds = 0;
  #last = -1;

  update(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
      const before = i > 0 ? chunk[i - 1] : this.#last;
      if (before !== CR) this.bareLineFeeds += 1;
    }
    this.#last = chunk[chunk.length - 1]!;
  }

  get crlfBytes(): number {
    return this.bytes + this.bareLineFeeds;
  }
}

export interface LineConversion {
  /** Turn every bare LF into CRLF (CRLF already present is kept). */
  crlf?: boolean;
  /** POP3 TOP: stop after the header, the empty line and this many body lines. */
  bodyLines?: number;
}

/**
 * The byte-level work behind reading a message: LF to CRLF, and cutting after
 * `bodyLines` body lines. Feed chunks in order; `done` turns true once the cut
 * point was passed, and later input is ignored.
 */
export class LineConverter {
  done = false;
  readonly #crlf: boolean;
  readonly #bodyLines: number | undefined;
  #inBody = false;
  #bodySeen = 0;
  #lineLength = 0;
  #last = -1;

  constructor(options: LineConversion = {}) {
    this.#crlf = options.crlf ?? false;
    const n = options.bodyLines;
    this.#bodyLines = n === undefined ? undefined : Math.max(0, Math.floor(n));
  }

  convert(chunk: Buffer): Buffer[] {
    if (this.done || chunk.length === 0) return [];
    const out: Buffer[] = [];
    let start = 0;
    let pos = 0;
    for (let lf = chunk.indexOf(LF); lf >= 0; lf = chunk.indexOf(LF, pos)) {
      const before = lf > 0 ? chunk[lf - 1] : this.#last;
      this.#lineLength += lf - pos;
      const emptyLine = this.#lineLength === 0 || (this.#lineLength === 1 && before === CR);
      if (this.#crlf && before !== CR) {
        if (lf > start) out.push(chunk.subarray(start, lf));
        out.push(CRLF);
        start = lf + 1;
      }
      pos = lf + 1;
      this.#lineLength = 0;
      this.#last = LF;
      if (this.#lineEnded(emptyLine)) {
        if (pos > start) out.push(chunk.subarray(start, pos));
        this.done = true;
        return out;
      }
    }
    this.#lineLength += chunk.length - pos;
    this.#last = chunk[chunk.length - 1]!;
    if (chunk.length > start) out.push(chunk.subarray(start));
    return out;
  }

  /** True when this line ending is the last one to send. */
  #lineEnded(emptyLine: boolean): boolean {
    if (this.#bodyLines === undefined) return false;
    if (!this.#inBody) {
      if (!emptyLine) return false;
      this.#inBody = true;
      return this.#bodyLines === 0;
    }
    this.#bodySeen += 1;
    return this.#bodySeen >= this.#bodyLines;
  }
}

/** A streaming LF to CRLF (and TOP) converter. Input after the cut point is read and dropped. */
export class CrlfTransform extends Transform {
  readonly #converter: LineConverter;

  constructor(options: LineConversion = { crlf: true }) {
    super();
    this.#converter = new LineConverter(options);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (const part of this.#converter.convert(chunk)) this.push(part);
    callback();
  }
}
