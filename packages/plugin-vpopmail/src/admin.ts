import { mkdir, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve, sep } from 'node:path';
import { atomicWriteFile, type Quota, type UserFlags } from '@quail/core';
import { editControlFile, mapKey, readControlLines, readControlMap } from './control-files.js';
import { BOUNCE_LINE, QMAIL_DEFAULT, readDefaultAction } from './domain-default.js';
import { invalid, refused, shown } from './errors.js';
import { applyFlags, flagsFromGid } from './flags.js';
import { withFileLock } from './lock.js';
import { dotQmailSuffix, requireAddress, requireDomain, requireGecos, requirePassword, requireUser } from './names.js';
import { sharedPasswordHasher, type PasswordHasher } from './password-hasher.js';
import { randomPassword } from './passwords.js';
import { NOQUOTA, normaliseQuota, quotaFromField, usagePercent } from './quota.js';
import { VpopmailStore, type DomainLocation } from './store.js';
import { maildirUsage, updateMaildirSize, type MaildirUsage } from './usage.js';
import { formatVpasswdLine, parseVpasswd, type VpasswdEntry, type VpasswdLine } from './vpasswd.js';

/** Everything vuserinfo shows about one account. */
export interface VUserInfo {
  address: string;
  name: string;
  domain: string;
  /** crypt(3) hash from field 2 ('' for none). */
  passwd: string;
  /** Field 8, when the install keeps clear-text passwords and the line has it. */
  clearPassword?: string;
  uid: number;
  /** The flag bits of field 4. */
  gid: number;
  flags: UserFlags;
  gecos: string;
  /** The directory as vpasswd field 6 has it. */
  dir: string;
  /** Where quail finds it (see VpopmailStore.homeOf). */
  home: string;
  maildir: string;
  /** Field 7 as written: `NOQUOTA` or `<bytes>S[,<count>C]`. */
  quota: string;
  quotaLimits?: Quota;
  usage: MaildirUsage;
  /** Percent of the quota in use; undefined without a quota. */
  usagePercent?: number;
  /** Time of the last login, when vpopmail's `lastauth` file is there. */
  lastAuth?: Date;
}

/** What vdominfo shows about a domain. */
export interface VDomainInfo {
  domain: string;
  /** The real domain (the domain itself unless this is an alias domain). */
  realDomain: string;
  alias: boolean;
  dir: string;
  uid: number;
  gid: number;
  users: number;
  /** Alias domains that point to the real domain. */
  aliasDomains: string[];
}

/** One valias entry: `.qmail-<alias>` in the domain directory. */
export interface VAliasInfo {
  alias: string;
  targets: string[];
}

export interface VpopmailAdminOptions {
  /** Keep clear-text passwords in field 8; default from control/vpopmail.clearpasswd (on when absent). */
  clearPasswords?: boolean;
  /** Told about each vpasswd line that is skipped (`file:line: reason`), once per line. */
  warn?: (message: string) => void;
  /** Makes the password hashes; default one worker pool shared by the whole process. */
  hasher?: PasswordHasher;
}

const VPASSWD_LOCK = '.vpasswd.quail-lock';
const DOMAINS_LOCK = '.domains.quail-lock';
/** Entries of control/rcpthosts after which vpopmail adds domains to morercpthosts. */
const MAX_RCPTHOSTS = 50;
/** Longest target line valias accepts. */
const MAX_ALIAS_TARGET = 512;

/**
 * The v* commands' work (vadddomain, vadduser, vpasswd, valias, ...) on a quail
 * root, compatible with vpopmail's files. Every file change is atomic and made
 * under a lock that other processes (the daemon, other commands) respect.
 */
export class VpopmailAdmin {
  readonly root: string;
  readonly #options: VpopmailAdminOptions;
  readonly #store: VpopmailStore;
  readonly #hasher: PasswordHasher;
  #virtual: Record<string, string> = {};
  #defaultDomain?: string;
  #clear = true;
  readonly #warned = new Set<string>();

  constructor(root: string, options: VpopmailAdminOptions = {}) {
    this.root = resolve(root);
    this.#options = options;
    this.#hasher = options.hasher ?? sharedPasswordHasher();
    this.#store = new VpopmailStore(this.root, {
      virtualDomains: () => this.#virtual,
      defaultDomain: () => this.#defaultDomain,
      warn: (message) => this.#warn(message),
    });
    if (/[:\n\0]/.test(this.#store.domainsDir)) throw invalid(`The server root may not contain ":" or control characters: ${shown(this.root)}`);
  }

  /** Reads the control files the commands depend on (each call sees the current ones). */
  async #refresh(): Promise<void> {
    this.#virtual = await readControlMap(this.root, 'virtualdomains');
    this.#defaultDomain = (await readControlLines(this.root, 'defaultdomain'))[0] ?? (await readControlLines(this.root, 'me'))[0];
    const setting = (await readControlLines(this.root, 'vpopmail.clearpasswd'))[0];
    this.#clear = this.#options.clearPasswords ?? setting !== '0';
  }

  /* ------------------------------------------------------------ domains */

  async addDomain(domain: string, postmasterPassword?: string): Promise<{ postmasterPassword: string }> {
    await this.#refresh();
    const name = requireDomain(domain);
    const password = requirePassword(postmasterPassword ?? randomPassword());
    const dir = this.#store.domainDir(name);
    await mkdir(this.#store.domainsDir, { recursive: true, mode: 0o750 });
    await this.#withDomainsLock(async () => {
      await this.#refresh();
      if ((await this.#store.resolveDomain(name)) || this.#virtual[name]) throw refused(`Domain already exists: ${name}`);
      try {
        await mkdir(dir, { mode: 0o750 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refused(`Domain already exists: ${name}`);
        throw err;
      }
      let listed = false;
      try {
        await atomicWriteFile(join(dir, QMAIL_DEFAULT), `${BOUNCE_LINE}\n`, 0o600);
        await atomicWriteFile(join(dir, 'vpasswd'), '', 0o600);
        await this.#createUser(await this.#location(name), 'postmaster', password, { gecos: 'Postmaster' });
        listed = true;
        await this.#addControlEntries(name, name);
        await editControlFile(this.root, 'locals', { drop: (l) => l.toLowerCase() === name });
      } catch (err) {
        if (listed) await this.#removeControlEntries([name]).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    });
    return { postmasterPassword: password };
  }

  /** vdeldomain. A real domain with alias domains needs `force` (which deletes the aliases too). */
  async deleteDomain(domain: string, options: { force?: boolean } = {}): Promise<void> {
    await this.#refresh();
    const name = requireDomain(domain);
    await this.#withDomainsLock(async () => {
      await this.#refresh();
      const location = await this.#store.resolveDomain(name);
      if (!location) throw refused(`Domain does not exist: ${name}`);
      if (location.domain !== name) {
        await this.#removeControlEntries([name]);
        return;
      }
      const aliases = this.#aliasDomainsOf(name);
      if (aliases.length > 0 && !options.force) {
        throw refused(`Alias domains exist: ${aliases.join(', ')}; use force to delete the domain and all its aliases`);
      }
      await this.#removeControlEntries([name, ...aliases]);
      const doomed = join(this.#store.domainsDir, `.deleted-${name}-${randomBytes(4).toString('hex')}`);
      await this.#withUsersLock(location, () => rename(location.dir, doomed));
      await rm(doomed, { recursive: true, force: true });
    });
  }

  /** vaddaliasdomain: either order; the domain that exists is the real one. */
  async addAliasDomain(alias: string, domain: string): Promise<void> {
    await this.#refresh();
    let aliasName = requireDomain(alias);
    let realName = requireDomain(domain);
    await this.#withDomainsLock(async () => {
      await this.#refresh();
      let real = await this.#store.resolveDomain(realName);
      const other = await this.#store.resolveDomain(aliasName);
      if (!real && other) [aliasName, realName, real] = [realName, aliasName, other];
      else if (real && other) throw refused(`Domain already exists: ${aliasName}`);
      if (!real) throw refused(`Domain does not exist: ${realName}`);
      if (real.domain !== realName) throw refused(`${realName} is itself an alias of ${real.domain}`);
      if (this.#virtual[aliasName]) throw refused(`Domain already exists: ${aliasName}`);
      await this.#addControlEntries(aliasName, realName);
    });
  }

  /** vdominfo: one domain (alias domains say so), or every domain. */
  async domainInfo(domain?: string): Promise<VDomainInfo[]> {
    await this.#refresh();
    if (domain !== undefined) {
      const name = requireDomain(domain);
      const location = await this.#store.resolveDomain(name);
      if (!location) throw refused(`Domain does not exist: ${name}`);
      return [await this.#domainInfo(name, location)];
    }
    const names = (await readdir(this.#store.domainsDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
    const infos: VDomainInfo[] = [];
    for (const name of names) {
      const location = await this.#store.resolveDomain(name);
      if (!location || location.domain !== name) continue;
      infos.push(await this.#domainInfo(name, location));
      for (const alias of this.#aliasDomainsOf(name)) infos.push(await this.#domainInfo(alias, location));
    }
    return infos;
  }

  async #domainInfo(name: string, location: DomainLocation): Promise<VDomainInfo> {
    return {
      domain: name,
      realDomain: location.domain,
      alias: name !== location.domain,
      dir: location.dir,
      uid: location.uid,
      gid: location.gid,
      users: (await this.#store.users(location.domain)).users.size,
      aliasDomains: this.#aliasDomainsOf(location.domain),
    };
  }

  #aliasDomainsOf(real: string): string[] {
    return Object.entries(this.#virtual)
      .filter(([alias, target]) => alias !== real && target.toLowerCase() === real)
      .map(([alias]) => alias)
      .sort();
  }

  async #addControlEntries(domain: string, prefix: string): Promise<void> {
    const rcpthosts = await readControlLines(this.root, 'rcpthosts');
    const listed = [...rcpthosts, ...(await readControlLines(this.root, 'morercpthosts'))];
    if (!listed.some((l) => l.toLowerCase() === domain)) {
      // vpopmail moves on to morercpthosts once rcpthosts has 50 entries.
      await editControlFile(this.root, rcpthosts.length >= MAX_RCPTHOSTS ? 'morercpthosts' : 'rcpthosts', { add: [domain] });
    }
    await editControlFile(this.root, 'virtualdomains', { drop: (l) => mapKey(l) === domain, add: [`${domain}:${prefix}`] });
  }

  async #removeControlEntries(domains: string[]): Promise<void> {
    const gone = new Set(domains);
    await editControlFile(this.root, 'rcpthosts', { drop: (l) => gone.has(l.toLowerCase()) });
    await editControlFile(this.root, 'morercpthosts', { drop: (l) => gone.has(l.toLowerCase()) });
    await editControlFile(this.root, 'virtualdomains', { drop: (l) => gone.has(mapKey(l) ?? '') });
  }

  /* ------------------------------------------------------------ users */

  /** vadduser. Without a password a random one is made; either way it is returned. */
  async addUser(address: string, password?: string, options: { gecos?: string; quota?: string } = {}): Promise<{ password: string }> {
    await this.#refresh();
    const { user, domain } = requireAddress(address, this.#defaultDomain);
    if (user.length < 2) throw invalid(`Illegal username: ${user} (one-character names are reserved by vpopmail)`);
    if (/^vpasswd($|\.)/.test(user)) throw invalid(`Illegal username: ${user} (the name of the domain's user database)`);
    const clear = requirePassword(password ?? randomPassword());
    const gecos = requireGecos(options.gecos ?? user);
    const quota = options.quota === undefined ? NOQUOTA : normaliseQuota(options.quota);
    await this.#createUser(await this.#location(domain), user, clear, { gecos, quota });
    return { password: clear };
  }

  async #createUser(location: DomainLocation, user: string, clear: string, options: { gecos: string; quota?: string }): Promise<void> {
    const hash = await this.#hasher.hash(clear);
    const home = join(location.dir, user);
    await this.#withUsersLock(location, async () => {
      const file = await this.#readUsers(location);
      if (file.users.has(user)) throw refused(`User already exists: ${user}@${location.domain}`);
      try {
        await mkdir(home, { mode: 0o750 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refused(`User directory already exists: ${home}`);
        throw err;
      }
      try {
        for (const sub of ['', 'cur', 'new', 'tmp']) await mkdir(join(home, 'Maildir', sub), { mode: 0o700 });
        const entry: VpasswdEntry = { name: user, passwd: hash, uid: 1, gid: 0, gecos: options.gecos, dir: home, quota: options.quota ?? NOQUOTA, clear };
        await this.#writeUsers(location, [...file.lines, { raw: formatVpasswdLine(entry, this.#clear), entry }]);
      } catch (err) {
        await rm(home, { recursive: true, force: true });
        throw err;
      }
    });
  }

  /** vdeluser: the line goes, then the user directory. The domain's catch-all account is refused. */
  async deleteUser(address: string): Promise<void> {
    const { location, user } = await this.#userAddress(address);
    const action = await readDefaultAction(location.dir);
    await this.#withUsersLock(location, async () => {
      const file = await this.#readUsers(location);
      const entry = file.users.get(user);
      if (!entry) throw refused(`User does not exist: ${user}@${location.domain}`);
      const home = this.#store.homeOf(entry, location.domain);
      const catchAll =
        (action.kind === 'forward' && (await this.#isAddressOf(action.address, user, location.domain))) ||
        ((action.kind === 'directory' || action.kind === 'maildir') && isWithin(home, resolve(action.path)));
      if (catchAll) throw refused(`can't delete catchall account ${user}@${location.domain}`);
      await this.#writeUsers(
        location,
        file.lines.filter((l) => l.entry?.name !== user),
      );
      await rm(home, { recursive: true, force: true });
    });
  }

  async #isAddressOf(address: string, user: string, domain: string): Promise<boolean> {
    const at = address.lastIndexOf('@');
    if (address.slice(0, at).toLowerCase() !== user) return false;
    return (await this.#store.resolveDomain(address.slice(at + 1)))?.domain === domain;
  }

  /** vpasswd: new hash with a new salt (and the clear field when kept); refused with the noPassword flag. */
  async setPassword(address: string, password: string): Promise<void> {
    const clear = requirePassword(password);
    const hash = await this.#hasher.hash(clear);
    await this.#updateUser(address, (entry) => {
      if (flagsFromGid(entry.gid).noPassword) throw refused(`Password changes are disabled for ${entry.name} (flag noPassword)`);
      const next: VpasswdEntry = { ...entry, passwd: hash };
      if (this.#clear) next.clear = clear;
      else delete next.clear;
      return next;
    });
  }

  /** vmoduser: flags (true sets, false clears) and the comment. */
  async modifyUser(address: string, change: { flags?: Partial<UserFlags>; gecos?: string }): Promise<void> {
    const gecos = change.gecos === undefined ? undefined : requireGecos(change.gecos);
    await this.#updateUser(address, (entry) => ({
      ...entry,
      gid: change.flags ? applyFlags(entry.gid, change.flags) : entry.gid,
      ...(gecos !== undefined && { gecos }),
    }));
  }

  /** vsetuserquota: `NOQUOTA`, bytes, `10M`, `500K`, `<n>S`, `<n>C`, `<n>S,<n>C`. */
  async setQuota(address: string, quota: string): Promise<void> {
    const field = normaliseQuota(quota);
    const entry = await this.#updateUser(address, (e) => ({ ...e, quota: field }));
    const { location } = await this.#userAddress(address);
    await updateMaildirSize(join(this.#store.homeOf(entry, location.domain), 'Maildir'), field === NOQUOTA ? undefined : field);
  }

  async userInfo(address: string): Promise<VUserInfo> {
    const { location, user } = await this.#userAddress(address);
    const entry = (await this.#store.users(location.domain)).users.get(user);
    if (!entry) throw refused(`no such user ${user}@${location.domain}`);
    return this.#info(entry, location);
  }

  /** vuserinfo -D: every account of the domain in file order, with hash and clear password. */
  async listUsers(domain: string): Promise<VUserInfo[]> {
    await this.#refresh();
    const location = await this.#location(requireDomain(domain));
    const file = await this.#store.users(location.domain);
    const infos: VUserInfo[] = [];
    for (const line of file.lines) if (line.entry && file.users.get(line.entry.name) === line.entry) infos.push(await this.#info(line.entry, location));
    return infos;
  }

  async #info(entry: VpasswdEntry, location: DomainLocation): Promise<VUserInfo> {
    const home = this.#store.homeOf(entry, location.domain);
    const maildir = join(home, 'Maildir');
    const quotaLimits = quotaFromField(entry.quota);
    const usage = await maildirUsage(maildir);
    const percent = usagePercent(quotaLimits, usage);
    const lastAuth = await stat(join(home, 'lastauth')).then((s) => s.mtime, () => undefined);
    return {
      address: `${entry.name}@${location.domain}`,
      name: entry.name,
      domain: location.domain,
      passwd: entry.passwd,
      ...(this.#clear && entry.clear !== undefined && { clearPassword: entry.clear }),
      uid: entry.uid,
      gid: entry.gid,
      flags: flagsFromGid(entry.gid),
      gecos: entry.gecos,
      dir: entry.dir,
      home,
      maildir,
      quota: entry.quota,
      ...(quotaLimits && { quotaLimits }),
      usage,
      ...(percent !== undefined && { usagePercent: percent }),
      ...(lastAuth && { lastAuth }),
    };
  }

  async #updateUser(address: string, change: (entry: VpasswdEntry) => VpasswdEntry): Promise<VpasswdEntry> {
    const { location, user } = await this.#userAddress(address);
    return this.#withUsersLock(location, async () => {
      const file = await this.#readUsers(location);
      const entry = file.users.get(user);
      if (!entry) throw refused(`User does not exist: ${user}@${location.domain}`);
      const next = change(entry);
      await this.#writeUsers(
        location,
        file.lines.map((l) => (l.entry === entry ? { raw: formatVpasswdLine(next, this.#clear), entry: next } : l)),
      );
      return next;
    });
  }

  /* ------------------------------------------------------------ aliases (valias) */

  /** valias -i: appends `target` to `.qmail-<alias>` in the domain directory. */
  async addAlias(alias: string, target: string): Promise<void> {
    const { location, user } = await this.#userAddress(alias);
    const line = aliasTarget(target);
    const path = this.#aliasFile(location, user);
    await this.#withUsersLock(location, async () => {
      const lines = await readAliasFile(path);
      if (lines.includes(line)) throw refused(`alias ${user}@${location.domain} -> ${line} already exists.`);
      await atomicWriteFile(path, [...lines, line].join('\n') + '\n', 0o600);
    });
  }

  /** valias -d: removes the alias, or only the given target of it. */
  async deleteAlias(alias: string, target?: string): Promise<void> {
    const { location, user } = await this.#userAddress(alias);
    const path = this.#aliasFile(location, user);
    await this.#withUsersLock(location, async () => {
      const lines = await readAliasFile(path);
      if (lines.length === 0) throw refused(`alias ${user}@${location.domain} does not exist`);
      const kept = target === undefined ? [] : lines.filter((l) => l !== target.trim());
      if (kept.length === lines.length) throw refused(`alias ${user}@${location.domain} -> ${shown(target!)} does not exist`);
      if (kept.length === 0) await unlink(path);
      else await atomicWriteFile(path, kept.join('\n') + '\n', 0o600);
    });
  }

  /** valias -s: every alias of a domain, or one alias when given `alias@domain`. */
  async listAliases(domainOrAddress: string): Promise<VAliasInfo[]> {
    await this.#refresh();
    if (domainOrAddress.includes('@')) {
      const { location, user } = await this.#userAddress(domainOrAddress);
      const targets = await readAliasFile(this.#aliasFile(location, user));
      return targets.length ? [{ alias: `${user}@${location.domain}`, targets }] : [];
    }
    const location = await this.#location(requireDomain(domainOrAddress));
    const names = (await readdir(location.dir)).filter((n) => n.startsWith('.qmail-') && n !== QMAIL_DEFAULT).sort();
    const infos: VAliasInfo[] = [];
    for (const file of names) {
      const targets = await readAliasFile(join(location.dir, file));
      if (targets.length) infos.push({ alias: `${file.slice(7).replace(/:/g, '.')}@${location.domain}`, targets });
    }
    return infos;
  }

  #aliasFile(location: DomainLocation, name: string): string {
    if (name === 'default') throw invalid('"default" names the domain\'s .qmail-default, not an alias');
    return join(location.dir, `.qmail-${dotQmailSuffix(name)}`);
  }

  /* ------------------------------------------------------------ shared */

  async #location(domain: string): Promise<DomainLocation> {
    const location = await this.#store.resolveDomain(domain);
    if (!location) throw refused(`Domain does not exist: ${domain}`);
    return location;
  }

  async #userAddress(address: string): Promise<{ location: DomainLocation; user: string }> {
    await this.#refresh();
    const { user, domain } = requireAddress(address, this.#defaultDomain);
    return { location: await this.#location(domain), user: requireUser(user) };
  }

  #warn(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.#options.warn?.(message);
  }

  /** The vpasswd file read afresh (never the cache): writers must see the latest lines. */
  async #readUsers(location: DomainLocation) {
    const path = this.#store.vpasswdPath(location.domain);
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const parsed = parseVpasswd(text, path);
    for (const w of parsed.warnings) this.#warn(w);
    return parsed;
  }

  async #writeUsers(location: DomainLocation, lines: VpasswdLine[]): Promise<void> {
    const path = this.#store.vpasswdPath(location.domain);
    const mode = await stat(path).then((s) => s.mode & 0o777, () => 0o600);
    await atomicWriteFile(path, lines.length ? lines.map((l) => l.raw).join('\n') + '\n' : '', mode);
    // vpopmail's own tools read vpasswd.cdb and rebuild it only when it is missing.
    await unlink(join(location.dir, 'vpasswd.cdb')).catch(() => undefined);
  }

  async #withUsersLock<T>(location: DomainLocation, fn: () => Promise<T>): Promise<T> {
    const gone = () => refused(`Domain does not exist: ${location.domain}`);
    const present = () => stat(location.dir).then(() => true, () => false);
    try {
      return await withFileLock(join(location.dir, VPASSWD_LOCK), async () => {
        if (!(await present())) throw gone();
        return fn();
      });
    } catch (err) {
      // The domain was deleted while this call waited for its lock.
      if (!(await present())) throw gone();
      throw err;
    }
  }

  #withDomainsLock<T>(fn: () => Promise<T>): Promise<T> {
    return mkdir(this.#store.domainsDir, { recursive: true, mode: 0o750 }).then(() => withFileLock(join(this.#store.domainsDir, DOMAINS_LOCK), fn));
  }
}

/** A valias target: an address, an absolute maildir/mbox path or a `|program` line; one line, no NUL. */
function aliasTarget(target: string): string {
  const line = target.trim();
  if (line === '' || line.length > MAX_ALIAS_TARGET || /[\r\n\0]/.test(line)) throw invalid(`Invalid alias target: ${shown(target)}`);
  if (line.startsWith('|') || line.startsWith('/')) return line;
  const address = line.startsWith('&') ? line.slice(1) : line;
  if (!/^[^\s@#]+@[^\s@]+$/.test(address)) throw invalid(`Invalid alias target: ${shown(target)} (an address, /path/ or |program)`);
  return line;
}

async function readAliasFile(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8'))
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => l.trim() !== '' && !l.startsWith('#'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function isWithin(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir + sep);
}
