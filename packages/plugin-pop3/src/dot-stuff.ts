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

/** Responses up to this size are carved out of a shared slab, as Node's Buffer pool does for small buffers. */
const SLAB_SIZE = 256 * 1024;
const SLAB_LIMIT = SLAB_SIZE / 8;
let slab = Buffer.allocUnsafe(SLAB_SIZE);
let slabUsed = 0;
/** Working space for larger responses, which are then copied out at their exact size. */
let scratch = Buffer.allocUnsafe(0);

/**
 * A whole multi-line response in one Buffer, in one pass over the message:
 * the status line, the message with CRLF line ends and dot-stuffing as
 * DotStuffTransform makes them, and the terminating `.` CRLF. With `bodyLines`
 * (TOP) the message stops after the header, its empty line and that many body
 * lines, as plugin-maildir's LineConverter cuts it. `message` is not kept.
 */
export function multilineResponse(status: string, message: Buffer, bodyLines?: number): Buffer {
  // Worst case: every octet is a LF that gains a CR, or a dot that gains a dot.
  const worst = status.length + 2 + 2 * message.length + 2 + TERMINATOR.length;
  if (worst > SLAB_LIMIT) {
    if (scratch.length < worst) scratch = Buffer.allocUnsafe(worst);
    const length = writeResponse(scratch, 0, status, message, bodyLines);
    const response = Buffer.allocUnsafe(length);
    scratch.copy(response, 0, 0, length);
    return response;
  }
  if (slabUsed + worst > SLAB_SIZE) {
    slab = Buffer.allocUnsafe(SLAB_SIZE);
    slabUsed = 0;
  }
  const start = slabUsed;
  const end = writeResponse(slab, start, status, message, bodyLines);
  // Keep the next response 8-byte aligned, as Node's pool does.
  slabUsed = (end + 7) & ~7;
  return slab.subarray(start, end);
}

/** Writes the response at `start` of `out` (which has room for the worst case); returns where it ends. */
function writeResponse(out: Buffer, start: number, status: string, message: Buffer, bodyLines: number | undefined): number {
  let o = start + out.write(status, start, 'latin1');
  out[o++] = CR;
  out[o++] = LF;
  let inBody = false;
  let bodySeen = 0;
  let at = 0;
  while (at < message.length) {
    if (message[at] === DOT) out[o++] = DOT;
    const lf = message.indexOf(LF, at);
    const end = lf < 0 ? message.length : lf;
    out.set(message.subarray(at, end), o);
    o += end - at;
    if (lf < 0) {
      out[o++] = CR;
      out[o++] = LF;
      break;
    }
    if (lf === at || message[lf - 1] !== CR) out[o++] = CR;
    out[o++] = LF;
    if (bodyLines !== undefined) {
      let cut = false;
      if (inBody) cut = ++bodySeen >= bodyLines;
      else if (lf === at || (lf === at + 1 && message[at] === CR)) {
        inBody = true;
        cut = bodyLines <= 0;
      }
      if (cut) break;
    }
    at = lf + 1;
  }
  out[o++] = DOT;
  out[o++] = CR;
  out[o++] = LF;
  return o;
}
