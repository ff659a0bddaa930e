import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import {
  createServer,
  serviceToken,
  Tokens,
  type Clock,
  type LoggerOptions,
  type Plugin,
  type QuailServer,
  type ServiceToken,
} from '@quail/core';
import smtpd, { smtpdListeners } from '@quail/plugin-smtpd';
import queue from '@quail/plugin-queue';
import maildir from '@quail/plugin-maildir';
import local from '@quail/plugin-local';
import { readMaildir, type DeliveredMessage } from './maildir-reader.js';
import { SmtpDialog, type DialogOptions } from './smtp-dialog.js';

/** The plugins a test server runs when none are given: SMTP in, queue, local delivery to Maildirs. */
export function defaultPlugins(): Plugin[] {
  return [smtpd, queue, local, maildir];
}

/** The host name test servers call themselves (control/me) unless told otherwise. */
export const TEST_HOST = 'quail.test';

export interface TestServerOptions {
  /** Plugins in tap order; default `defaultPlugins()` (smtpd, queue, local, maildir). */
  plugins?: Plugin[];
  /**
   * Control files, merged over the kit's defaults (`me`, `smtpd.listen` and
   * `pop3d.listen` on 127.0.0.1 port 0). A `null` value removes a default.
   */
  control?: Record<string, string | null>;
  /** Other files to write, relative to the root (`users/assign`, `alias/.qmail-postmaster`, ...). */
  files?: Record<string, string>;
  /** Local users (users/assign) to create, each with `<root>/home/<name>/Maildir/`. */
  users?: string[];
  /** Services registered before the plugins (replace core's Clock, Resolver ...). */
  services?: Array<[ServiceToken<unknown>, unknown]>;
  /** Shortcut for `services: [[Tokens.Clock, clock]]` (a ManualClock for schedules). */
  clock?: Clock;
  /** Logging; default silent, or the level in `QUAIL_TEST_LOG` (e.g. `debug`). */
  log?: LoggerOptions;
  /** Keep the temp root after stop (for looking at it after a failure). */
  keepRoot?: boolean;
  /** Runs after the files are written and before the server starts (for example to add vpopmail domains). */
  prepare?: (root: string) => Promise<void>;
}

/** Options for one message sent with nodemailer. */
export type SendOptions = nodemailer.SendMailOptions & {
  /** SMTP AUTH credentials. */
  auth?: { user: string; pass: string };
  /** Source address, any 127.x.y.z on Linux loopback. */
  localAddress?: string;
  /** Port to send to; default the first SMTP listener. */
  port?: number;
  /** Name given in EHLO. */
  helo?: string;
};

/** plugin-pop3's listener list, reached through its token (the kit does not import plugin-pop3). */
const PopListeners: ServiceToken<{ bound(): Array<{ protocol: string; port: number }> }> = serviceToken('Pop3Listeners');

/** A quail server running in a temp root for one test. */
export class TestServer {
  readonly root: string;
  readonly server: QuailServer;
  readonly me: string;
  readonly #keepRoot: boolean;
  readonly #users = new Set<string>();

  private constructor(root: string, server: QuailServer, me: string, keepRoot: boolean) {
    this.root = root;
    this.server = server;
    this.me = me;
    this.#keepRoot = keepRoot;
  }

  /** Writes the root, starts the server, and returns once its listeners are open. */
  static async start(options: TestServerOptions = {}): Promise<TestServer> {
    const root = await mkdtemp(join(tmpdir(), 'quail-test-'));
    // Programs in dot-qmail files run as unprivileged accounts that must reach their homes.
    await chmod(root, 0o755);
    const control: Record<string, string | null> = {
      me: TEST_HOST,
      'smtpd.listen': '127.0.0.1:0',
      'pop3d.listen': '127.0.0.1:0',
      ...options.control,
    };
    for (const [name, content] of Object.entries(control)) {
      if (content !== null) await writeUnder(root, `control/${name}`, ensureNewline(content));
    }
    for (const [path, content] of Object.entries(options.files ?? {})) await writeUnder(root, path, content);
    const services: Array<[ServiceToken<unknown>, unknown]> = [...(options.services ?? [])];
    if (options.clock) services.push([Tokens.Clock, options.clock]);
    const server = createServer({
      root,
      plugins: options.plugins ?? defaultPlugins(),
      services,
      log: options.log ?? { level: (process.env.QUAIL_TEST_LOG as LoggerOptions['level']) ?? 'silent' },
    });
    const kit = new TestServer(root, server, control.me ?? TEST_HOST, options.keepRoot ?? false);
    try {
      for (const user of options.users ?? []) await kit.addUser(user);
      await options.prepare?.(root);
      await server.start();
    } catch (err) {
      if (!kit.#keepRoot) await rm(root, { recursive: true, force: true });
      throw err;
    }
    return kit;
  }

  /** Port of the first SMTP listener (plugin-smtpd's `smtpd.listen`). */
  get smtpPort(): number {
    return this.#port(smtpdListeners(this.server), 'smtp', 'smtpd.listen');
  }

  /** Port of the first submission listener (`submission.listen`). */
  get submissionPort(): number {
    return this.#port(smtpdListeners(this.server), 'submission', 'submission.listen');
  }

  /** Port of the first POP3 listener (plugin-pop3's `pop3d.listen`). */
  get pop3Port(): number {
    const listeners = this.server.container.isRegistered(PopListeners, true) ? this.server.resolve(PopListeners).bound() : [];
    return this.#port(listeners.map((l) => ({ kind: l.protocol, port: l.port })), 'pop3', 'pop3d.listen');
  }

  #port(listeners: Array<{ kind: string; port: number }>, kind: string, file: string): number {
    const found = listeners.find((l) => l.kind === kind);
    if (!found) throw new Error(`no ${kind} listener is open: is its plugin loaded and control/${file} set?`);
    return found.port;
  }

  /** A nodemailer transport to this server (no TLS unless asked, no pooling). */
  transport(options: Omit<SendOptions, keyof nodemailer.SendMailOptions> = {}): nodemailer.Transporter<SMTPTransport.SentMessageInfo> {
    return nodemailer.createTransport({
      host: '127.0.0.1',
      port: options.port ?? this.smtpPort,
      secure: false,
      ignoreTLS: options.auth === undefined,
      tls: { rejectUnauthorized: false },
      ...(options.auth && { auth: options.auth }),
      ...(options.localAddress && { localAddress: options.localAddress }),
      ...(options.helo && { name: options.helo }),
    });
  }

  /**
   * Sends one message with nodemailer and resolves with its result. A refusal
   * rejects with nodemailer's error, which carries `responseCode` and `response`.
   */
  async send(message: SendOptions): Promise<SMTPTransport.SentMessageInfo> {
    const { auth, localAddress, port, helo, ...mail } = message;
    const transport = this.transport({ ...(auth && { auth }), ...(localAddress && { localAddress }), ...(port && { port }), ...(helo && { helo }) });
    try {
      return await transport.sendMail({ subject: 'test', text: 'hello\n', ...mail });
    } finally {
      transport.close();
    }
  }

  /** A line-level SMTP session, for checking exact replies. */
  dialog(options: DialogOptions & { port?: number } = {}): Promise<SmtpDialog> {
    return SmtpDialog.open(options.port ?? this.smtpPort, options);
  }

  /**
   * Adds a local user in users/assign with a home `<root>/home/<name>` and an
   * empty Maildir, which receives `name@<me>` and (through the home's
   * `.qmail-default`) every `name-ext@<me>`; returns the Maildir's path.
   */
  async addUser(name: string): Promise<string> {
    if (!/^[a-z0-9][a-z0-9._]*$/.test(name)) throw new Error(`addUser: ${JSON.stringify(name)} is not a plain lower-case user name`);
    const home = join(this.root, 'home', name);
    await mkdir(home, { recursive: true, mode: 0o755 });
    await chmod(home, 0o755);
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(home, 'Maildir', sub), { recursive: true, mode: 0o700 });
    // qmail-local looks for .qmail-<ext> and then .qmail-default for name-ext@ addresses.
    await writeFile(join(home, '.qmail-default'), './Maildir/\n', { mode: 0o644 });
    this.#users.add(name);
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const lines = [...this.#users].flatMap((u) => {
      const h = join(this.root, 'home', u);
      return [`=${u}:${u}:${uid}:${gid}:${h}:::`, `+${u}-:${u}:${uid}:${gid}:${h}:-::`];
    });
    await writeUnder(this.root, 'users/assign', `${lines.join('\n')}\n.\n`);
    return join(home, 'Maildir');
  }

  /** The Maildir of a local user made by `addUser`/`users`, or a path (absolute or relative to the root). */
  maildir(userOrPath: string): string {
    if (this.#users.has(userOrPath)) return join(this.root, 'home', userOrPath, 'Maildir');
    return isAbsolute(userOrPath) ? userOrPath : join(this.root, userOrPath);
  }

  /** Every message in a user's (or a path's) Maildir now, oldest first. */
  messages(userOrPath: string): Promise<DeliveredMessage[]> {
    return readMaildir(this.maildir(userOrPath), this.server.resolve(Tokens.MessageParser));
  }

  /** Resolves when the queue has nothing running and nothing due (needs a Queue service). */
  async settle(): Promise<void> {
    await this.server.resolve(Tokens.Queue).idle();
  }

  /**
   * Waits until a Maildir holds at least `count` messages and returns them.
   * Fails after `timeoutMs` (default 10 s) with the queue's state in the message.
   */
  async waitForMessages(userOrPath: string, count = 1, timeoutMs = 10_000): Promise<DeliveredMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.messages(userOrPath);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        const queued = [];
        if (this.server.container.isRegistered(Tokens.Queue, true)) {
          for await (const m of this.server.resolve(Tokens.Queue).list()) queued.push(m);
        }
        throw new Error(`${this.maildir(userOrPath)} holds ${found.length} message(s), expected ${count}; queue: ${JSON.stringify(queued)}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Writes a control file and reloads the server; resolves false when the new snapshot was refused. */
  async setControl(name: string, content: string): Promise<boolean> {
    await writeUnder(this.root, `control/${name}`, ensureNewline(content));
    return this.server.reload();
  }

  /** Writes a file under the root. */
  writeFile(path: string, content: string): Promise<void> {
    return writeUnder(this.root, path, content);
  }

  /** Stops the server and removes the temp root. */
  async stop(): Promise<void> {
    if (this.server.state === 'running') await this.server.stop();
    if (!this.#keepRoot) await rm(this.root, { recursive: true, force: true });
  }
}

/** Starts a test server; see `TestServerOptions`. */
export function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  return TestServer.start(options);
}

async function writeUnder(root: string, path: string, content: string): Promise<void> {
  if (isAbsolute(path) || path.split(/[\\/]/).includes('..')) throw new Error(`${path}: files of a test root are named relative to it, without ..`);
  const full = join(root, path);
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, content);
}

function ensureNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}
