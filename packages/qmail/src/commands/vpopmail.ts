import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { ask } from '../daemon/client.js';
import { configuredAccount } from '../daemon/privileges.js';
import { chownTree } from '../ownership.js';
import { defaultRoot } from '../root.js';
import type { VpopmailAdmin } from '@quail/plugin-vpopmail';
import { formatDomainInfo, formatUserInfo, openVpopmailAdmin } from '../vpopmail-admin.js';
import { UsageError, out, parse, rootOption, type Command } from './command.js';

/** vpopmail's programs HUP qmail-send when they change what it reads; these ask the running daemon to reload. */
async function signalReload(root: string): Promise<void> {
  const answer = await ask(root, { cmd: 'reload' }).catch(() => undefined);
  if (answer && !answer.ok) process.stderr.write(`warning: the running daemon did not reload: ${answer.error}\n`);
}

/** As root with control/user, the files a command made belong to the daemon's account (it delivers into them). */
async function handOver(root: string): Promise<void> {
  const account = process.getuid?.() === 0 ? configuredAccount(root) : undefined;
  if (account) await chownTree(join(root, 'domains'), account.uid, account.gid);
}

export function randomPassword(length = 12): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  let pw = '';
  for (let i = 0; i < length; i++) pw += alphabet[randomInt(alphabet.length)];
  return pw;
}

type Run = (admin: VpopmailAdmin, root: string, values: Record<string, string | boolean | undefined>, args: string[]) => Promise<void>;

function vcommand(
  name: string,
  summary: string,
  help: string,
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>,
  positionals: { min: number; max: number },
  reload: boolean,
  run: Run,
): Command {
  return {
    name,
    summary,
    help,
    async run(argv) {
      const { values, positionals: args } = parse(argv, { ...rootOption(), ...options }, positionals);
      const root = defaultRoot(values.root as string | undefined);
      if (!existsSync(join(root, 'control'))) throw new UsageError(`${root} has no control/ directory: run quail init ${root} first`);
      await run(openVpopmailAdmin(root), root, values as Record<string, string | boolean | undefined>, args);
      if (reload) {
        await handOver(root);
        await signalReload(root);
      }
      return 0;
    },
  };
}

const rootLine = 'All v* commands take --root R (else $QUAIL_ROOT, else /var/quail or ./var/quail) and ask a running daemon to reload after a change.';

export const vadddomain = vcommand(
  'vadddomain',
  'add a virtual domain (rcpthosts, virtualdomains, postmaster account)',
  `usage: quail vadddomain [-r] <domain> [postmaster-password]

Creates domains/<domain>/ with its vpasswd and .qmail-default (bounce-no-mailbox),
adds the domain to control/rcpthosts and control/virtualdomains, and creates the
postmaster account. Without a password (or with -r) a random one is made and printed.
${rootLine}

examples:
  quail vadddomain example.com 'Secret-1'
  quail vadddomain -r example.net`,
  { random: { type: 'boolean', short: 'r' } },
  { min: 1, max: 2 },
  true,
  async (admin, _root, values, [domain, password]) => {
    const made = await admin.addDomain(domain!, values.random ? undefined : password);
    if (values.random || password === undefined) out(`Random password: ${made.postmasterPassword}`);
  },
);

export const vdeldomain = vcommand(
  'vdeldomain',
  'delete a virtual domain, its accounts and mailboxes',
  `usage: quail vdeldomain [-f] <domain>

Removes the domain's rcpthosts and virtualdomains entries and its directory tree.
A domain that still has alias domains is refused unless -f is given (then the
aliases go too).
${rootLine}

examples:
  quail vdeldomain example.net
  quail vdeldomain -f example.com`,
  { force: { type: 'boolean', short: 'f' } },
  { min: 1, max: 1 },
  true,
  async (admin, _root, values, [domain]) => {
    await admin.deleteDomain(domain!, { force: values.force === true });
  },
);

export const vaddaliasdomain = vcommand(
  'vaddaliasdomain',
  'make a domain an alias of an existing one',
  `usage: quail vaddaliasdomain <real-domain> <alias-domain>

Mail to user@<alias-domain> is delivered as user@<real-domain>. Either order is
accepted: the domain that exists is the real one (as vpopmail does).
${rootLine}

examples:
  quail vaddaliasdomain example.com example.org`,
  {},
  { min: 2, max: 2 },
  true,
  async (admin, root, _v, [a, b]) => {
    const exists = (d: string) => existsSync(join(root, 'domains', d.toLowerCase()));
    const [real, alias] = exists(a!) || !exists(b!) ? [a!, b!] : [b!, a!];
    await admin.addAliasDomain(alias, real);
  },
);

export const vadduser = vcommand(
  'vadduser',
  'add an account to a virtual domain',
  `usage: quail vadduser [-r] [-q quota] [-c comment] <user@domain> [password]

Adds the account to domains/<domain>/vpasswd (SHA-512 crypt, clear text kept as
the preset's vpopmail does) and creates its Maildir. -r makes a random password
and prints it. -q sets a quota (NOQUOTA, 10M, 500K, 5000000S,1000C).
${rootLine}

examples:
  quail vadduser joe@example.com 'Secret-1'
  quail vadduser -r -q 50M -c 'Joe Bloggs' joe@example.com`,
  { random: { type: 'boolean', short: 'r' }, quota: { type: 'string', short: 'q' }, comment: { type: 'string', short: 'c' } },
  { min: 1, max: 2 },
  true,
  async (admin, _root, values, [address, password]) => {
    if (!values.random && password === undefined) throw new UsageError('give a password, or -r for a random one');
    const made = await admin.addUser(address!, values.random ? undefined : password, {
      ...(typeof values.comment === 'string' && { gecos: values.comment }),
      ...(typeof values.quota === 'string' && { quota: values.quota }),
    });
    if (values.random) out(`Random password: ${made.password}`);
  },
);

export const vdeluser = vcommand(
  'vdeluser',
  'delete an account and its mailbox',
  `usage: quail vdeluser <user@domain>
${rootLine}

examples:
  quail vdeluser joe@example.com`,
  {},
  { min: 1, max: 1 },
  true,
  async (admin, _root, _v, [address]) => {
    await admin.deleteUser(address!);
  },
);

export const vpasswd = vcommand(
  'vpasswd',
  "change an account's password",
  `usage: quail vpasswd [-r] <user@domain> [password]

Sets a new password (-r: a random one, printed).
${rootLine}

examples:
  quail vpasswd joe@example.com 'New-Secret-2'
  quail vpasswd -r joe@example.com`,
  { random: { type: 'boolean', short: 'r' } },
  { min: 1, max: 2 },
  true,
  async (admin, _root, values, [address, password]) => {
    if (!values.random && password === undefined) throw new UsageError('give a password, or -r for a random one');
    const pw = values.random ? randomPassword() : password!;
    await admin.setPassword(address!, pw);
    if (values.random) out(`Random password: ${pw}`);
  },
);

export const vuserinfo = vcommand(
  'vuserinfo',
  'show an account (or with -D every account of a domain)',
  `usage: quail vuserinfo <user@domain>
       quail vuserinfo -D <domain>

Prints name, password hash, clear password (kept by the preset), gecos, uid,
gid, flags, directory, quota and usage. -D lists every account of the domain.
${rootLine}

examples:
  quail vuserinfo joe@example.com
  quail vuserinfo -D example.com`,
  { domain: { type: 'string', short: 'D' } },
  { min: 0, max: 1 },
  false,
  async (admin, _root, values, [address]) => {
    if (typeof values.domain === 'string') {
      if (address !== undefined) throw new UsageError('give either -D domain or one address');
      const users = await admin.listUsers(values.domain);
      out(users.map((u) => formatUserInfo(u)).join('\n'));
      return;
    }
    if (address === undefined) throw new UsageError('missing user@domain (or -D domain)');
    out(formatUserInfo(await admin.userInfo(address)));
  },
);

const FLAG_OPTIONS: Record<string, { short: string; flag: string }> = {
  'no-password-change': { short: 'd', flag: 'noPassword' },
  'no-pop': { short: 'p', flag: 'noPop' },
  'no-webmail': { short: 'w', flag: 'noWebmail' },
  'no-imap': { short: 'i', flag: 'noImap' },
  'bounce-mail': { short: 'b', flag: 'bounceMail' },
  'no-relay': { short: 'r', flag: 'noRelay' },
  'no-dialup': { short: 'u', flag: 'noDialup' },
  'no-smtp': { short: 's', flag: 'noSmtp' },
};

export const vmoduser = vcommand(
  'vmoduser',
  "change an account's flags, comment or quota",
  `usage: quail vmoduser [-x] [-d] [-p] [-w] [-i] [-b] [-r] [-u] [-s] [-c comment] [-q quota] <user@domain>

Sets vpopmail's flag bits (OR-ed into the gid field): -d no password change,
-p no POP, -w no webmail, -i no IMAP, -b bounce all mail, -r no relay, -u no
dial-up, -s no SMTP AUTH. -x clears every flag first. -c sets the comment
(gecos), -q the quota.
${rootLine}

examples:
  quail vmoduser -p joe@example.com
  quail vmoduser -x joe@example.com
  quail vmoduser -c 'Joe Bloggs' -q 100M joe@example.com`,
  {
    clear: { type: 'boolean', short: 'x' },
    comment: { type: 'string', short: 'c' },
    quota: { type: 'string', short: 'q' },
    ...Object.fromEntries(Object.entries(FLAG_OPTIONS).map(([long, { short }]) => [long, { type: 'boolean' as const, short }])),
  },
  { min: 1, max: 1 },
  true,
  async (admin, _root, values, [address]) => {
    const flags: Record<string, boolean> = {};
    if (values.clear) for (const { flag } of Object.values(FLAG_OPTIONS)) flags[flag] = false;
    for (const [long, { flag }] of Object.entries(FLAG_OPTIONS)) if (values[long]) flags[flag] = true;
    const change = {
      ...(Object.keys(flags).length > 0 && { flags }),
      ...(typeof values.comment === 'string' && { gecos: values.comment }),
    };
    if (Object.keys(change).length === 0 && typeof values.quota !== 'string') throw new UsageError('nothing to change (see --help)');
    if (Object.keys(change).length > 0) await admin.modifyUser(address!, change);
    if (typeof values.quota === 'string') await admin.setQuota(address!, values.quota);
  },
);

export const vsetuserquota = vcommand(
  'vsetuserquota',
  "set an account's quota",
  `usage: quail vsetuserquota <user@domain> <quota|NOQUOTA>

Quota forms: NOQUOTA, 10M or 10MB (bytes, stored as 10485760S), 500K,
1000000 (bytes), 5000000S,1000C (bytes and message count).
${rootLine}

examples:
  quail vsetuserquota joe@example.com 50M
  quail vsetuserquota joe@example.com NOQUOTA`,
  {},
  { min: 2, max: 2 },
  true,
  async (admin, _root, _v, [address, quota]) => {
    await admin.setQuota(address!, quota!);
  },
);

export const valias = vcommand(
  'valias',
  'add, delete and list forwards (aliases) of a domain',
  `usage: quail valias -s <user@domain|domain>      list aliases (alias -> target)
       quail valias -i <target> <alias@domain>   add a target to an alias
       quail valias -d <alias@domain> [target]   delete an alias (or one of its targets)

Aliases live in the domain directory as .qmail-<alias> files, one target per line.
${rootLine}

examples:
  quail valias -i fred@example.net info@example.com
  quail valias -s example.com
  quail valias -d info@example.com`,
  { show: { type: 'boolean', short: 's' }, insert: { type: 'string', short: 'i' }, delete: { type: 'boolean', short: 'd' } },
  { min: 1, max: 2 },
  true,
  async (admin, _root, values, [first, second]) => {
    const modes = [values.show, values.insert !== undefined, values.delete].filter(Boolean).length;
    if (modes !== 1) throw new UsageError('give exactly one of -s, -i target, -d');
    if (values.show) {
      if (second !== undefined) throw new UsageError(`unexpected argument: ${second}`);
      const listed = await admin.listAliases(first!);
      out(formatAliases(listed));
    } else if (typeof values.insert === 'string') {
      if (second !== undefined) throw new UsageError(`unexpected argument: ${second}`);
      await admin.addAlias(first!, values.insert);
    } else {
      await admin.deleteAlias(first!, second);
    }
  },
);

function formatAliases(listed: unknown): string {
  if (typeof listed === 'string') return listed;
  if (Array.isArray(listed)) {
    return listed
      .map((a) => {
        if (typeof a === 'string') return a;
        const r = a as { alias?: string; address?: string; target?: string; targets?: string[] };
        const name = r.alias ?? r.address ?? '';
        const targets = r.targets ?? (r.target !== undefined ? [r.target] : []);
        return targets.map((t) => `${name} -> ${t}`).join('\n');
      })
      .filter((l) => l !== '')
      .join('\n');
  }
  return JSON.stringify(listed, null, 2);
}

export const vdominfo = vcommand(
  'vdominfo',
  'show one virtual domain, or all of them',
  `usage: quail vdominfo [domain]

Prints domain (and the real domain of an alias), uid, gid, directory and the
number of users.
${rootLine}

examples:
  quail vdominfo
  quail vdominfo example.com`,
  {},
  { min: 0, max: 1 },
  false,
  async (admin, _root, _v, [domain]) => {
    const infos = await admin.domainInfo(domain);
    out(infos.map((i) => formatDomainInfo(i)).join('\n'));
  },
);

export const vpopmailCommands = [vadddomain, vdeldomain, vaddaliasdomain, vadduser, vdeluser, vpasswd, vuserinfo, vmoduser, vsetuserquota, valias, vdominfo];
