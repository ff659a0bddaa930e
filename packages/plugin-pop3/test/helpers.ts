import { execFile } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Writable, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import {
  bufferSource,
  Connection,
  createLogger,
  createServer,
  systemClock,
  type KernelHooks,
  type TlsInfo,
  definePlugin,
  Tokens,
  type AuthMechanism,
  type Authenticator,
  type Clock,
  type Credentials,
  type MailStore,
  type MailUser,
  type Plugin,
  type QuailServer,
  type UserFlags,
  type UserStore,
} from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import maildirPlugin, { MaildirStore, type MaildirMailbox } from '@quail/plugin-maildir';
import pop3Plugin, {
  LoginThrottle,
  MailboxLocks,
  Pop3ListenersToken,
  Pop3Session,
  type Pop3Transport,
  type SessionServices,
  type SessionSettings,
} from '../src/index.js';

export const run = promisify(execFile);

export interface TestUser {
  login: string;
  password: string;
  flags?: UserFlags;
}

/**
 * A fixed user table in the Authenticator role (vpopmail's part), checking
 * USER/PLAIN/LOGIN passwords, APOP digests and CRAM-MD5 digests. Every
 * credential it is asked about is recorded in `asked`.
 */
export class TableAuthenticator implements Authenticator {
  readonly asked: Credentials[] = [];
  readonly users = new Map<string, { password: string; user: MailUser }>();
  offered: AuthMechanism[];
  /** When set, authenticate rejects with this error (a broken user database). */
  failWith?: Error;

  constructor(offered: AuthMechanism[] = ['USER', 'PLAIN', 'LOGIN', 'APOP', 'CRAM-MD5']) {
    this.offered = offered;
  }

  add(login: string, password: string, root: string, flags: UserFlags = {}): MailUser {
    const [name, domain = 'example.com'] = login.split('@') as [string, string?];
    const home = join(root, 'domains', domain, name);
    const user: MailUser = { address: `${name}@${domain}`, name, domain, home, maildir: join(home, 'Maildir'), flags };
    this.users.set(login, { password, user });
    return user;
  }

  mechanisms(): AuthMechanism[] {
    return [...this.offered];
  }

  async authenticate(credentials: Credentials) {
    this.asked.push({ ...credentials });
    if (this.failWith) throw this.failWith;
    const entry = this.users.get(credentials.username);
    if (!entry) return { ok: false as const, reason: 'bad-credentials' as const };
    let good = false;
    switch (credentials.mechanism) {
      case 'APOP':
        good = credentials.response === apopDigest(credentials.challenge ?? '', entry.password);
        break;
      case 'CRAM-MD5':
        good = credentials.response === createHmac('md5', entry.password).update(credentials.challenge ?? '').digest('hex');
        break;
      default:
        good = credentials.password === entry.password;
    }
    return good ? { ok: true as const, user: entry.user } : { ok: false as const, reason: 'bad-credentials' as const };
  }
}

export function apopDigest(timestamp: string, password: string): string {
  return createHash('md5').update(timestamp + password).digest('hex');
}

export function authPlugin(authenticator: TableAuthenticator): Plugin {
  return definePlugin({
    name: 'test-auth',
    provides: [Tokens.Authenticator],
    register(ctx) {
      ctx.provide(Tokens.Authenticator, authenticator);
    },
  });
}

let certificate: Promise<string> | undefined;

/** A self-signed key+certificate PEM made with openssl (once per test file). */
export function testCertificate(dir: string): Promise<string> {
  certificate ??= (async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert]);
    return (await readFile(key, 'utf8')) + (await readFile(cert, 'utf8'));
  })();
  return certificate;
}

export interface Pop3Fixture {
  server: QuailServer;
  root: string;
  store: MailStore;
  auth: TableAuthenticator;
  port: number;
  /** POP3S port, when `tls` was asked for. */
  securePort: number;
  /** Adds a user with an empty Maildir. */
  addUser(login: string, password: string, flags?: UserFlags): Promise<MailUser>;
  /** Delivers a message (LF line ends, as quail stores them). */
  deliver(user: MailUser, text: string | Buffer): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startPop3(
  options: { tls?: boolean; control?: Record<string, string>; clock?: Clock; plugins?: Plugin[]; auth?: TableAuthenticator } = {},
): Promise<Pop3Fixture> {
  const files: Record<string, string> = {
    me: 'pop.example.com',
    'pop3d.listen': '127.0.0.1:0\n',
    'pop3d.faildelay': '0\n',
    ...options.control,
  };
  const { root, cleanup } = await tempRoot(files);
  if (options.tls) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(root, 'control', 'servercert.pem'), await testCertificate(root));
    if (!options.control?.['pop3s.listen']) await writeFile(join(root, 'control', 'pop3s.listen'), '127.0.0.1:0\n');
  }
  const auth = options.auth ?? new TableAuthenticator();
  const server = createServer({
    root,
    plugins: [pop3Plugin, ...(options.plugins ?? []), authPlugin(auth), maildirPlugin],
    log: { level: 'silent' },
    ...(options.clock && { services: [[Tokens.Clock, options.clock]] }),
  });
  try {
    await server.start();
  } catch (err) {
    await cleanup();
    throw err;
  }
  const store = server.resolve(Tokens.MailStore);
  const bound = server.resolve(Pop3ListenersToken).bound();
  return {
    server,
    root,
    store,
    auth,
    port: bound.find((b) => b.protocol === 'pop3')?.port ?? 0,
    securePort: bound.find((b) => b.protocol === 'pop3s')?.port ?? 0,
    async addUser(login, password, flags) {
      const user = auth.add(login, password, root, flags);
      await mkdir(user.home, { recursive: true });
      await store.create(user.maildir);
      return user;
    },
    async deliver(user, text) {
      await store.deliver(user.maildir, bufferSource(Buffer.isBuffer(text) ? text : Buffer.from(text)));
    },
    async cleanup() {
      if (server.state === 'running') await server.stop();
      await cleanup();
    },
  };
}

/**
 * A raw POP3 client over a socket: sends lines exactly as given and reads the
 * server's lines, so tests see the protocol byte for byte.
 */
export class RawClient {
  socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  #closed = false;
  /** Every byte received, for tests that look at exact octets. */
  received: Buffer[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#attach(socket);
  }

  static async connect(port: number, options: { tls?: boolean } = {}): Promise<RawClient> {
    const socket = options.tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : netConnect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  #attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Next line without its CRLF; undefined when the server closed the connection. */
  async line(): Promise<string | undefined> {
    for (;;) {
      const lf = this.#buffer.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.#buffer.subarray(0, lf).toString('utf8');
        this.#buffer = this.#buffer.subarray(lf + 1);
        if (!line.endsWith('\r')) throw new Error(`line without CR from the server: ${JSON.stringify(line)}`);
        return line.slice(0, -1);
      }
      if (this.#closed) return undefined;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Lines of a multi-line body up to the terminating `.`, dot-stuffing removed. */
  async body(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line === undefined) throw new Error('connection closed inside a multi-line response');
      if (line === '.') return lines;
      lines.push(line.startsWith('.') ? line.slice(1) : line);
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends a command line and returns the first response line. */
  async command(line: string): Promise<string | undefined> {
    this.write(`${line}\r\n`);
    return this.line();
  }

  /** STLS's TLS handshake on this connection. */
  async upgrade(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#buffer = Buffer.alloc(0);
    this.#attach(secure);
  }

  /** Resolves when the server has closed the connection. */
  async closedByServer(): Promise<void> {
    while (!this.#closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Logs in with USER/PASS and checks the answers. */
export async function login(client: RawClient, user: string, password: string): Promise<void> {
  const greeting = await client.line();
  if (!greeting?.startsWith('+OK')) throw new Error(`bad greeting ${greeting}`);
  const u = await client.command(`USER ${user}`);
  const p = await client.command(`PASS ${password}`);
  if (u !== '+OK ' || p !== '+OK ') throw new Error(`login failed: ${u} / ${p}`);
}

/** A message of `lines` body lines, some starting with dots. */
export function sampleMessage(subject: string, lines = 3): string {
  const body = Array.from({ length: lines }, (_, i) => (i % 3 === 1 ? `.line ${i} of ${subject}` : `line ${i} of ${subject}`));
  return `From: a@example.org\nTo: b@example.com\nSubject: ${subject}\n\n${body.join('\n')}\n`;
}

/** A transport that keeps everything in memory, for driving a Pop3Session directly. */
export class MemoryTransport implements Pop3Transport {
  secure = false;
  closed = false;
  tlsFails = false;
  #out: Buffer[] = [];

  send(line: string): void {
    if (this.closed) throw new Error(`write after close: ${line}`);
    this.#out.push(Buffer.from(`${line}\r\n`));
  }

  /** Present unless the transport was made `streamOnly` (then the session sends through sendStream). */
  sendWhole?: (response: Buffer) => Promise<void>;

  constructor(options: { streamOnly?: boolean } = {}) {
    if (!options.streamOnly) {
      this.sendWhole = async (response) => {
        if (this.closed) throw new Error(`write after close: ${response.toString('latin1', 0, 20)}`);
        this.#out.push(response);
      };
    }
  }

  async sendStream(source: Readable, ...transforms: Transform[]): Promise<void> {
    const out = this.#out;
    await pipeline([
      source,
      ...transforms,
      new Writable({
        write(chunk: Buffer, _e, callback) {
          out.push(chunk);
          callback();
        },
      }),
    ]);
  }

  async startTls(): Promise<TlsInfo> {
    if (this.tlsFails) throw new Error('handshake failed');
    this.secure = true;
    return { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' };
  }

  close(): void {
    this.closed = true;
  }

  /** Bytes written since the last call. */
  takeBytes(): Buffer {
    const all = Buffer.concat(this.#out);
    this.#out = [];
    return all;
  }

  /** Lines written since the last call. */
  take(): string[] {
    const text = this.takeBytes().toString('utf8');
    return text === '' ? [] : text.replace(/\r\n$/, '').split('\r\n');
  }
}

/** A MaildirStore that keeps the mailboxes it opened, so that a test can wait for their background moves. */
export class RecordingStore extends MaildirStore {
  readonly opened: MaildirMailbox[] = [];

  override async open(maildir: string): Promise<MaildirMailbox> {
    const mailbox = await super.open(maildir);
    this.opened.push(mailbox);
    return mailbox;
  }

  /** Resolves when every mailbox opened so far has moved its new/ mail into cur/. */
  async movesDone(): Promise<void> {
    await Promise.all(this.opened.map((m) => m.finishMoves()));
  }
}

export interface EngineFixture {
  session: Pop3Session;
  transport: MemoryTransport;
  auth: TableAuthenticator;
  store: RecordingStore;
  locks: MailboxLocks;
  throttle: LoginThrottle;
  connection: Connection;
  hooks: KernelHooks;
  root: string;
  /** Sends a line and returns the lines written in answer. */
  say(line: string | Buffer): Promise<string[]>;
  /** A second session on the same services (another connection). */
  another(
    settings?: Partial<SessionSettings>,
    transportOptions?: { streamOnly?: boolean },
  ): { session: Pop3Session; transport: MemoryTransport; say(line: string): Promise<string[]> };
  cleanup(): Promise<void>;
}

/** A Pop3Session over a MemoryTransport, with a real Maildir store and the table authenticator. */
export async function startEngine(
  options: {
    settings?: Partial<SessionSettings>;
    clock?: Clock;
    auth?: TableAuthenticator;
    remoteAddress?: string;
    userStore?: UserStore;
    /** The MailStore the sessions see, made from the fixture's real store (default: that store). */
    mailStore?: (store: RecordingStore) => MailStore;
  } = {},
): Promise<EngineFixture> {
  const { root, cleanup } = await tempRoot();
  const log = createLogger({ level: 'silent' });
  // A server that is never started, for its kernel hooks (the auth hook the session calls).
  const hooks = createServer({ root, plugins: [], logger: log }).hooks;
  const clock = options.clock ?? systemClock;
  const auth = options.auth ?? new TableAuthenticator();
  const store = new RecordingStore({ log });
  const locks = new MailboxLocks();
  const throttle = new LoginThrottle(clock);
  const mailStore = options.mailStore?.(store) ?? store;
  const services: SessionServices = { hooks, authenticator: auth, mailStore, locks, throttle, clock, log, userStore: options.userStore };
  const make = (settings: Partial<SessionSettings> = {}, transportOptions: { streamOnly?: boolean } = {}) => {
    const connection = new Connection({
      protocol: 'pop3',
      remoteAddress: options.remoteAddress ?? '127.0.0.1',
      remotePort: 40000,
      localAddress: '127.0.0.1',
      localPort: 110,
    });
    const transport = new MemoryTransport(transportOptions);
    const session = new Pop3Session(connection, transport, services, {
      hostname: 'pop.example.com',
      tlsAvailable: true,
      plaintextWithoutTls: true,
      failDelayMs: 0,
      maxBadCommands: 10,
      maxAuthFailures: 3,
      ...options.settings,
      ...settings,
    });
    session.greet();
    const say = async (line: string | Buffer) => {
      await session.handle(Buffer.isBuffer(line) ? line : Buffer.from(line));
      return transport.take();
    };
    return { session, transport, connection, say };
  };
  const first = make();
  return {
    ...first,
    auth,
    store,
    locks,
    throttle,
    hooks,
    root,
    another: (settings, transportOptions) => make(settings, transportOptions),
    async cleanup() {
      // Sessions a test left open may still be moving new/ into cur/.
      await store.movesDone();
      await cleanup();
    },
  };
}

/** Adds a user with an empty Maildir to a table authenticator and delivers messages into it. */
export async function mailboxWith(
  fixture: { auth: TableAuthenticator; store: MailStore; root: string },
  login: string,
  password: string,
  messages: Array<string | Buffer>,
): Promise<MailUser> {
  const user = fixture.auth.add(login, password, fixture.root);
  await mkdir(user.home, { recursive: true });
  await fixture.store.create(user.maildir);
  for (const m of messages) await fixture.store.deliver(user.maildir, bufferSource(Buffer.isBuffer(m) ? m : Buffer.from(m)));
  return user;
}
