import { connect, type Socket } from 'node:net';

/** Bytes of one reply this client reads at most (RFC 5321 allows 512 per line). */
export const MAX_REPLY = 1024 * 1024;

/** One SMTP reply: the code and the text of every line (without the code). */
export interface SmtpReply {
  code: number;
  lines: string[];
  /** The whole reply as the server sent it, lines joined with `\n` (`250 ok`). */
  text: string;
}

export interface DialogOptions {
  host?: string;
  /** Source address of the connection: any 127.x.y.z on Linux loopback, to test per-IP rules. */
  localAddress?: string;
  /** Milliseconds to wait for each reply before failing (default 10 s). */
  replyTimeoutMs?: number;
}

/**
 * A line-level SMTP client for tests that check exact replies: every command
 * returns the server's reply, nothing is interpreted or retried.
 */
export class SmtpDialog {
  #greeting: SmtpReply = { code: 0, lines: [], text: '' };
  readonly #socket: Socket;
  readonly #timeoutMs: number;
  #buffer = '';
  #closed = false;
  readonly #waiters: Array<() => void> = [];

  private constructor(socket: Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.#receive(chunk));
    socket.on('close', () => this.#receive(null));
    socket.on('error', () => this.#receive(null));
  }

  /** The server's greeting (`220 ...`). */
  get greeting(): SmtpReply {
    return this.#greeting;
  }

  /** Connects and reads the greeting. */
  static async open(port: number, options: DialogOptions = {}): Promise<SmtpDialog> {
    const socket = connect({ host: options.host ?? '127.0.0.1', port, ...(options.localAddress && { localAddress: options.localAddress }) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const dialog = new SmtpDialog(socket, options.replyTimeoutMs ?? 10_000);
    try {
      dialog.#greeting = await dialog.reply();
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return dialog;
  }

  #receive(chunk: string | null): void {
    if (chunk === null) this.#closed = true;
    else this.#buffer += chunk;
    for (const w of this.#waiters.splice(0)) w();
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Reads the next (possibly multi-line) reply. */
  async reply(): Promise<SmtpReply> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const parsed = takeReply(this.#buffer);
      if (parsed) {
        this.#buffer = this.#buffer.slice(parsed.consumed);
        return parsed.reply;
      }
      if (this.#buffer.length > MAX_REPLY) throw new Error(`the server sent more than ${MAX_REPLY} bytes without completing a reply`);
      if (this.#closed) throw new Error(`the server closed the connection without a complete reply (got ${JSON.stringify(this.#buffer.slice(0, 200))})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SMTP reply within ${this.#timeoutMs} ms (got ${JSON.stringify(this.#buffer.slice(0, 200))})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends one command line (CRLF added) and returns the reply. */
  async command(line: string): Promise<SmtpReply> {
    this.#socket.write(`${line}\r\n`);
    return this.reply();
  }

  /**
   * DATA, then the message (LF or CRLF line endings; dot-stuffed here), then the
   * final dot. Returns the reply to DATA when it is not 354, else the final reply.
   */
  async data(message: string): Promise<SmtpReply> {
    const go = await this.command('DATA');
    if (go.code !== 354) return go;
    const lines = message.replace(/\r?\n$/, '').split(/\r?\n/);
    this.#socket.write(`${lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n')}\r\n.\r\n`);
    return this.reply();
  }

  /** Sends QUIT (when still connected) and closes the socket. */
  async close(): Promise<void> {
    if (!this.#closed) {
      await this.command('QUIT').catch(() => undefined);
    }
    this.#socket.destroy();
  }
}

/** Splits one complete reply off the front of the buffer. */
function takeReply(buffer: string): { reply: SmtpReply; consumed: number } | undefined {
  const lines: string[] = [];
  let offset = 0;
  for (;;) {
    const end = buffer.indexOf('\n', offset);
    if (end < 0) return undefined;
    const line = buffer.slice(offset, end).replace(/\r$/, '');
    offset = end + 1;
    const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
    if (!m) throw new Error(`not an SMTP reply line: ${JSON.stringify(line)}`);
    lines.push(line);
    if (m[2] !== '-') {
      return {
        reply: { code: Number(m[1]), lines: lines.map((l) => l.slice(4)), text: lines.join('\n') },
        consumed: offset,
      };
    }
  }
}
