import type { Stats } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDefaultAction, QMAIL_DEFAULT, type DefaultAction } from './domain-default.js';

/**
 * How long a file or directory must have been left alone before what was read
 * from it is kept. File times have a coarse granularity (a clock tick, or a
 * whole second on some file systems): a change made in the same tick as the
 * last one leaves the time as it was, so a fresh time proves nothing yet.
 */
const SETTLED_MS = 2000;

/** Most file names whose existence is remembered per domain directory. */
const MAX_NAMES = 10_000;

/** Changes whenever the file or directory is replaced, written, or (for a directory) has entries added or removed. */
export function stampOf(info: Stats): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
}

/** True when a change made after `statAt` would be sure to give the file a new mtime. */
function settled(info: Stats, statAt: number): boolean {
  return statAt - info.mtimeMs >= SETTLED_MS;
}

interface DirectoryFacts {
  stamp: string;
  /** Whether the directory was settled when stat'ed: only then is anything learned kept. */
  keep: boolean;
  /** File names found present or absent while the directory had this stamp. */
  names: Map<string, boolean>;
}

interface DefaultFacts {
  stamp: string;
  action: DefaultAction;
}

/**
 * What vdelivermail and chkuser read from domain directories, kept between
 * messages: which `.qmail-<ext>` files exist (valid while the directory's stamp
 * is unchanged, since adding, removing or renaming a file changes it) and what
 * `.qmail-default` says (valid while that file's stamp is unchanged). The
 * directory is stat'ed by every domain lookup, so a change an admin makes is
 * seen by the next lookup.
 */
export class DomainFiles {
  readonly #dirs = new Map<string, DirectoryFacts>();
  readonly #defaults = new Map<string, DefaultFacts>();

  /** Records a domain directory's stat, taken at `statAt`; what was learned under another stamp is forgotten. */
  observe(dir: string, info: Stats, statAt: number): void {
    const stamp = stampOf(info);
    const keep = settled(info, statAt);
    const facts = this.#dirs.get(dir);
    if (facts?.stamp === stamp) facts.keep ||= keep;
    else this.#dirs.set(dir, { stamp, keep, names: new Map() });
  }

  /** Whether `name` exists in the domain directory `dir`. */
  async exists(dir: string, name: string): Promise<boolean> {
    const facts = this.#dirs.get(dir);
    const known = facts?.names.get(name);
    if (known !== undefined) return known;
    const present = await access(join(dir, name)).then(
      () => true,
      () => false,
    );
    if (facts?.keep && this.#dirs.get(dir) === facts) {
      if (facts.names.size >= MAX_NAMES) facts.names.clear();
      facts.names.set(name, present);
    }
    return present;
  }

  /** What the domain's `.qmail-default` says; `none` without one. */
  async defaultAction(dir: string): Promise<DefaultAction> {
    const path = join(dir, QMAIL_DEFAULT);
    const statAt = Date.now();
    let info: Stats;
    try {
      info = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      throw err;
    }
    const stamp = stampOf(info);
    const cached = this.#defaults.get(dir);
    if (cached?.stamp === stamp) return cached.action;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      throw err;
    }
    const action = parseDefaultAction(text);
    if (settled(info, statAt)) this.#defaults.set(dir, { stamp, action });
    else this.#defaults.delete(dir);
    return action;
  }
}
