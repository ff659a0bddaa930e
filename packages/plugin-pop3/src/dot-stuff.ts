import { Transform, type TransformCallback } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BYTE = Buffer.from('.');
const TERMINATOR = Buffer.from('.\r\n');
/** Output is gathered into pieces of about this size, so that many short input chunks do not become many tiny socket writes. */
const BATCH = 64 * 1024;

/**
 * Turns a message into a POP3 multi-line response body (RFC 1939 section 3):
 * every line ends in CRLF (a bare LF gets its CR), a line starting with `.` gets
 * one more `.` in front, a last line without an end gets CRLF, and the
 * terminating `.` CRLF follows. Works chunk by chunk, so a message of any size
 * passes through without being held whole.
 */
export class DotStuffTransform extends Transform {
  #atLineStart = true;
  #previous = -1;
  #sawData = false;
  #pending: Buffer[] = [];
  #pendingLength = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.#sawData = true;
    const parts: Buffer[] = [];
    let from = 0;
    let at = 0;
    let atLineStart = this.#atLineStart;
    while (at < chunk.length) {
      if (atLineStart && chunk[at] === DOT) {
        parts.push(chunk.subarray(from, at), DOT_BYTE);
        from = at;
      }
      const lf = chunk.indexOf(LF, at);
      if (lf < 0) {
        atLineStart = false;
        break;
      }
      const previous = lf > 0 ? chunk[lf - 1] : this.#previous;
      if (previous !== CR) {
        parts.push(chunk.subarray(from, lf), CRLF);
        from = lf + 1;
      }
      atLineStart = true;
      at = lf + 1;
    }
    this.#atLineStart = atLineStart;
    parts.push(chunk.subarray(from));
    this.#previous = chunk[chunk.length - 1]!;
    for (const part of parts) {
      this.#pending.push(part);
      this.#pendingLength += part.length;
    }
    if (this.#pendingLength >= BATCH) this.push(this.#take());
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const endsLine = !this.#sawData || this.#previous === LF;
    if (!endsLine) this.#pending.push(CRLF);
    this.#pending.push(TERMINATOR);
    callback(null, this.#take());
  }

  #take(): Buffer {
    const out = Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingLength = 0;
    return out;
  }
}
