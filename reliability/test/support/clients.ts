import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { DOMAIN } from './daemon.js';

export interface SendResult {
  /** True only when the server answered 250 after DATA. */
  acknowledged: boolean;
  response: string;
}

export interface SendOptions {
  port: number;
  from: string;
  to: string[];
  token: string;
  body?: string;
  auth?: { user: string; pass: string };
  localAddress?: string;
  timeoutMs?: number;
}

/** One message through nodemailer (a fresh connection, no pooling); the token goes into a header. */
export async function sendMail(o: SendOptions): Promise<SendResult> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: o.port,
    secure: false,
    ignoreTLS: o.auth === undefined,
    tls: { rejectUnauthorized: false },
    name: 'client.example',
    connectionTimeout: o.timeoutMs ?? 15_000,
    greetingTimeout: o.timeoutMs ?? 15_000,
    socketTimeout: o.timeoutMs ?? 15_000,
    ...(o.auth && { auth: o.auth }),
    ...(o.localAddress && { localAddress: o.localAddress }),
  });
  try {
    const info = await transport.sendMail({
      envelope: { from: o.from, to: o.to },
      from: o.from,
      to: o.to.join(', '),
      subject: `reliability ${o.token}`,
      headers: { 'X-Rel-Token': o.token },
      text: o.body ?? `token ${o.token}\n`,
    });
    return { acknowledged: /^250[ -]/.test(info.response), response: info.response };
  } catch (err) {
    return { acknowledged: false, response: (err as Error).message };
  } finally {
    transport.close();
  }
}

export interface Reply {
  code: number;
  lines: string[];
  text: string;
}

/** A raw line client (SMTP or POP3) that sends exactly what it is given. */
export class LineClient {
  socket: Socket;
  #buffer = '';
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#attach(socket);
  }

  static async connect(port: number, options: { localAddress?: string; tls?: boolean; timeoutMs?: number } = {}): Promise<LineClient> {
    const socket = options.tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(options.localAddress && { localAddress: options.localAddress }) })
      : connect({ port, host: '127.0.0.1', ...(options.localAddress && { localAddress: options.localAddress }) });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => (socket.destroy(), reject(new Error('connect timeout'))), options.timeoutMs ?? 10_000);
      socket.once(options.tls ? 'secureConnect' : 'connect', () => (clearTimeout(timer), resolve()));
      socket.once('error', (err) => (clearTimeout(timer), reject(err)));
    });
    return new LineClient(socket);
  }

  #attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The next line without CRLF; undefined when the connection closed first or the time ran out. */
  async line(timeoutMs = 15_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lf = this.#buffer.indexOf('\n');
      if (lf >= 0) {
        const line = this.#buffer.slice(0, lf).replace(/\r$/, '');
        this.#buffer = this.#buffer.slice(lf + 1);
        return line;
      }
      const left = deadline - Date.now();
      if (this.closed || left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** An SMTP reply (all continuation lines); code 0 when the connection closed. */
  async reply(timeoutMs = 15_000): Promise<Reply> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line(timeoutMs);
      if (line === undefined) return { code: 0, lines, text: lines.join('\n') };
      lines.push(line);
      if (!/^\d{3}-/.test(line)) return { code: Number(line.slice(0, 3)) || 0, lines, text: lines.join('\n') };
    }
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  async command(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** STARTTLS/STLS: the handshake on this connection. */
  async upgrade(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#buffer = '';
    this.#attach(secure);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Logs in over POP3 with USER/PASS; resolves with the STAT answer, or the first -ERR. */
export async function popLogin(
  port: number,
  login: string,
  password: string,
  localAddress?: string,
  passTimeoutMs = 60_000,
): Promise<{ ok: boolean; answer: string; client: LineClient }> {
  const client = await LineClient.connect(port, { ...(localAddress && { localAddress }) });
  const greeting = await client.line();
  if (!greeting?.startsWith('+OK')) return { ok: false, answer: greeting ?? '(closed)', client };
  const user = await client.command(`USER ${login}`);
  if (!user.text.startsWith('+OK')) return { ok: false, answer: user.text, client };
  const pass = await client.command(`PASS ${password}`, passTimeoutMs);
  if (!pass.text.startsWith('+OK')) return { ok: false, answer: pass.code === 0 && pass.lines.length === 0 ? '(no answer)' : pass.text, client };
  const stat = await client.command('STAT');
  return { ok: stat.text.startsWith('+OK'), answer: stat.text, client };
}

/** The X-Rel-Token of every message in a user's Maildir (new/ and cur/), with repeats. */
export async function maildirTokens(root: string, user: string): Promise<string[]> {
  const maildir = join(root, 'domains', DOMAIN, user, 'Maildir');
  const tokens: string[] = [];
  for (const sub of ['new', 'cur']) {
    let names: string[] = [];
    try {
      names = await readdir(join(maildir, sub));
    } catch {
      continue;
    }
    for (const name of names) {
      const text = await readFile(join(maildir, sub, name), 'latin1');
      const m = /^X-Rel-Token: (\S+)$/m.exec(text);
      if (m) tokens.push(m[1]!);
    }
  }
  return tokens;
}

/** Files left in a directory tree (queue leftovers, Maildir tmp/). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(path)));
    else out.push(path);
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Python's poplib as the well-behaved POP3 client: logs in, counts, reads message 1, quits; prints "<count> <has token>". */
export async function pythonPop(port: number, login: string, password: string): Promise<string> {
  const script = `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
count, size = p.stat()
first = b'\\n'.join(p.retr(1)[1]).decode() if count else ''
p.quit()
print(count, 'X-Rel-Token' in first)
`;
  const { stdout } = await promisify(execFile)('python3', ['-c', script, String(port), login, password], { timeout: 30_000 });
  return stdout.trim();
}
