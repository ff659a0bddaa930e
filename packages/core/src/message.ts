import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { MessageHeaders, MessageParser, ParsedMessage } from './message-parser.js';

/**
 * Where a message's bytes live. Inside quail a message is stored with bare LF
 * line endings, as qmail stores it; readers that need CRLF convert on the way out.
 */
export interface MessageSource {
  /** Octets in the stored form. */
  readonly size: number;
  /** A fresh stream of the stored bytes, from `start` (inclusive) to `end` (exclusive). */
  stream(range?: { start?: number; end?: number }): Readable;
  /** The file behind the source, when there is one (lets deliverers link or copy cheaply). */
  readonly path?: string;
}

/**
 * Files up to this size are read in one synchronous call instead of a read
 * stream: a stream makes four trips through libuv's thread pool (open, read,
 * the read that finds the end, close), each of which costs more CPU than
 * reading a few kilobytes from the page cache on the calling thread. The bytes
 * are kept by the source, so the header read and the copy of one delivery (and
 * the deliveries of one message running together) read the file once.
 */
const READ_AT_ONCE_BYTES = 128 * 1024;

/** A message stored in a file, which must not change while the source is in use (its size is taken once). */
export function fileSource(path: string, size?: number): MessageSource {
  const bytes = size ?? statSync(path).size;
  let whole: Buffer | undefined;
  return {
    size: bytes,
    path,
    stream: (range) => {
      if (bytes > READ_AT_ONCE_BYTES) {
        return createReadStream(path, {
          ...(range?.start !== undefined && { start: range.start }),
          ...(range?.end !== undefined && { end: range.end - 1 }),
        });
      }
      try {
        whole ??= readSmallFile(path, bytes);
      } catch (err) {
        return new Readable({
          read() {
            this.destroy(err as Error);
          },
        });
      }
      return Readable.from([whole.subarray(range?.start ?? 0, range?.end ?? whole.length)], { objectMode: false });
    },
  };
}

/** Reads the first `bytes` octets of a small file on the calling thread; fewer when the file is shorter. */
function readSmallFile(path: string, bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  const fd = openSync(path, 'r');
  try {
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === buf.length ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

export function bufferSource(data: Buffer | string): MessageSource {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return {
    size: buf.length,
    stream: (range) => Readable.from([buf.subarray(range?.start ?? 0, range?.end ?? buf.length)], { objectMode: false }),
  };
}

/**
 * A message as plugins see it: the raw bytes as a stream, and, only when asked,
 * its parsed headers or whole structure. Parsing results are cached.
 */
export class Message {
  readonly source: MessageSource;
  readonly #parser: MessageParser;
  #headers?: Promise<MessageHeaders>;
  #parsed?: Promise<ParsedMessage>;

  constructor(source: MessageSource, parser: MessageParser) {
    this.source = source;
    this.#parser = parser;
  }

  get size(): number {
    return this.source.size;
  }

  stream(range?: { start?: number; end?: number }): Readable {
    return this.source.stream(range);
  }

  /** The header section, parsed without reading the body. */
  headers(): Promise<MessageHeaders> {
    this.#headers ??= this.#parser.headers(this.source.stream());
    return this.#headers;
  }

  /** The whole message parsed (text, html, attachments). Reads everything: use when needed. */
  parse(): Promise<ParsedMessage> {
    this.#parsed ??= this.#parser.parse(this.source.stream());
    return this.#parsed;
  }
}
