import type { Readable } from 'node:stream';

/** Header lines in order, names lower-cased, values unfolded. */
export interface MessageHeaders {
  /** First value of a header, or undefined. */
  get(name: string): string | undefined;
  /** Every value of a header, in message order. */
  getAll(name: string): string[];
  /** All header lines in order. */
  readonly lines: ReadonlyArray<{ name: string; value: string }>;
}

export interface ParsedAttachment {
  filename?: string;
  contentType: string;
  size: number;
  content: Buffer;
}

export interface ParsedMessage {
  headers: MessageHeaders;
  subject?: string;
  from?: string;
  to?: string;
  messageId?: string;
  date?: Date;
  text?: string;
  html?: string;
  attachments: ParsedAttachment[];
}

/**
 * The parsing boundary. The default implementation (mailparser-parser.ts) is the
 * only file that knows which MIME library quail uses.
 */
export interface MessageParser {
  headers(stream: Readable): Promise<MessageHeaders>;
  parse(stream: Readable): Promise<ParsedMessage>;
}

export function headerMap(lines: Array<{ name: string; value: string }>): MessageHeaders {
  return {
    lines,
    get: (name) => lines.find((l) => l.name === name.toLowerCase())?.value,
    getAll: (name) => lines.filter((l) => l.name === name.toLowerCase()).map((l) => l.value),
  };
}

/**
 * Reads the header section from a stream (up to the first empty line) and stops
 * reading there. Lines are split on LF with an optional CR; continuation lines
 * are unfolded. At most `limit` bytes of header are read.
 */
export async function readHeaderSection(stream: Readable, limit = 1024 * 1024): Promise<MessageHeaders> {
  const chunks: Buffer[] = [];
  let seen = 0;
  let end = -1;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      chunks.push(buf);
      seen += buf.length;
      const all = Buffer.concat(chunks);
      end = findHeaderEnd(all);
      if (end >= 0 || seen >= limit) break;
    }
  } finally {
    stream.destroy();
  }
  const all = Buffer.concat(chunks);
  const head = all.subarray(0, end >= 0 ? end : Math.min(all.length, limit)).toString('latin1');
  return headerMap(parseHeaderLines(head));
}

function findHeaderEnd(buf: Buffer): number {
  if (buf[0] === 0x0a) return 0;
  if (buf[0] === 0x0d && buf[1] === 0x0a) return 0;
  const lf = buf.indexOf('\n\n');
  const crlf = buf.indexOf('\r\n\r\n');
  if (lf < 0) return crlf;
  if (crlf < 0) return lf + 1;
  return Math.min(lf + 1, crlf + 2);
}

function parseHeaderLines(head: string): Array<{ name: string; value: string }> {
  const lines: Array<{ name: string; value: string }> = [];
  for (const raw of head.split(/\r?\n/)) {
    if (raw === '') continue;
    const last = lines[lines.length - 1];
    if ((raw[0] === ' ' || raw[0] === '\t') && last) {
      last.value += ' ' + raw.trim();
      continue;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) continue;
    lines.push({ name: raw.slice(0, colon).trim().toLowerCase(), value: raw.slice(colon + 1).trim() });
  }
  return lines;
}
