import { userInfo } from 'node:os';
import { ControlDirectory, qmailFiles } from '@quail/core';
import { ask } from '../daemon/client.js';
import { fixMessage, type InjectDefaults, type RecipientSource } from '../inject.js';
import { withOfflineQueue } from '../offline-queue.js';
import { defaultRoot } from '../root.js';
import { formatQread, formatQstat } from '@quail/plugin-queue';
import { UsageError, out, type Command } from './command.js';

interface InjectArgs {
  root?: string;
  sender?: string;
  source: RecipientSource;
  printOnly: boolean;
  recipients: string[];
  name?: string;
  listQueue?: boolean;
}

/**
 * The argument loop both commands share: `--` ends options, `--root DIR`, then
 * the command's own options (`option` returns false for one it does not know),
 * and every other word is a recipient.
 */
function parseArgsInto(argv: string[], args: InjectArgs, option: (a: string, value: (what: string) => string) => boolean): InjectArgs {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.recipients.push(...argv.slice(i + 1));
      break;
    }
    const value = (what: string) => need(argv, ++i, what);
    if (a === '--root') args.root = value('--root');
    else if (a.startsWith('--root=')) args.root = a.slice(7);
    else if (option(a, value)) continue;
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
    else args.recipients.push(a);
  }
  return args;
}

/** qmail-inject's options: -n -N -a -A -h -H -f sender (also -fsender), -- ends options. */
function parseInjectArgs(argv: string[]): InjectArgs {
  const args: InjectArgs = { source: 'args-else-header', printOnly: false, recipients: [] };
  return parseArgsInto(argv, args, (a, value) => {
    if (a.startsWith('-f')) args.sender = a.length > 2 ? a.slice(2) : value('-f');
    else if (/^-[nNaAhH]+$/.test(a)) {
      for (const c of a.slice(1)) {
        if (c === 'n') args.printOnly = true;
        else if (c === 'N') args.printOnly = false;
        else args.source = ({ a: 'args', A: 'args-else-header', h: 'header', H: 'both' } as const)[c as 'a' | 'A' | 'h' | 'H'];
      }
    } else return false;
    return true;
  });
}

/** sendmail's options mapped as qmail's sendmail wrapper does: -t → -H, otherwise -a; -F name; -bp lists the queue. */
function parseSendmailArgs(argv: string[]): InjectArgs {
  const args: InjectArgs = { source: 'args', printOnly: false, recipients: [] };
  return parseArgsInto(argv, args, (a, value) => {
    if (a === '-t') args.source = 'both';
    else if (a.startsWith('-f') || a.startsWith('-r')) args.sender = a.length > 2 ? a.slice(2) : value(a.slice(0, 2));
    else if (a.startsWith('-F')) args.name = a.length > 2 ? a.slice(2) : value('-F');
    else if (a === '-bp') args.listQueue = true;
    else if (a === '-bs') throw new UsageError('-bs (SMTP on stdin) is not supported; use the SMTP listener');
    else if (!(a === '-bm' || a === '-i' || a === '-v' || a === '-x' || a === '-m' || /^-o/.test(a) || /^-[eBp]/.test(a))) return false;
    return true;
  });
}

function need(argv: string[], i: number, what: string): string {
  const v = argv[i];
  if (v === undefined) throw new UsageError(`${what} needs a value`);
  return v;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** qmail-inject's defaults: control files (defaulthost, defaultdomain, plusdomain, idhost) overridden by the environment. */
async function injectDefaults(root: string, name?: string): Promise<InjectDefaults> {
  const dir = new ControlDirectory(root);
  const { defaulthost, defaultdomain, plusdomain, idhost } = qmailFiles;
  dir.declare('inject', { defaulthost, defaultdomain, plusdomain, idhost });
  const snap = await dir.load();
  const env = process.env;
  const get = (f: string) => String(snap.get(f));
  const first = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const defaults: InjectDefaults = {
    user: first('QMAILUSER', 'MAILUSER', 'USER', 'LOGNAME') ?? safeUser(),
    host: first('QMAILHOST', 'MAILHOST') ?? env.QMAILDEFAULTHOST ?? get('defaulthost'),
    defaulthost: env.QMAILDEFAULTHOST ?? get('defaulthost'),
    defaultdomain: env.QMAILDEFAULTDOMAIN ?? get('defaultdomain'),
    plusdomain: env.QMAILPLUSDOMAIN ?? get('plusdomain'),
    idhost: env.QMAILIDHOST ?? get('idhost'),
    now: new Date(),
    pid: process.pid,
    flags: env.QMAILINJECT ?? '',
  };
  const fullName = name ?? first('QMAILNAME', 'MAILNAME', 'NAME');
  if (fullName) defaults.name = fullName;
  if (env.QMAILSUSER || env.QMAILSHOST) {
    defaults.envelopeSender = `${env.QMAILSUSER ?? defaults.user}@${env.QMAILSHOST ?? defaults.host}`;
  }
  return defaults;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid${process.getuid?.() ?? 0}`;
  }
}

async function inject(args: InjectArgs, label: string): Promise<number> {
  const root = defaultRoot(args.root);
  if (args.listQueue) {
    const answer = await ask(root, { cmd: 'queue' });
    if (answer?.ok) out(answer.text ?? '');
    else
      out(await withOfflineQueue(root, async (q) => {
        const list = [];
        for await (const m of q.list()) list.push(m);
        return formatQstat(await q.stat()) + list.map((m) => formatQread(m)).join("");
      }));
    return 0;
  }
  const defaults = await injectDefaults(root, args.name);
  const input = await readStdin();
  const fixed = fixMessage({ input, recipients: args.recipients, source: args.source, ...(args.sender !== undefined && { sender: args.sender }) }, defaults);
  if (args.printOnly) {
    process.stdout.write(fixed.message);
    return 0;
  }
  const uid = process.getuid?.() ?? -1;
  const answer = await ask(root, { cmd: 'inject', sender: fixed.sender, recipients: fixed.recipients, uid }, fixed.message);
  if (answer) {
    if (answer.ok) return 0;
    process.stderr.write(`quail ${label}: ${answer.error ?? 'the queue refused the message'}\n`);
    return answer.exitCode ?? 111;
  }
  await withOfflineQueue(root, (q) => q.enqueue({ sender: fixed.sender, recipients: fixed.recipients }, fixed.message, { kind: 'local', uid }));
  return 0;
}

export const injectCommand: Command = {
  name: 'inject',
  summary: 'queue a message from stdin with qmail-inject header fixing',
  help: `usage: quail inject [-nNaAhH] [-f sender] [--root R] [--] [recipient ...]

Reads a message on stdin, fixes its header as qmail-inject does and queues it.
Exit 0 only once the message is durably queued; 100 for a permanent problem
(no recipients, bad address), 111 for a temporary one (queue unavailable).

Header fixing: adds Date: (5 Mar 2024 09:04:01 -0000), Message-ID:
(<yyyymmddhhmmss.pid.qmail@idhost>) and From: (user@defaulthost) when missing;
deletes Bcc:, Return-Path:, Content-Length:; adds "Cc: recipient list not shown: ;"
without To:/Cc:; qualifies addresses (no host: @defaulthost, no dot:
.defaultdomain, trailing +: .plusdomain); Resent- fields switch to resent mode.
Environment as qmail-inject: QMAILUSER/MAILUSER/USER/LOGNAME, QMAILHOST/MAILHOST,
QMAILNAME/MAILNAME/NAME, QMAILSUSER/QMAILSHOST (envelope sender),
QMAILDEFAULTDOMAIN, QMAILDEFAULTHOST, QMAILPLUSDOMAIN, QMAILIDHOST, and
QMAILINJECT letters c (comment-style From), s (ignore Return-Path), f (delete
From), i (delete Message-ID).

  -a  recipients from the arguments only      -h  from the header only
  -A  arguments, else the header (default)    -H  both
  -n  print the fixed message instead of queueing it    -N  queue it (default)
  -f  envelope sender (-f '' for the null sender)

With a running daemon the message goes through its control socket; otherwise
it is written into the queue directory and delivered when the daemon starts.

examples:
  printf 'Subject: hi\\n\\nhello\\n' | quail inject joe@example.com
  quail inject -n -H < message.eml
  quail inject -f bounces@example.com -- list@example.com < message.eml`,
  async run(argv) {
    return inject(parseInjectArgs(argv), 'inject');
  },
};

export const sendmail: Command = {
  name: 'sendmail',
  summary: 'sendmail-compatible injection (-t, -f, -F, -bp) through qmail-inject',
  help: `usage: quail sendmail [-t] [-f sender] [-F name] [-i] [-oi] [--root R] [recipient ...]

The sendmail interface, mapped as qmail's sendmail wrapper does: -t takes the
recipients from To:/Cc:/Bcc: as well as the arguments (qmail-inject -H), otherwise
the arguments only (-a); -f (or -r) sets the envelope sender; -F sets the full
name of a generated From:; -bp lists the queue; -i, -oi, -om, -oe*, -v, -x, -e*,
-m, -B*, -p* are accepted and ignored. Header fixing and exit codes as quail inject.

examples:
  printf 'To: joe@example.com\\nSubject: hi\\n\\nhello\\n' | quail sendmail -t
  quail sendmail -f me@example.com -F 'Me Myself' joe@example.com < body.txt
  quail sendmail -bp`,
  async run(argv) {
    return inject(parseSendmailArgs(argv), 'sendmail');
  },
};
