import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readHeaderSection, type MessageHeaders, type MessageParser, type ParsedMessage } from '@quail/core';

/** One message found in a Maildir, as stored (bare LF line endings). */
export interface DeliveredMessage {
  /** Path of the file. */
  path: string;
  /** `new` or `cur`. */
  folder: 'new' | 'cur';
  /** The Maildir unique name (base name before `:2,`). */
  uid: string;
  /** Info flags after `:2,` (`S` seen ...), '' for none. */
  flags: string;
  /** The whole file. */
  raw: string;
  headers: MessageHeaders;
  /** The text after the blank line that ends the header. */
  body: string;
  /** Shortcuts to headers quail's local delivery adds, and the subject. */
  returnPath?: string;
  deliveredTo?: string;
  subject?: string;
  /** Full MIME parse (text, html, attachments) with the server's MessageParser. */
  parse(): Promise<ParsedMessage>;
}

/**
 * Reads every message of a Maildir (new/ and cur/, not tmp/), oldest first by
 * file name. A missing Maildir reads as empty.
 */
export async function readMaildir(maildir: string, parser?: MessageParser): Promise<DeliveredMessage[]> {
  const found: DeliveredMessage[] = [];
  for (const folder of ['new', 'cur'] as const) {
    let names: string[];
    try {
      names = await readdir(join(maildir, folder));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    for (const name of names.filter((n) => !n.startsWith('.'))) {
      found.push(await readMessage(join(maildir, folder, name), folder, name, parser));
    }
  }
  return found.sort((a, b) => compareNames(a.uid, b.uid));
}

async function readMessage(path: string, folder: 'new' | 'cur', name: string, parser?: MessageParser): Promise<DeliveredMessage> {
  const data = await readFile(path);
  const raw = data.toString('utf8');
  const headers = await readHeaderSection(Readable.from([data]));
  const split = raw.indexOf('\n\n');
  const info = name.indexOf(':2,');
  return {
    path,
    folder,
    uid: info < 0 ? name : name.slice(0, info),
    flags: info < 0 ? '' : name.slice(info + 3),
    raw,
    headers,
    body: split < 0 ? '' : raw.slice(split + 2),
    ...optional('returnPath', headers.get('return-path')),
    ...optional('deliveredTo', headers.get('delivered-to')),
    ...optional('subject', headers.get('subject')),
    parse: () => {
      if (!parser) throw new Error('readMaildir was called without a MessageParser: pass server.resolve(Tokens.MessageParser)');
      return parser.parse(Readable.from([data]));
    },
  };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/** Maildir names start with the delivery time in seconds, then `.M<usec>P<pid>Q<n>`: numeric order of the leading fields is delivery order. */
function compareNames(a: string, b: string): number {
  const key = (n: string) => {
    const m = /^(\d+)\.(?:M(\d+))?(?:P\d+)?(?:Q(\d+))?/.exec(n);
    return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : [Number.MAX_SAFE_INTEGER, 0, 0];
  };
  const ka = key(a);
  const kb = key(b);
  return ka[0]! - kb[0]! || ka[1]! - kb[1]! || ka[2]! - kb[2]! || a.localeCompare(b);
}
