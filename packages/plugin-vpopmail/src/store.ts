import { statSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { stampOf, type MailUser, type UserStore } from '@quail/core';
import { DomainFiles } from './domain-files.js';
import { temporary } from './errors.js';
import { flagsFromGid } from './flags.js';
import { domainName, splitLogin, userName } from './names.js';
import { quotaFromField } from './quota.js';
import { parseVpasswd, type ParsedVpasswd, type VpasswdEntry } from './vpasswd.js';

export interface VpopmailStoreOptions {
  /** control/defaultdomain: the domain of a bare login. */
  defaultDomain?: () => string | undefined;
  /** control/virtualdomains: `alias.org:example.com` makes alias.org an alias of example.com. */
  virtualDomains?: () => Record<string, string>;
  /** Called once per file load for every vpasswd line skipped. */
  warn?: (message: string) => void;
}

interface CachedFile {
  key: string;
  parsed: ParsedVpasswd;
}

/** A resolved domain: the real domain behind a name, and where it lives. */
export interface DomainLocation {
  domain: string;
  dir: string;
  /** Owner of the domain directory (vpopmail's uid/gid). */
  uid: number;
  gid: number;
}

const EMPTY: ParsedVpasswd = { lines: [], users: new Map(), warnings: [] };

/**
 * vpopmail's domains and users, read from `<root>/domains/<domain>/vpasswd`.
 * Each domain's file is parsed once and kept in memory, re-read when its inode,
 * size or mtime changes (the role of vpasswd.cdb), so lookups in large domains
 * cost one stat. Resolving a domain stats its directory, which keeps the
 * cache of its dot-qmail files (`domainFiles`) current.
 */
export class VpopmailStore implements UserStore {
  readonly root: string;
  readonly domainsDir: string;
  /** What the domain directories hold besides vpasswd (dot-qmail files), kept between lookups. */
  readonly domainFiles = new DomainFiles();
  readonly #options: VpopmailStoreOptions;
  readonly #files = new Map<string, CachedFile>();
  readonly #loading = new Map<string, Promise<ParsedVpasswd>>();
  #assign?: { key: string; map: Map<string, string> };

  constructor(root: string, options: VpopmailStoreOptions = {}) {
    this.root = resolve(root);
    this.domainsDir = join(this.root, 'domains');
    this.#options = options;
  }

  domainDir(domain: string): string {
    return join(this.domainsDir, domain);
  }

  /**
   * The real domain behind `name`: a domain with its own directory, else the
   * target of a virtualdomains alias line, else the directory of a vpopmail
   * style `users/assign` alias line. Undefined for domains this store does not serve.
   */
  async resolveDomain(name: string): Promise<DomainLocation | undefined> {
    const domain = domainName(name);
    if (!domain) return undefined;
    const own = await this.#located(domain);
    if (own) return own;
    const target = this.#options.virtualDomains?.()[domain];
    if (target && target !== domain) {
      const real = domainName(target);
      const viaVirtual = real && (await this.#located(real));
      if (viaVirtual) return viaVirtual;
    }
    const assigned = (await this.#assignMap()).get(domain);
    return assigned && assigned !== domain ? this.#located(assigned) : undefined;
  }

  async #located(domain: string): Promise<DomainLocation | undefined> {
    const dir = this.domainDir(domain);
    const statAt = Date.now();
    const info = statQuietly(dir);
    if (!info?.isDirectory()) return undefined;
    this.domainFiles.observe(dir, info, statAt);
    return { domain, dir, uid: info.uid, gid: info.gid };
  }

  /** `+alias.com-:real.com:89:89:/home/vpopmail/domains/real.com:-::` lines of users/assign, alias → real. */
  async #assignMap(): Promise<Map<string, string>> {
    const path = join(this.root, 'users', 'assign');
    const info = statQuietly(path);
    if (!info) return new Map();
    const key = stampOf(info);
    if (this.#assign?.key === key) return this.#assign.map;
    const map = new Map<string, string>();
    const text = await readFile(path, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const m = /^\+([^:]+)-:[^:]*:\d*:\d*:([^:]+):/.exec(line);
      if (!m) continue;
      const alias = domainName(m[1]!);
      const real = domainName(m[2]!.replace(/\/+$/, '').split('/').pop() ?? '');
      if (alias && real && !map.has(alias)) map.set(alias, real);
    }
    this.#assign = { key, map };
    return map;
  }

  vpasswdPath(domain: string): string {
    return join(this.domainDir(domain), 'vpasswd');
  }

  /** The parsed vpasswd of a real domain (empty when the file is missing). */
  async users(domain: string): Promise<ParsedVpasswd> {
    const path = this.vpasswdPath(domain);
    let info;
    try {
      info = statSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
      throw temporary(`cannot read ${path}: ${(err as Error).message}`, err);
    }
    const key = stampOf(info);
    const cached = this.#files.get(path);
    if (cached?.key === key) return cached.parsed;
    const pending = this.#loading.get(path);
    if (pending) return pending;
    const load = this.#load(path, key).finally(() => this.#loading.delete(path));
    this.#loading.set(path, load);
    return load;
  }

  async #load(path: string, key: string): Promise<ParsedVpasswd> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
      throw temporary(`cannot read ${path}: ${(err as Error).message}`, err);
    }
    const parsed = parseVpasswd(text, path);
    for (const w of parsed.warnings) this.#options.warn?.(w);
    this.#files.set(path, { key, parsed });
    return parsed;
  }

  async findUser(name: string, domain: string): Promise<VpasswdEntry | undefined> {
    const user = userName(name);
    return user ? (await this.users(domain)).users.get(user) : undefined;
  }

  /**
   * The user directory of an entry. vpopmail writes absolute paths; a path
   * inside the domain directory is used as it is, a tree moved from elsewhere
   * is found by the part after `/<domain>/`, and anything else (or a path
   * leaving the domain directory) falls back to `<domain dir>/<name>`.
   */
  homeOf(entry: VpasswdEntry, domain: string): string {
    const domDir = this.domainDir(domain);
    const fallback = join(domDir, entry.name);
    if (entry.dir === '') return fallback;
    const dir = isAbsolute(entry.dir) ? resolve(entry.dir) : resolve(domDir, entry.dir);
    if (inside(domDir, dir)) return dir;
    const marker = `${sep}${domain}${sep}`;
    const at = dir.lastIndexOf(marker);
    if (at >= 0) {
      const moved = resolve(domDir, dir.slice(at + marker.length));
      if (inside(domDir, moved)) return moved;
    }
    return fallback;
  }

  toMailUser(entry: VpasswdEntry, location: DomainLocation): MailUser {
    const home = this.homeOf(entry, location.domain);
    const quota = quotaFromField(entry.quota);
    return {
      address: `${entry.name}@${location.domain}`,
      name: entry.name,
      domain: location.domain,
      home,
      maildir: join(home, 'Maildir'),
      ...(quota && { quota }),
      ...(location.uid !== 0 && { uid: location.uid, gid: location.gid }),
      flags: flagsFromGid(entry.gid),
    };
  }

  /** A user by login: `user@domain` (`%` also separates), or a bare name in control/defaultdomain. */
  async lookup(login: string): Promise<MailUser | undefined> {
    const found = await this.find(login);
    return found && this.toMailUser(found.entry, found.location);
  }

  /** Like lookup, with the vpasswd entry. */
  async find(login: string): Promise<{ entry: VpasswdEntry; location: DomainLocation } | undefined> {
    const parts = splitLogin(login.trim(), this.#options.defaultDomain?.());
    if (!parts) return undefined;
    const location = await this.resolveDomain(parts.domain);
    if (!location) return undefined;
    const entry = await this.findUser(parts.user, location.domain);
    return entry && { entry, location };
  }

  async hasDomain(domain: string): Promise<boolean> {
    return (await this.resolveDomain(domain)) !== undefined;
  }
}

function inside(dir: string, path: string): boolean {
  return path.startsWith(dir + sep) && path.length > dir.length + 1;
}

/**
 * A stat on the calling thread, undefined on any error. The lookups stat a
 * domain's directory and files for every recipient and every delivery: done
 * here they cost microseconds, through libuv's thread pool several times that
 * in CPU.
 */
function statQuietly(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
