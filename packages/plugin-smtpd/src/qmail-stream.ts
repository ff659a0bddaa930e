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

/** The connection a QmailStream reports to (one reference per stream instead of a closure per callback). */
export interface QmailStreamOwner {
  /** A command line; `next` lets the stream read the next one. */
  _onCommand(command: Buffer, next?: () => void): void;
  /** A chunk of commands held more than one line (a pipelining client). */
  pipelined(): void;
  /** The stream failed (a command line too long). */
  parserError(err: Error): void;
}

/**
 * smtp-server's command/data splitter with qmail's DATA state machine in place
 * of its own: the message comes out with LF line ends, leading dots removed,
 * and a bare LF stops the transfer.
 */
export class QmailStream extends SMTPStream {
  readonly #owner: QmailStreamOwner;
  /** Made at DATA: an idle session holds none. */
  #decoder: DataDecoder | undefined;

  constructor(owner: QmailStreamOwner, options: { maxCommandLength: number }) {
    super(options);
    this.#owner = owner;
    this.on('error', onStreamError);
  }

  override oncommand(command: Buffer, next?: () => void): void {
    this.#owner._onCommand(command, next);
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    if (!this._dataMode && chunk.length > 0) {
      const newline = chunk.indexOf(10);
      if (newline >= 0 && newline < chunk.length - 1) this.#owner.pipelined();
    }
    super._write(chunk, encoding, next);
  }

  /** Enters data mode with a fresh decoder. */
  startQmailData(allowBareLf: boolean): SMTPServerDataStream {
    this.#decoder = new DataDecoder({ allowBareLf });
    return this.startDataMode();
  }

  /** Reports an error of the stream to its owner. */
  reportError(err: Error): void {
    this.#owner.parserError(err);
  }

  override _feedDataStream(chunk: Buffer, done: (err?: Error | null) => void): void {
    const stream = this._dataStream;
    const decoder = this.#decoder;
    if (!stream || !decoder) return done();
    const result = decoder.decode(chunk);
    this._countDataBytes(result.out.length);
    if (result.kind === 'bare-lf') {
      // nothing after this byte is read: qmail answers 451 and closes
      this.isClosed = true;
      stream.destroy(new BareLfError());
      return done();
    }
    if (result.kind === 'end') {
      this.#decoder = undefined;
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

/** One listener shared by every stream (`this` is the stream). */
function onStreamError(this: QmailStream, err: Error): void {
  this.reportError(err);
}
