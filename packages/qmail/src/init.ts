import { mkdir, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { QuailError, ErrorCodes } from '@quail/core';
import { selfSignedPem } from './cert.js';
import { listenerFiles, type ListenAddress } from './listeners.js';
import { chownTree } from './ownership.js';
import { lookupAccount } from './passwd.js';
import { PRESET_PACKAGES } from './preset.js';
import { openVpopmailAdmin } from './vpopmail-admin.js';

export interface InitOptions {
  root: string;
  /** This host's name (control/me); the machine's host name by default. */
  me?: string;
  /** A virtual domain to create (vadddomain). */
  domain?: string;
  smtp?: ListenAddress;
  submission?: ListenAddress;
  pop3?: ListenAddress;
  /** The account the daemon runs as after binding (control/user); the root's files are handed to it. */
  user?: string;
}

export interface InitReport {
  created: string[];
  kept: string[];
  /** Set when --domain created the domain: its postmaster password. */
  postmasterPassword?: string;
}

export const DEFAULT_SMTP: ListenAddress = { host: '0.0.0.0', port: 25 };
export const DEFAULT_SUBMISSION: ListenAddress = { host: '0.0.0.0', port: 587 };
export const DEFAULT_POP3: ListenAddress = { host: '0.0.0.0', port: 110 };

/**
 * Creates a server root with qmail's defaults written out. Idempotent: a file
 * that exists is never touched, so running it again only fills in what is missing.
 */
export async function initRoot(options: InitOptions): Promise<InitReport> {
  const root = options.root;
  const report: InitReport = { created: [], kept: [] };
  const account = options.user ? lookupAccount(options.user) : undefined;
  for (const dir of ['control', 'queue', 'domains', 'alias', 'log', 'users', 'alias/Maildir/tmp', 'alias/Maildir/new', 'alias/Maildir/cur']) {
    await mkdir(join(root, dir), { recursive: true, mode: 0o755 });
  }
  const me = options.me ?? (hostname() || 'localhost');
  const write = async (rel: string, content: string | (() => Promise<string>), mode = 0o644) => {
    const path = join(root, rel);
    if (existsSync(path)) {
      report.kept.push(rel);
      return;
    }
    const text = typeof content === 'string' ? content : await content();
    let fh;
    try {
      fh = await open(path, 'wx', mode);
      await fh.writeFile(text);
      await fh.sync();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        report.kept.push(rel);
        return;
      }
      throw new QuailError(ErrorCodes.TEMPORARY, `cannot write ${path}: ${(err as Error).message}`);
    } finally {
      await fh?.close();
    }
    report.created.push(rel);
  };

  await write('control/me', `${me}\n`);
  await write('control/rcpthosts', `${me}\n`);
  await write('control/locals', `${me}\n`);
  await write('control/defaultdomain', `${options.domain ?? me}\n`);
  await write('control/plugins', `# quail's qmail preset, in tap order (one package or ./path per line)\n${PRESET_PACKAGES.join('\n')}\n`);
  const listeners = listenerFiles({
    smtp: options.smtp ?? DEFAULT_SMTP,
    submission: options.submission ?? DEFAULT_SUBMISSION,
    pop3: options.pop3 ?? DEFAULT_POP3,
  });
  for (const [file, content] of Object.entries(listeners)) await write(`control/${file}`, content);
  await write('control/servercert.pem', () => selfSignedPem(me), 0o600);
  if (options.user) await write('control/user', `${options.user}\n`);
  await write('users/assign', '.\n');
  for (const name of ['postmaster', 'root', 'mailer-daemon']) await write(`alias/.qmail-${name}`, './Maildir/\n', 0o600);

  if (options.domain) {
    const domain = options.domain.toLowerCase();
    if (existsSync(join(root, 'domains', domain))) {
      report.kept.push(`domains/${domain}`);
    } else {
      const admin = openVpopmailAdmin(root);
      const made = await admin.addDomain(domain);
      report.created.push(`domains/${domain}`);
      report.postmasterPassword = made.postmasterPassword;
    }
  }
  if (account) await chownTree(root, account.uid, account.gid);
  return report;
}
