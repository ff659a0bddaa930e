import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { SMTPServerDataStream } from 'smtp-server';
import { DataDecoder } from './data-decoder.js';

/** The error a data stream is destroyed with when the client sent a bare LF. */
export class BareLfError extends Error {
  readonly code = 'BARE_LF';
  constructor() {
    super('bare LF in DATA');
  }
}

/**
 * smtp-server's command/data splitter with qmail's DATA state machine in place
 * of its own: the message comes out with LF line ends, leading dots removed,
 * and a bare LF stops the transfer.
 */
export class QmailStream extends SMTPStream {
  #decoder = new DataDecoder();
  /** Called when a chunk of commands holds more than one line (a pipelining client). */
  onPipelined: (() => void) | undefined;

  override _write(chunk: Buffer, encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    if (this.onPipelined && !this._dataMode && chunk.length > 0) {
      const newline = chunk.indexOf(10);
      if (newline >= 0 && newline < chunk.length - 1) this.onPipelined();
    }
    super._write(chunk, encoding, next);
  }

  /** Enters data mode with a fresh decoder. */
  startQmailData(allowBareLf: boolean): SMTPServerDataStream {
    this.#decoder = new DataDecoder({ allowBareLf });
    return this.startDataMode();
  }

  override _feedDataStream(chunk: Buffer, done: (err?: Error | null) => void): void {
    const stream = this._dataStream;
    if (!stream) return done();
    const result = this.#decoder.decode(chunk);
    this._countDataBytes(result.out.length);
    if (result.kind === 'bare-lf') {
      // nothing after this byte is read: qmail answers 451 and closes
      this.isClosed = true;
      stream.destroy(new BareLfError());
      return done();
    }
    if (result.kind === 'end') {
      this._endDataMode(result.out.length > 0 ? result.out : false, result.rest, done);
      return;
    }
    if (result.out.length === 0 || !stream.writable || stream.write(result.out)) return done();
    const resume = () => {
      stream.removeListener('drain', resume);
      stream.removeListener('close', resume);
      done();
    };
    stream.once('drain', resume);
    stream.once('close', resume);
  }
}
