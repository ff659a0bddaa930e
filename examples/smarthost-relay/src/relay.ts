import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Plugin } from '@quail/core';
import smtpd from '@quail/plugin-smtpd';
import queue from '@quail/plugin-queue';
import vpopmail, { VpopmailAdmin } from '@quail/plugin-vpopmail';
import remote from '@quail/plugin-remote';
import maildir from '@quail/plugin-maildir';

export interface RelaySetup {
  /** This relay's name (control/me). */
  me: string;
  /** `host:port` SMTP listeners, one per line's worth. */
  listen: string;
  /** tcprules address prefixes of the LAN, allowed to relay without logging in (`192.168.1.`, `10.`). */
  lan: string[];
  /** The smarthost every message goes to: `host[:port]` or `[ip]:port`, optionally followed by `user password`. */
  smarthost: string;
  /** Login domain and users allowed to relay from anywhere after SMTP AUTH. */
  loginDomain: string;
  users: Record<string, string>;
}

/**
 * The plugins of the relay: SMTP in, the queue, vpopmail only for the logins
 * (its Authenticator), remote delivery out, and the Maildir store vpopmail needs.
 */
export function relayPlugins(): Plugin[] {
  return [smtpd, queue, vpopmail, remote, maildir];
}

/**
 * Writes a relay's root. tcprules lets the LAN relay (RELAYCLIENT); anyone else
 * must log in. rcpthosts, locals and virtualdomains are empty, so nothing is
 * delivered here and every accepted recipient goes to the `remote` channel,
 * which smtproutes' default entry sends to the smarthost.
 */
export async function prepareRelayRoot(root: string, setup: RelaySetup): Promise<void> {
  const control = join(root, 'control');
  await mkdir(control, { recursive: true });
  const admin = new VpopmailAdmin(root);
  await writeFile(join(control, 'me'), `${setup.me}\n`);
  await admin.addDomain(setup.loginDomain);
  for (const [user, password] of Object.entries(setup.users)) await admin.addUser(`${user}@${setup.loginDomain}`, password);
  // vadddomain listed the login domain for incoming mail; this relay takes none.
  for (const file of ['rcpthosts', 'morercpthosts', 'locals', 'virtualdomains']) await writeFile(join(control, file), '');
  await writeFile(join(control, 'smtpd.listen'), `${setup.listen}\n`);
  await writeFile(join(control, 'tcp.smtp'), [...setup.lan.map((prefix) => `${prefix}:allow,RELAYCLIENT=""`), ':allow', ''].join('\n'));
  await writeFile(join(control, 'smtproutes'), `:${setup.smarthost}\n`);
}
