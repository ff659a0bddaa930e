import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { LogFormat } from '@quail/core';
import { Supervisor } from '../daemon/supervisor.js';
import type { LogStamp } from '../daemon/multilog.js';
import { ask, runningPid, startDetached, waitStopped } from '../daemon/client.js';
import { defaultRoot } from '../root.js';
import { initRoot } from '../init.js';
import { parseListen, type ListenAddress } from '../listeners.js';
import { openVpopmailAdmin } from '../vpopmail-admin.js';
import { randomPassword } from './vpopmail.js';
import { UsageError, out, parse, rootOption, type Command } from './command.js';

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${what} must be one of ${allowed.join(', ')} (got ${value})`);
  return value as T;
}

function whole(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${what} must be a whole number (got ${value})`);
  return Number(value);
}

const startOptions = {
  ...rootOption(),
  'log-format': { type: 'string' as const },
  'log-dir': { type: 'string' as const },
  'log-stamp': { type: 'string' as const },
  'log-size': { type: 'string' as const },
  'log-count': { type: 'string' as const },
  'stop-timeout': { type: 'string' as const },
};

async function runForeground(values: Record<string, string | boolean | undefined>, root: string): Promise<number> {
  if (!existsSync(join(root, 'control'))) throw new UsageError(`${root} has no control/ directory: run quail init ${root} first`);
  const str = (k: string) => values[k] as string | undefined;
  const logDir = str('log-dir');
  const supervisor = new Supervisor({
    root,
    logFormat: oneOf<LogFormat>(str('log-format'), ['pretty', 'json'], '--log-format') ?? 'pretty',
    ...(logDir !== undefined && { logDir: resolve(logDir) }),
    ...(str('log-stamp') !== undefined && { logStamp: oneOf<LogStamp>(str('log-stamp'), ['tai64n', 'iso', 'none'], '--log-stamp')! }),
    ...(str('log-size') !== undefined && { logSize: whole(str('log-size'), '--log-size')! }),
    ...(str('log-count') !== undefined && { logCount: whole(str('log-count'), '--log-count')! }),
    ...(str('stop-timeout') !== undefined && { stopTimeout: whole(str('stop-timeout'), '--stop-timeout')! }),
  });
  return supervisor.run();
}

export const start: Command = {
  name: 'start',
  summary: 'run the server in the foreground (as daemontools and systemd expect)',
  help: `usage: quail start [--root R] [--log-format pretty|json] [--log-dir DIR] [--log-stamp tai64n|iso|none]
                   [--log-size BYTES] [--log-count N] [--stop-timeout SECONDS]

Runs the preset in the foreground: SMTP, submission and POP3 listeners, the queue
scheduler, local and remote delivery. A supervisor process keeps the control
socket (<root>/quail.sock), the pid file (<root>/quail.pid) and the log, and runs
the server in a worker process that it restarts after a back-off (1 s, doubling
up to 30 s while it keeps dying young) when it crashes.

Signals: TERM/INT stop gracefully (listeners close, sessions and deliveries get
--stop-timeout seconds, default 90; everything acknowledged is already on disk),
HUP re-reads the control files (a broken file keeps the old configuration),
ALRM retries every deferred delivery now.

Logs: readable lines on stdout (default), JSON with --log-format json, or a
multilog-style directory with --log-dir: current, rotated @<tai64n>.s files,
--log-size (default 99999) and --log-count (default 10); lines stamped @4000...
(TAI64N, as multilog t writes them), or --log-stamp iso.

As root with control/user naming an account, the worker binds its listeners and
then runs as that account. Without control/user it runs as root, with a warning.

Root: --root, else $QUAIL_ROOT, else /var/quail for root and ./var/quail otherwise.

examples:
  quail start --root /var/quail
  quail start --log-dir /var/log/quail --log-size 1000000 --log-count 20
  QUAIL_ROOT=/srv/mail quail start --log-format json`,
  async run(argv) {
    const { values } = parse(argv, startOptions, { max: 0 });
    return runForeground(values, defaultRoot(values.root));
  },
};

const CTL_COMMANDS = ['start', 'stop', 'restart', 'stat', 'queue', 'doqueue', 'reload', 'pause', 'cont'] as const;

export const ctl: Command = {
  name: 'ctl',
  summary: "qmailctl's jobs against the running daemon (start stop restart stat queue doqueue reload pause cont)",
  help: `usage: quail ctl <start|stop|restart|stat|queue|doqueue|reload|pause|cont> [--root R]

Talks to the daemon through its control socket <root>/quail.sock (mode 0600: only
the daemon's owner may use it).

  start    start the daemon detached (pid file <root>/quail.pid, log in <root>/log/quail)
  stop     stop gracefully: listeners close, work in flight finishes, then exit
  restart  restart the server gracefully; the queue stays on disk, nothing is lost
  stat     the supervisor and worker state (as svstat), then the queue counts (qmail-qstat)
  queue    the queue counts and every queued message (qmail-qstat, qmail-qread)
  doqueue  retry every deferred delivery now (qmail-send's ALRM; also: alrm, flush)
  reload   re-read the control files (HUP); a broken file keeps the old configuration (also: hup)
  pause    stop starting deliveries (in-flight ones finish)
  cont     start deliveries again

examples:
  quail ctl start --root /var/quail
  quail ctl stat
  quail ctl reload && quail ctl doqueue`,
  async run(argv) {
    const { values, positionals } = parse(argv, rootOption(), { min: 1, max: 1 });
    const aliases: Record<string, string> = { alrm: 'doqueue', flush: 'doqueue', hup: 'reload' };
    const cmd = aliases[positionals[0]!] ?? positionals[0]!;
    if (!(CTL_COMMANDS as readonly string[]).includes(cmd)) throw new UsageError(`unknown ctl command ${positionals[0]} (one of ${CTL_COMMANDS.join(', ')})`);
    const root = defaultRoot(values.root);
    if (cmd === 'start') {
      const pid = await runningPid(root);
      if (pid) {
        out(`quail: already running (pid ${pid})`);
        return 0;
      }
      out(`quail: started (pid ${await startDetached(root)})`);
      return 0;
    }
    const answer = await ask(root, { cmd });
    if (!answer) {
      process.stderr.write(`quail ctl ${cmd}: no daemon is running in ${root}\n`);
      return cmd === 'stop' ? 0 : 1;
    }
    if (!answer.ok) {
      process.stderr.write(`quail ctl ${cmd}: ${answer.error ?? 'failed'}\n`);
      return answer.exitCode ?? 111;
    }
    out(answer.text ?? '');
    if (cmd === 'stop' && !(await waitStopped(root, 120_000))) {
      process.stderr.write('quail ctl stop: the daemon is still running after 120 s\n');
      return 111;
    }
    if (cmd === 'stop') out('quail: stopped');
    return 0;
  },
};

export const DEMO = {
  domain: 'example.test',
  user: 'demo@example.test',
  smtp: { host: '127.0.0.1', port: 2525 },
  submission: { host: '127.0.0.1', port: 2587 },
  pop3: { host: '127.0.0.1', port: 2110 },
};

export const demo: Command = {
  name: 'demo',
  summary: 'the quick start: a ready root with example.test and a demo user, served in the foreground',
  help: `usage: quail demo [--root R] [--no-start] [--smtp host:port] [--submission host:port] [--pop3 host:port]

Creates (or reuses) a root — ./var/quail unless --root or $QUAIL_ROOT — with the
virtual domain example.test and the user demo@example.test, whose password it
prints, with listeners on 127.0.0.1: SMTP 2525, submission 2587, POP3 2110.
Then it starts the server in the foreground (Ctrl-C stops it) and prints how to
send a message with swaks or Python and read it over POP3. --no-start only
prepares the root. --smtp, --submission and --pop3 pick other addresses when a
fresh root is made (an existing root keeps its listener files).

examples:
  quail demo
  quail demo --root /tmp/quail-demo`,
  async run(argv) {
    const { values } = parse(
      argv,
      { root: { type: 'string' }, 'no-start': { type: 'boolean' }, smtp: { type: 'string' }, submission: { type: 'string' }, pop3: { type: 'string' } },
      { max: 0 },
    );
    const root = values.root ? resolve(values.root) : process.env.QUAIL_ROOT ? resolve(process.env.QUAIL_ROOT) : resolve('var/quail');
    const listen: DemoListeners = {
      smtp: values.smtp ? parseListen(values.smtp, '--smtp') : DEMO.smtp,
      submission: values.submission ? parseListen(values.submission, '--submission') : DEMO.submission,
      pop3: values.pop3 ? parseListen(values.pop3, '--pop3') : DEMO.pop3,
    };
    const report = await initRoot({ root, me: 'mail.example.test', domain: DEMO.domain, ...listen });
    const admin = openVpopmailAdmin(root);
    const password = await demoPassword(admin);
    out(demoText(root, password, report.created.length > 0, await configuredListeners(root, listen)));
    if (values['no-start']) return 0;
    if (await runningPid(root)) {
      const answer = await ask(root, { cmd: 'reload' });
      out(`quail: a daemon already serves ${root}; ${answer?.ok ? 'it re-read its control files' : 'reload failed'}`);
      return 0;
    }
    return runForeground({}, root);
  },
};

interface DemoListeners {
  smtp: ListenAddress;
  submission: ListenAddress;
  pop3: ListenAddress;
}

/** The first address of each listener file, as the root has them (an existing root keeps its own). */
async function configuredListeners(root: string, fallback: DemoListeners): Promise<DemoListeners> {
  const first = async (file: string, d: ListenAddress) => {
    const text = await readFile(join(root, 'control', file), 'utf8').catch(() => '');
    const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
    return line ? parseListen(line, `control/${file}`) : d;
  };
  return {
    smtp: await first('smtpd.listen', fallback.smtp),
    submission: await first('submission.listen', fallback.submission),
    pop3: await first('pop3d.listen', fallback.pop3),
  };
}

/**
 * The demo user's password: the one it has when the install kept it in clear
 * (a second `quail demo` keeps what the first printed), else a new one.
 */
async function demoPassword(admin: ReturnType<typeof openVpopmailAdmin>): Promise<string> {
  const info = await Promise.resolve(admin.userInfo(DEMO.user)).catch(() => undefined);
  if (info?.clearPassword) return info.clearPassword;
  const password = randomPassword();
  if (info) await admin.setPassword(DEMO.user, password);
  else await admin.addUser(DEMO.user, password, { gecos: 'Demo User' });
  return password;
}

export function demoText(root: string, password: string, created: boolean, listen: DemoListeners): string {
  const { user } = DEMO;
  const { smtp, submission, pop3 } = listen;
  return `quail demo: ${created ? 'created' : 'reusing'} ${root}
  domain    ${DEMO.domain}
  user      ${user}
  password  ${password}
  SMTP      ${smtp.host}:${smtp.port}   submission ${submission.host}:${submission.port} (STARTTLS, AUTH)   POP3 ${pop3.host}:${pop3.port} (STLS)

Send a message with swaks:
  swaks --server ${smtp.host}:${smtp.port} --from you@example.org --to ${user} --header 'Subject: hello' --body 'hello from swaks'

or with Python:
  python3 -c "import smtplib; s = smtplib.SMTP('${smtp.host}', ${smtp.port}); s.sendmail('you@example.org', ['${user}'], 'Subject: hello\\r\\n\\r\\nhello from python\\r\\n'); s.quit()"

Read it over POP3 with Python:
  python3 -c "import poplib; p = poplib.POP3('${pop3.host}', ${pop3.port}); p.user('${user}'); p.pass_('${password}'); n = len(p.list()[1]); print(b'\\n'.join(p.retr(n)[1]).decode() if n else 'no mail yet'); p.quit()"

Submit as the user (AUTH after STARTTLS on the submission port):
  swaks --server ${submission.host}:${submission.port} --tls --auth PLAIN --auth-user ${user} --auth-password '${password}' --from ${user} --to ${user}

The mailbox itself: ${join(root, 'domains', DEMO.domain, 'demo', 'Maildir')}
Stop with Ctrl-C; start again later with: quail start --root ${root}
`;
}
