import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, definePlugin, Tokens, type Authenticator, type Envelope, type Plugin, type QuailServer, type ServiceToken } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import smtpd, { smtpdListeners, spoolQueuePlugin, type ListenerKind } from '@quail/plugin-smtpd';

export interface TestServer {
  server: QuailServer;
  root: string;
  spool: string;
  port(kind?: ListenerKind): number;
  /** Committed messages in the spool: envelope and stored bytes. */
  messages(): Array<{ envelope: Envelope; data: string; raw: Buffer }>;
  /** Files in the spool, committed or not. */
  spoolFiles(): string[];
  stop(): Promise<void>;
}

/** Starts quail with smtpd on 127.0.0.1 (ephemeral port) and a spool queue; `files` are control files. */
export async function startSmtpd(files: Record<string, string> = {}, plugins: Plugin[] = [], options: { queue?: Plugin; services?: Array<[ServiceToken<unknown>, unknown]> } = {}): Promise<TestServer> {
  const { root, cleanup } = await tempRoot({
    me: 'mx.example.org',
    'smtpd.listen': '127.0.0.1:0',
    'smtpd.authfaildelay': '0',
    ...files,
  });
  const spool = join(root, 'spool');
  const server = createServer({ root, plugins: [smtpd, ...plugins, options.queue ?? spoolQueuePlugin({ dir: spool })], log: { level: 'silent' }, ...(options.services && { services: options.services }) });
  await server.start();
  const listFiles = () => {
    try {
      return readdirSync(spool).sort();
    } catch {
      return [];
    }
  };
  return {
    server,
    root,
    spool,
    port(kind = 'smtp') {
      const l = smtpdListeners(server).find((x) => x.kind === kind);
      if (!l) throw new Error(`no ${kind} listener`);
      return l.port;
    },
    messages() {
      return listFiles()
        .filter((f) => f.endsWith('.env'))
        .map((f) => {
          const id = f.slice(0, -4);
          const raw = readFileSync(join(spool, `${id}.msg`));
          return { envelope: JSON.parse(readFileSync(join(spool, f), 'utf8')) as Envelope, data: raw.toString('latin1'), raw };
        });
    },
    spoolFiles: listFiles,
    async stop() {
      for (const c of RawClient.all.splice(0)) c.close();
      if (server.state === 'running') await server.stop();
      await cleanup();
    },
  };
}

/** A plugin providing the Authenticator with a fixed user table. */
export function fixedUsers(users: Record<string, string>): Plugin {
  return definePlugin({
    name: 'test-users',
    provides: [Tokens.Authenticator],
    register(ctx) {
      const authenticator: Authenticator = {
        mechanisms: () => ['PLAIN', 'LOGIN'],
        async authenticate(c) {
          const [name = '', domain = 'example.org'] = c.username.split('@');
          if (users[c.username] !== undefined && users[c.username] === c.password) {
            return { ok: true, user: { address: `${name}@${domain}`, name, domain, home: '/nonexistent', maildir: '/nonexistent/Maildir', flags: {} } };
          }
          return { ok: false, reason: 'bad-credentials' };
        },
      };
      ctx.provide(Tokens.Authenticator, authenticator);
    },
  });
}

/**
 * A raw SMTP client over a socket: sends lines, reads whole replies (multi-line
 * aware), and keeps every received byte for byte-for-byte checks.
 */
export class RawClient {
  /** Every client opened, so that a test's server can stop without waiting for them. */
  static readonly all: RawClient[] = [];
  readonly socket: Socket;
  received = '';
  #pending = '';
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.received += d;
      this.#pending += d;
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ...(localAddress && { localAddress }) }, () => {
        const client = new RawClient(socket);
        RawClient.all.push(client);
        resolve(client);
      });
      socket.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The next complete reply (all its lines, CRLF-joined), or null when the server closed first. */
  async reply(): Promise<string | null> {
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#pending);
      if (m) {
        this.#pending = this.#pending.slice(m[0].length);
        return m[0].slice(0, -2);
      }
      if (this.closed) return null;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends a line (CRLF added) and returns the reply. */
  async command(line: string): Promise<string | null> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.#waiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }
}

let certDir: string | undefined;

/** A self-signed key+certificate PEM for localhost, made once per test run with openssl. */
export function selfSignedPem(): string {
  certDir ??= mkdtempSync(join(tmpdir(), 'quail-cert-'));
  const pem = join(certDir, 'servercert.pem');
  try {
    return readFileSync(pem, 'utf8');
  } catch {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
    const text = readFileSync(join(certDir, 'key.pem'), 'utf8') + readFileSync(join(certDir, 'cert.pem'), 'utf8');
    return text;
  }
}

export function removeCertDir(): void {
  if (certDir) rmSync(certDir, { recursive: true, force: true });
  certDir = undefined;
}
