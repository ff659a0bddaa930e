import type { Stats } from 'node:fs';

/**
 * Caches of what was read from files and directories, kept right by their stat:
 * an entry is used only while the file's stamp (inode, size, mtime, ctime) is
 * the one it was read under, and only once the file had settled. Callers stat
 * before each use, so a change an admin makes is seen by the next lookup.
 */

/**
 * How long a file or directory must have been left alone before what was read
 * from it is kept. File times have a coarse granularity (a clock tick, or a
 * whole second on some file systems): a change made in the same tick as the
 * last one leaves the time as it was, so a fresh time proves nothing yet.
 */
const SETTLED_MS = 2000;

/** Most entries kept by one cache; past that it starts over. */
const MAX_ENTRIES = 10_000;

/** Changes whenever the file or directory is replaced, written, or (for a directory) has entries added or removed. */
export function stampOf(info: Stats): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
}

/** True when a change made after `statAt` would be sure to give the file a new mtime. */
export function settled(info: Stats, statAt: number): boolean {
  return statAt - info.mtimeMs >= SETTLED_MS;
}

interface DirectoryFacts {
  stamp: string;
  /** Whether the directory was settled when stat'ed: only then is anything learned kept. */
  keep: boolean;
  names: Map<string, boolean>;
}

/**
 * Which names exist in directories, remembered while a directory's stamp stays
 * the same (creating, removing or renaming an entry changes it). The caller
 * stats the directory before each use, so a change is seen by the next lookup.
 */
export class DirectoryNames {
  readonly #dirs = new Map<string, DirectoryFacts>();

  /** Records a directory's stat, taken at `statAt`; what was learned under another stamp is forgotten. */
  observe(dir: string, info: Stats, statAt: number): void {
    const stamp = stampOf(info);
    const keep = settled(info, statAt);
    const facts = this.#dirs.get(dir);
    if (facts?.stamp === stamp) {
      facts.keep ||= keep;
      return;
    }
    if (this.#dirs.size >= MAX_ENTRIES) this.#dirs.clear();
    this.#dirs.set(dir, { stamp, keep, names: new Map() });
  }

  /** Whether `name` exists in `dir`, from what was learned or else from `probe`. */
  async exists(dir: string, name: string, probe: () => Promise<boolean>): Promise<boolean> {
    const facts = this.#dirs.get(dir);
    const known = facts?.names.get(name);
    if (known !== undefined) return known;
    const present = await probe();
    if (facts?.keep && this.#dirs.get(dir) === facts) {
      if (facts.names.size >= MAX_ENTRIES) facts.names.clear();
      facts.names.set(name, present);
    }
    return present;
  }
}

/** What was made from files (parsed contents), remembered while each file's stamp stays the same. */
export class ParsedFiles<T> {
  readonly #files = new Map<string, { stamp: string; value: T }>();

  /** The value kept for `path` when `info` (a fresh stat of it) shows the file unchanged. */
  get(path: string, info: Stats): T | undefined {
    const entry = this.#files.get(path);
    return entry?.stamp === stampOf(info) ? entry.value : undefined;
  }

  /** Keeps `value` for the file as `info` (stat'ed at `statAt`) shows it, if the file had settled. */
  set(path: string, info: Stats, statAt: number, value: T): void {
    if (!settled(info, statAt)) {
      this.#files.delete(path);
      return;
    }
    if (this.#files.size >= MAX_ENTRIES && !this.#files.has(path)) this.#files.clear();
    this.#files.set(path, { stamp: stampOf(info), value });
  }
}
