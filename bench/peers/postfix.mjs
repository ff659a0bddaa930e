// A private Postfix instance: its own config_directory, queue_directory and
// data_directory in a temp dir, one smtpd on a loopback port. The system's
// Postfix (if any) is never touched. Modes:
//   sink      not used here (smtp-sink is its own peer)
//   hold      accept-only: every message goes to the hold queue (fsynced by cleanup, then 250)
//   maildir   end to end: virtual(8) delivers into <dir>/vmail/bench.test/user/Maildir/
import { mkdir, writeFile, chmod, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { startProcess, runOk, stopProcess, run } from '../lib/proc.mjs';
import { freePort, waitForGreeting, HOST } from '../lib/net.mjs';

const SERVICES = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

export const POSTFIX_BIN = '/usr/sbin/postfix';

/** Where the end-to-end mode delivers (relative to the instance dir). */
export const POSTFIX_MAILDIR = 'vmail/bench.test/user/Maildir';

export async function startPostfix(dir, { mode, processLimit = 200 }) {
  const port = await freePort();
  const conf = join(dir, 'conf');
  await mkdir(conf, { recursive: true });
  await mkdir(join(dir, 'queue'), { recursive: true });
  await mkdir(join(dir, 'data'), { recursive: true });
  const restrictions =
    mode === 'hold' ? 'check_client_access static:HOLD, permit_mynetworks, reject' : 'permit_mynetworks, reject';
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${join(dir, 'queue')}`,
    `data_directory = ${join(dir, 'data')}`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    'myhostname = postfix.bench.localhost',
    'mydomain = bench.localhost',
    'mydestination =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'alias_maps =',
    'alias_database =',
    'local_recipient_maps =',
    'biff = no',
    'smtpd_banner = $myhostname ESMTP',
    'smtpd_peername_lookup = no',
    'smtp_host_lookup = native',
    'disable_dns_lookups = yes',
    `default_process_limit = ${processLimit}`,
    'smtpd_client_connection_count_limit = 0',
    'smtpd_client_connection_rate_limit = 0',
    'smtpd_client_message_rate_limit = 0',
    'smtpd_client_recipient_rate_limit = 0',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    `smtpd_recipient_restrictions = ${restrictions}`,
    'message_size_limit = 52428800',
    'virtual_mailbox_limit = 0',
    'maillog_file = /dev/stdout',
    'virtual_mailbox_domains = bench.test',
    `virtual_mailbox_base = ${join(dir, 'vmail')}`,
    'virtual_mailbox_maps = inline:{ user@bench.test=bench.test/user/Maildir/ }',
    'virtual_uid_maps = static:65534',
    'virtual_gid_maps = static:65534',
    'virtual_minimum_uid = 100',
    '',
  ].join('\n');
  await writeFile(join(conf, 'main.cf'), main);
  await writeFile(join(conf, 'master.cf'), `${HOST}:${port} inet n - n - - smtpd\n${SERVICES}`);
  await mkdir(join(dir, 'vmail'), { recursive: true });
  await chown(join(dir, 'vmail'), 65534, 65534);
  await chmod(dir, 0o755);
  const postfixUser = await runOk('id', ['-u', 'postfix']);
  const postfixGroup = await runOk('id', ['-g', 'postfix']);
  await chown(join(dir, 'data'), Number(postfixUser.stdout), Number(postfixGroup.stdout));
  await runOk(POSTFIX_BIN, ['-c', conf, 'check'], { timeoutMs: 60_000 });
  const child = startProcess('postfix', POSTFIX_BIN, ['-c', conf, 'start-fg'], { log: join(dir, 'postfix.out'), logFile: true });
  await waitForGreeting(port, '220', { child });
  return {
    name: 'postfix',
    port,
    pid: child.pid,
    child,
    dir,
    maildir: join(dir, POSTFIX_MAILDIR),
    holdDir: join(dir, 'queue', 'hold'),
    async stop() {
      await run(POSTFIX_BIN, ['-c', conf, 'stop'], { timeoutMs: 20_000 }).catch(() => undefined);
      await stopProcess(child, 5000);
    },
  };
}
