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
 * reading a few kilobytes from the page cache on the calling thread.
 */
const READ_AT_ONCE_BYTES = 128 * 1024;

export function fileSource(path: string, size?: number): MessageSource {
  const bytes = size ?? statSync(path).size;
  return {
    size: bytes,
    path,
    stream: (range) => {
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? bytes, bytes);
      if (bytes > READ_AT_ONCE_BYTES) {
        return createReadStream(path, {
          ...(range?.start !== undefined && { start: range.start }),
          ...(range?.end !== undefined && { end: range.end - 1 }),
        });
      }
      try {
        return Readable.from([readRange(path, start, end)], { objectMode: false });
      } catch (err) {
        return new Readable({
          read() {
            this.destroy(err as Error);
          },
        });
      }
    },
  };
}

/** Reads the octets [start, end) of a small file on the calling thread; fewer when the file is shorter. */
function readRange(path: string, start: number, end: number): Buffer {
  const buf = Buffer.allocUnsafe(Math.max(0, end - start));
  const fd = openSync(path, 'r');
  try {
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, start + got);
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
