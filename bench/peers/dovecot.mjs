// A private Dovecot serving POP3 only, on a loopback port, with its own
// base_dir and state_dir in a temp dir and passwd-file authentication. The
// system's Dovecot configuration is not read (-c points at our file).
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk, startProcess, stopProcess } from '../lib/proc.mjs';
import { freePort, waitForGreeting, HOST } from '../lib/net.mjs';

export const DOVECOT_BIN = '/usr/sbin/dovecot';
const MAIL_UID = 65534;
const MAIL_GID = 65534;

/**
 * `users`: [{ login, password, home }] — each home holds `Maildir/`, which
 * must be readable and writable by uid 65534 (chownForDovecot does that).
 */
export async function startDovecot(dir, { users }) {
  const port = await freePort();
  // Dovecot's auth process (user dovecot) reads the passwd file; mail processes run as uid 65534
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'run'), { recursive: true });
  await mkdir(join(dir, 'state'), { recursive: true });
  const passwd = users.map((u) => `${u.login}:{PLAIN}${u.password}:${MAIL_UID}:${MAIL_GID}::${u.home}::`).join('\n');
  await writeFile(join(dir, 'passwd'), `${passwd}\n`);
  const conf = `
base_dir = ${join(dir, 'run')}
state_dir = ${join(dir, 'state')}
log_path = ${join(dir, 'dovecot.log')}
protocols = pop3
listen = ${HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:~/Maildir
pop3_uidl_format = %f
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${join(dir, 'passwd')}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${join(dir, 'passwd')}
}
service pop3-login {
  inet_listener pop3 {
    address = ${HOST}
    port = ${port}
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
}
`;
  await writeFile(join(dir, 'dovecot.conf'), conf);
  const child = startProcess('dovecot', DOVECOT_BIN, ['-F', '-c', join(dir, 'dovecot.conf')], { log: join(dir, 'dovecot.out') });
  await waitForGreeting(port, '+OK', { child });
  return {
    name: 'dovecot',
    port,
    pid: child.pid,
    child,
    dir,
    async stop() {
      await stopProcess(child, 5000);
    },
  };
}

/** Hands a copied Maildir tree to the account Dovecot serves it as. */
export async function chownTree(path) {
  await runOk('chown', ['-R', `${MAIL_UID}:${MAIL_GID}`, path]);
}
