import { chown, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  deferral,
  deliveryKey,
  ErrorCodes,
  ParsedFiles,
  failure,
  QuailError,
  success,
  type DeliveryResult,
  type DotQmailRequest,
  type DotQmailRunner,
  type Logger,
  type MailStore,
  type Queue,
} from '@quail/core';
import { nobodyAccount, programAccount, type Account } from './accounts.js';
import { parseDotQmail, DotQmailSyntaxError, type DotQmailContents, type Instruction } from './dot-qmail-file.js';
import { programEnvironment } from './environment.js';
import { deliveredToLine, headerHasLine, mboxFromLine, returnPathLine } from './headers.js';
import { safeExt } from './local-part.js';
import { appendToMbox, MboxError } from './mbox.js';
import { runProgram } from './program.js';

export interface RunnerOptions {
  mailStore: () => MailStore;
  queue: () => Queue;
  log: Logger;
  /** The default delivery instructions (control/defaultdelivery). */
  defaultDelivery: () => string;
  /** Longest a program delivery may run. */
  programTimeoutMs: () => number;
  /** The time for mbox `From ` lines. */
  now?: () => number;
  /** The account for programs of root-owned files (default: `nobody` from /etc/passwd). */
  nobody?: Account;
}

/** A run request; `user` is the account name given to programs as USER (default: the home directory's name). */
export interface RunRequest extends DotQmailRequest {
  user?: string;
}

interface Loaded {
  contents: DotQmailContents;
  /** Whose instructions these are: the file's owner, or the home directory's for the default delivery. */
  owner: Account;
  /** Where the instructions came from, for log lines. */
  origin: string;
}

/** Outcome of one instruction: done, stop after it (program exit 99), or the delivery's final result. */
type Step = { next: true; output?: string } | { next: false; output?: string } | DeliveryResult;

/**
 * qmail-local: carries out one dot-qmail file for one recipient (reference 5.2-5.6).
 * File, maildir and program lines run in order; forwards are collected and
 * injected together at the end.
 */
export class DotQmailFileRunner implements DotQmailRunner {
  readonly #options: RunnerOptions;
  #nobody?: Promise<Account>;
  /** Dot-qmail files parsed before, kept while each file is unchanged (never modified: shared between deliveries). */
  readonly #parsed = new ParsedFiles<DotQmailContents>();

  constructor(options: RunnerOptions) {
    this.#options = options;
    if (options.nobody) this.#nobody = Promise.resolve(options.nobody);
  }

  async run(file: string, request: RunRequest): Promise<DeliveryResult> {
    const { delivery } = request;
    const address = `${request.local}@${request.host}`;
    const dtLine = deliveredToLine(address);
    if (await headerHasLine(delivery.message.stream(), dtLine.slice(0, -1))) {
      return failure('This message is looping: it already has my Delivered-To line. (#5.4.6)');
    }
    let loaded: Loaded;
    try {
      const found = await this.#load(file, request);
      if ('kind' in found) return found;
      loaded = found;
    } catch (err) {
      return this.#syntaxFailure(err, file);
    }
    const { contents } = loaded;
    if (contents.forwardOnly) {
      const other = contents.instructions.find((i) => i.kind !== 'forward');
      if (other) return deferral(`Uh-oh: .qmail has ${other.kind === 'program' ? 'prog' : 'file'} delivery but has x bit set. (#4.7.0)`);
    }
    const rpLine = returnPathLine(delivery.sender);
    const ufLine = mboxFromLine(delivery.sender, new Date(this.#options.now?.() ?? Date.now()));
    const newSender = await this.#newSender(request);
    const forwards: string[] = [];
    const counts = { files: 0, programs: 0 };
    const outputs: string[] = [];
    for (const instruction of contents.instructions) {
      if (instruction.kind === 'forward') {
        forwards.push(instruction.address);
        continue;
      }
      const step = await this.#carryOut(instruction, { request, loaded, dtLine, rpLine, ufLine, newSender, file });
      if ('kind' in step) return step;
      if (instruction.kind === 'program') counts.programs += 1;
      else counts.files += 1;
      if (step.output) outputs.push(step.output);
      if (!step.next) break;
    }
    let qp = '';
    if (forwards.length > 0) {
      const sent = await this.#forward(forwards, newSender, dtLine, request);
      if (typeof sent !== 'number') return sent;
      qp = ` qp ${sent}`;
    }
    const text = [`did ${counts.files}+${forwards.length}+${counts.programs}${qp}`, ...outputs].join('/');
    return success(text);
  }

  async #load(file: string, request: RunRequest): Promise<Loaded | DeliveryResult> {
    const statAt = Date.now();
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return deferral(`Unable to open ${file}: ${describe(err)}. (#4.3.0)`);
    }
    if (info && !info.isFile()) return deferral(`Unable to open ${file}: not a regular file. (#4.3.0)`);
    if (info && (info.mode & 0o022) !== 0) return deferral('Uh-oh: .qmail file is writable. (#4.7.0)');
    if (info && info.size > 0) {
      let parsed = this.#parsed.get(file, info);
      if (!parsed) {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (err) {
          return deferral(`Unable to open ${file}: ${describe(err)}. (#4.3.0)`);
        }
        parsed = parseDotQmail(text);
        this.#parsed.set(file, info, statAt, parsed);
      }
      // the user-execute bit works as +list does
      const contents = (info.mode & 0o100) !== 0 ? { ...parsed, forwardOnly: true } : parsed;
      return { contents, owner: { uid: info.uid, gid: info.gid }, origin: file };
    }
    const home = await stat(request.home);
    const owner = request.uid !== undefined ? { uid: request.uid, gid: request.gid ?? home.gid } : { uid: home.uid, gid: home.gid };
    if (request.defaultMaildir) {
      return { contents: { instructions: [{ kind: 'maildir', path: request.defaultMaildir, line: 1 }], forwardOnly: false }, owner, origin: 'default maildir' };
    }
    try {
      return { contents: parseDotQmail(this.#options.defaultDelivery()), owner, origin: 'control/defaultdelivery' };
    } catch (err) {
      return this.#syntaxFailure(err, 'control/defaultdelivery');
    }
  }

  #syntaxFailure(err: unknown, file: string): DeliveryResult {
    if (err instanceof DotQmailSyntaxError) {
      this.#options.log.error({ file, line: err.line }, `${file}:${err.line}: ${err.reason}`);
      return deferral(`Uh-oh: ${basename(file)} line ${err.line}: ${err.reason}. (#4.2.1)`);
    }
    throw err;
  }

  async #carryOut(
    instruction: Exclude<Instruction, { kind: 'forward' }>,
    c: { request: RunRequest; loaded: Loaded; dtLine: string; rpLine: string; ufLine: string; newSender: string; file: string },
  ): Promise<Step> {
    const { request, loaded } = c;
    const { delivery } = request;
    if (instruction.kind === 'program') {
      const account = await this.#programAccount(loaded.owner);
      if ('kind' in account) return account;
      const env = programEnvironment({
        sender: delivery.sender,
        newSender: c.newSender,
        recipient: `${request.local}@${request.host}`,
        user: request.user ?? basename(request.home),
        home: request.home,
        local: request.local,
        host: request.host,
        ext: request.ext,
        ...defaultPart(c.file, request.ext),
        dtLine: c.dtLine,
        rpLine: c.rpLine,
        ufLine: c.ufLine,
      });
      const outcome = await runProgram({
        command: instruction.command,
        cwd: request.home,
        env,
        ...account,
        input: () => delivery.message.stream(),
        timeoutMs: this.#options.programTimeoutMs(),
        signal: delivery.signal,
      });
      if (outcome.kind === 'success') return { next: !outcome.stop, output: outcome.output };
      return outcome.kind === 'failure' ? failure(outcome.output) : deferral(outcome.output);
    }
    const path = resolve(request.home, instruction.path);
    const denied = await ownerMayWrite(path, loaded.owner, instruction.kind === 'mbox');
    if (denied) return deferral(`Unable to open ${instruction.path}: ${denied}. (#4.2.1)`);
    if (instruction.kind === 'maildir') {
      try {
        const stored = await this.#options.mailStore().deliver(path, delivery.message.source, {
          prepend: c.rpLine + c.dtLine,
          key: deliveryKey(delivery, request.recipient.recipient, `line ${instruction.line}`),
          ...(request.quota && { quota: request.quota }),
        });
        await this.#giveToOwner(stored.path, loaded.owner);
        return { next: true };
      } catch (err) {
        const code = (err as QuailError).code;
        if (code === ErrorCodes.QUOTA) return failure(`${(err as Error).message}. (#5.2.2)`);
        if (code === ErrorCodes.PERMANENT || code === ErrorCodes.INVALID) return failure(`${(err as Error).message}. (#5.2.0)`);
        this.#options.log.warn({ err, maildir: path }, `maildir delivery to ${path} failed: ${(err as Error).message}`);
        return deferral('Temporary error on maildir delivery. (#4.3.0)');
      }
    }
    try {
      await appendToMbox(path, {
        fromLine: c.ufLine,
        header: c.rpLine + c.dtLine,
        source: delivery.message.source,
        owner: loaded.owner,
      });
      return { next: true };
    } catch (err) {
      if (err instanceof MboxError) return deferral(err.message);
      throw err;
    }
  }

  /** A file the daemon wrote as root for someone else becomes theirs (it was delivered already: a failure is only logged). */
  async #giveToOwner(path: string, owner: Account): Promise<void> {
    if (process.getuid?.() !== 0 || owner.uid === 0) return;
    try {
      await chown(path, owner.uid, owner.gid);
    } catch (err) {
      this.#options.log.warn({ err, file: path }, `unable to give ${path} to uid ${owner.uid}`);
    }
  }

  async #programAccount(owner: Account): Promise<Partial<Account> | DeliveryResult> {
    this.#nobody ??= nobodyAccount();
    const account = programAccount(owner, await this.#nobody);
    const self = process.getuid?.();
    if (self === 0) return account;
    if (self === account.uid) return {};
    return deferral(`Unable to run a program as uid ${account.uid}: quail is not running as root. (#4.3.0)`);
  }

  /** NEWSENDER: `<local>-owner@<host>` when `.qmail<-ext>-owner` exists; bounces keep their sender. */
  async #newSender(request: RunRequest): Promise<string> {
    const sender = request.delivery.sender;
    if (sender === '' || sender === '#@[]') return sender;
    const ext = request.ext === '' ? '' : `-${safeExt(request.ext)}`;
    try {
      await stat(join(request.home, `.qmail${ext}-owner`));
      return `${request.local}-owner@${request.host}`;
    } catch {
      return sender;
    }
  }

  /** One injection for every forward of the file; the queue's receipt number, or the failure. */
  async #forward(recipients: string[], sender: string, dtLine: string, request: RunRequest): Promise<number | DeliveryResult> {
    const message = request.delivery.message;
    async function* body(): AsyncGenerator<Buffer> {
      yield Buffer.from(dtLine);
      for await (const chunk of message.stream()) yield chunk as Buffer;
    }
    try {
      const receipt = await this.#options.queue().enqueue({ sender, recipients }, Readable.from(body(), { objectMode: false }), { kind: 'forward' });
      return receipt.qp;
    } catch (err) {
      const text = `Unable to forward message: ${(err as Error).message}.`;
      const code = (err as QuailError).code;
      return code === ErrorCodes.PERMANENT || code === ErrorCodes.INVALID ? failure(`${text} (#5.3.0)`) : deferral(`${text} (#4.3.0)`);
    }
  }
}

/** DEFAULT: the part of EXT a `-default` file stood for. */
function defaultPart(file: string, ext: string): { defaultPart?: string } {
  const name = basename(file);
  if (name === '.qmail-default') return { defaultPart: ext };
  const m = /^\.qmail-(.+)-default$/.exec(name);
  if (!m || !safeExt(ext).startsWith(`${m[1]}-`)) return {};
  return { defaultPart: ext.slice(m[1]!.length + 1) };
}

/**
 * File and maildir lines are written by the daemon, so a user's file may only
 * name places that user owns (root's files and a daemon not running as root
 * are limited by the system instead). Returns why not, or undefined.
 */
async function ownerMayWrite(path: string, owner: Account, mayCreate: boolean): Promise<string | undefined> {
  if (owner.uid === 0 || process.getuid?.() !== 0 || owner.uid === process.getuid?.()) return undefined;
  try {
    return (await stat(path)).uid === owner.uid ? undefined : 'access denied';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !mayCreate) return undefined;
  }
  try {
    return (await stat(dirname(path))).uid === owner.uid ? undefined : 'access denied';
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'access denied';
  return code ?? (err instanceof Error ? err.message : String(err));
}
