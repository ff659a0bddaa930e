import { existsSync, statSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectoryNames, ParsedFiles } from '@quail/core';
import { parseDefaultAction, QMAIL_DEFAULT, type DefaultAction } from './domain-default.js';

/**
 * What vdelivermail and chkuser read from domain directories, kept between
 * messages: which `.qmail-<ext>` files exist (valid while the directory's stamp
 * is unchanged, since adding, removing or renaming a file changes it) and what
 * `.qmail-default` says (valid while that file's stamp is unchanged). The
 * directory is stat'ed by every domain lookup, so a change an admin makes is
 * seen by the next lookup.
 */
export class DomainFiles {
  readonly #names = new DirectoryNames();
  readonly #defaults = new ParsedFiles<DefaultAction>();

  /** Records a domain directory's stat, taken at `statAt`; what was learned under another stamp is forgotten. */
  observe(dir: string, info: Stats, statAt: number): void {
    this.#names.observe(dir, info, statAt);
  }

  /** Whether `name` exists in the domain directory `dir`. */
  exists(dir: string, name: string): Promise<boolean> {
    return this.#names.exists(dir, name, async () => existsSync(join(dir, name)));
  }

  /** What the domain's `.qmail-default` says; `none` without one. */
  async defaultAction(dir: string): Promise<DefaultAction> {
    const path = join(dir, QMAIL_DEFAULT);
    const statAt = Date.now();
    // on the calling thread: a stat costs less than a trip through libuv's thread pool
    const info: Stats | undefined = statSync(path, { throwIfNoEntry: false });
    if (!info) return { kind: 'none' };
    const cached = this.#defaults.get(path, info);
    if (cached) return cached;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      throw err;
    }
    const action = parseDefaultAction(text);
    this.#defaults.set(path, info, statAt, action);
    return action;
  }
}
