import { resolve } from 'node:path';
import { defaultRoot } from '../root.js';
import { ask } from '../daemon/client.js';
import { initRoot } from '../init.js';
import { parseListen } from '../listeners.js';
import { formatShowctl, loadSnapshot } from '../showctl.js';
import { withOfflineQueue } from '../offline-queue.js';
import { formatQread, formatQstat } from '@quail/plugin-queue';
import { out, parse, rootOption, type Command } from './command.js';

export const init: Command = {
  name: 'init',
  summary: "create a server root with qmail's defaults written out",
  help: `usage: quail init <root> [--domain D] [--smtp host:port] [--submission host:port] [--pop3 host:port]
                  [--user NAME] [--me HOSTNAME]

Creates control/, queue/, domains/, alias/, log/ and users/ under <root> and
writes qmail's defaults out: control/me (--me, else this machine's host name),
rcpthosts, locals, defaultdomain, plugins (the preset's plugins in order), the
listener files (smtpd.listen, submission.listen, pop3d.listen),
a self-signed control/servercert.pem (key and certificate, mode 0600) for
STARTTLS/STLS, users/assign, and the alias user's .qmail-postmaster, .qmail-root
and .qmail-mailer-daemon (delivering to <root>/alias/Maildir/).
--domain also creates that virtual domain (vadddomain) and prints its postmaster
password. --user writes control/user and hands the root's files to that account:
the daemon binds its ports as root, then runs as it.

Idempotent: a file that exists is never changed; running init again only adds
what is missing.

Defaults: SMTP 0.0.0.0:25, submission 0.0.0.0:587, POP3 0.0.0.0:110.

examples:
  quail init /var/quail --domain example.com --user quail
  quail init ./var/quail --smtp 127.0.0.1:2525 --submission 127.0.0.1:2587 --pop3 127.0.0.1:2110`,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        domain: { type: 'string' },
        smtp: { type: 'string' },
        submission: { type: 'string' },
        pop3: { type: 'string' },
        user: { type: 'string' },
        me: { type: 'string' },
      },
      { min: 1, max: 1 },
    );
    const root = resolve(positionals[0]!);
    const report = await initRoot({
      root,
      ...(values.domain !== undefined && { domain: values.domain }),
      ...(values.me !== undefined && { me: values.me }),
      ...(values.user !== undefined && { user: values.user }),
      ...(values.smtp !== undefined && { smtp: parseListen(values.smtp, '--smtp') }),
      ...(values.submission !== undefined && { submission: parseListen(values.submission, '--submission') }),
      ...(values.pop3 !== undefined && { pop3: parseListen(values.pop3, '--pop3') }),
    });
    for (const f of report.created) out(`created ${f}`);
    for (const f of report.kept) out(`kept ${f}`);
    if (report.postmasterPassword) out(`postmaster@${values.domain!.toLowerCase()} password: ${report.postmasterPassword}`);
    out(`quail: ${root} is ready; start the server with: quail start --root ${root}`);
    return 0;
  },
};

export const showctl: Command = {
  name: 'showctl',
  summary: 'every control file with its effective value and whether it is the default (qmail-showctl)',
  help: `usage: quail showctl [--root R]

Reads the control directory as the preset's plugins declare it and prints each
file: its description, "(Default.)" when the file is absent and the default
applies, the plugins that read it, and its effective value. Files nobody reads
are listed as "I have no idea what this file does." A broken file is reported as
control/FILE:LINE: reason, with a non-zero exit.

examples:
  quail showctl
  quail showctl --root /var/quail | grep -A3 '^rcpthosts'`,
  async run(argv) {
    const { values } = parse(argv, rootOption(), { max: 0 });
    const root = defaultRoot(values.root);
    out(formatShowctl(await loadSnapshot(root), root));
    return 0;
  },
};

async function queueReport(root: string, full: boolean): Promise<string> {
  const answer = await ask(root, { cmd: full ? 'queue' : 'qstat' });
  if (answer?.ok) return answer.text ?? '';
  if (answer) throw new Error(answer.error ?? 'the daemon could not list the queue');
  return withOfflineQueue(root, async (queue) => {
    const stat = await queue.stat();
    if (!full) return formatQstat(stat);
    const list = [];
    for await (const m of queue.list()) list.push(m);
    return formatQstat(stat) + list.map((m) => formatQread(m)).join("");
  });
}

export const queue: Command = {
  name: 'queue',
  summary: 'list the queue (qmail-qstat and qmail-qread)',
  help: `usage: quail queue [--root R]

Prints the queue counts, then every queued message as qmail-qread does:
  <date> GMT  #<id>  <bytes>  <sender>
  \\t<channel>\\t<recipient>      ("  done" in front of recipients already finished)
Asks the running daemon, or reads the queue directory when none runs.

examples:
  quail queue
  quail queue --root /var/quail`,
  async run(argv) {
    const { values } = parse(argv, rootOption(), { max: 0 });
    out(await queueReport(defaultRoot(values.root), true));
    return 0;
  },
};

export const qstat: Command = {
  name: 'qstat',
  summary: 'queue counts (qmail-qstat)',
  help: `usage: quail qstat [--root R]

Prints qmail-qstat's two lines:
  messages in queue: <n>
  messages in queue but not yet preprocessed: <m>

examples:
  quail qstat`,
  async run(argv) {
    const { values } = parse(argv, rootOption(), { max: 0 });
    out(await queueReport(defaultRoot(values.root), false));
    return 0;
  },
};
