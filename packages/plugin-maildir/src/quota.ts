import { closeSync, constants, existsSync, openSync, writeSync } from 'node:fs';
import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Quota } from '@quail/core';
import { parseFileName } from './file-name.js';
import type { UniqueNames } from './unique-name.js';

export interface Usage {
  bytes: number;
  messages: number;
}

/** A maildirsize file of 5120 bytes or more is rebuilt (Maildir++). */
export const MAILDIRSIZE_LIMIT = 5120;
/** vpopmail rebuilds a maildirsize file that was not written for 15 minutes. */
export const MAILDIRSIZE_MAX_AGE_MS = 15 * 60 * 1000;

/** True when a quota limits anything (0 or absent means no limit). */
export function hasLimit(quota: Quota | undefined): quota is Quota {
  return Boolean(quota && ((quota.bytes ?? 0) > 0 || (quota.messages ?? 0) > 0));
}

/** The quota definition line: `10485760S,1000C`, `10485760S` or `1000C`. */
export function formatQuota(quota: Quota): string {
  const parts: string[] = [];
  if ((quota.bytes ?? 0) > 0) parts.push(`${quota.bytes}S`);
  if ((quota.messages ?? 0) > 0) parts.push(`${quota.messages}C`);
  return parts.join(',');
}

/** Reads a definition line; undefined when it is not one. */
export function parseQuotaDefinition(line: string): Quota | undefined {
  const quota: Quota = {};
  for (const item of line.trim().split(',')) {
    const m = /^(\d+)([SC])$/.exec(item.trim());
    if (!m) return undefined;
    if (m[2] === 'S') quota.bytes = Number(m[1]);
    else quota.messages = Number(m[1]);
  }
  return quota;
}

/** True when a message of `size` octets does not fit (Maildir++ rule: either limit). */
export function exceeds(quota: Quota, usage: Usage, size: number): boolean {
  if ((quota.bytes ?? 0) > 0 && usage.bytes + size > quota.bytes!) return true;
  if ((quota.messages ?? 0) > 0 && usage.messages + 1 > quota.messages!) return true;
  return false;
}

interface SizeFile {
  definition: string;
  usage: Usage;
  fileSize: number;
  mtimeMs: number;
  wellFormed: boolean;
}

/** The Maildir++ `maildirsize` file of one main maildir. */
export class MaildirSizeFile {
  readonly maildir: string;
  readonly path: string;
  readonly #names: UniqueNames;

  constructor(maildir: string, names: UniqueNames) {
    this.maildir = maildir;
    this.path = join(maildir, 'maildirsize');
    this.#names = names;
  }

  /** The file as it is, or undefined when there is none. */
  async read(): Promise<SizeFile | undefined> {
    let text: string;
    let info;
    try {
      [text, info] = await Promise.all([readFile(this.path, 'latin1'), stat(this.path)]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const lines = text.split('\n');
    const definition = lines.shift()!.trim();
    const usage: Usage = { bytes: 0, messages: 0 };
    let wellFormed = parseQuotaDefinition(definition) !== undefined || definition === '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      const m = /^\s*(-?\d+)\s+(-?\d+)\s*$/.exec(line);
      if (!m) {
        wellFormed = false;
        continue;
      }
      usage.bytes += Number(m[1]);
      usage.messages += Number(m[2]);
    }
    return { definition, usage, fileSize: info.size, mtimeMs: info.mtimeMs, wellFormed };
  }

  /**
   * Current usage, rebuilding the file first when it is missing, 5120 bytes or
   * larger, older than 15 minutes, malformed, or holds a different quota.
   */
  async usage(quota: Quota): Promise<Usage> {
    const file = await this.read();
    if (file && !isStale(file) && file.definition === formatQuota(quota)) return file.usage;
    return this.rebuild(formatQuota(quota));
  }

  /** Usage from the file when it is fresh, otherwise counted (and the file rebuilt when there is one). */
  async currentUsage(): Promise<Usage> {
    const file = await this.read();
    if (!file) return countUsage(this.maildir);
    if (!isStale(file)) return file.usage;
    return this.rebuild(file.definition);
  }

  /** Counts the maildir and replaces the file atomically (written in tmp/, renamed over). */
  async rebuild(definition: string): Promise<Usage> {
    const usage = await countUsage(this.maildir);
    const tmp = join(this.maildir, 'tmp', `${this.#names.next().base}.maildirsize`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${definition}\n${usage.bytes} ${usage.messages}\n`);
      await fh.sync();
      await fh.close();
      await rename(tmp, this.path);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    return usage;
  }

  /**
   * Appends one `<bytes> <count>` line in a single write, when the file exists.
   * Synchronous, like the Maildir file's own write: it creates no name, and each
   * call costs less than a trip through libuv's thread pool.
   */
  record(bytes: number, messages: number): void {
    let fd: number;
    try {
      // most maildirs have no maildirsize: asking first spares a thrown ENOENT per delivery
      if (!existsSync(this.path)) return;
      fd = openSync(this.path, constants.O_WRONLY | constants.O_APPEND);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      writeSync(fd, `${bytes} ${messages}\n`);
    } finally {
      closeSync(fd);
    }
  }
}

function isStale(file: SizeFile): boolean {
  return !file.wellFormed || file.fileSize >= MAILDIRSIZE_LIMIT || Date.now() - file.mtimeMs > MAILDIRSIZE_MAX_AGE_MS;
}

/**
 * Sums new/ and cur/ of the maildir and of every folder but `.Trash`, skipping
 * dot files and messages flagged `T`; sizes come from `,S=` or stat. Counted
 * again when a directory changed while it was being counted.
 */
export async function countUsage(maildir: string): Promise<Usage> {
  for (let attempt = 0; ; attempt++) {
    const dirs = await quotaDirectories(maildir);
    const before = await Promise.all(dirs.map(mtimeOf));
    const usage: Usage = { bytes: 0, messages: 0 };
    for (const dir of dirs) {
      for (const name of await listNames(dir)) {
        const parsed = parseFileName(name);
        if (parsed.flags.includes('T')) continue;
        let size = parsed.size;
        if (size === undefined) {
          try {
            size = (await stat(join(dir, name))).size;
          } catch {
            continue;
          }
        }
        usage.bytes += size;
        usage.messages += 1;
      }
    }
    const after = await Promise.all(dirs.map(mtimeOf));
    if (attempt >= 2 || before.every((m, i) => m === after[i])) return usage;
  }
}

async function quotaDirectories(maildir: string): Promise<string[]> {
  const roots = [maildir];
  for (const entry of await readdir(maildir, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name.startsWith('.') && entry.name !== '.' && entry.name !== '..' && entry.name !== '.Trash') {
      roots.push(join(maildir, entry.name));
    }
  }
  return roots.flatMap((r) => [join(r, 'new'), join(r, 'cur')]);
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function mtimeOf(dir: string): Promise<number> {
  try {
    return (await stat(dir)).mtimeMs;
  } catch {
    return -1;
  }
}
