// A small POP3 client for the load generator: one command at a time (no
// pipelining), multi-line answers read up to the CRLF.CRLF terminator by
// scanning the raw bytes, so the client costs little CPU next to the server.
import { connect } from 'node:net';
import { HOST } from './net.mjs';

const TERMINATOR = Buffer.from('\r\n.\r\n');

export class Pop3Client {
  #sock;
  #chunks = [];
  #length = 0;
  #waiter;
  #closed = false;
  #error;

  static async connect(port, { timeoutMs = 120_000 } = {}) {
    const client = new Pop3Client();
    await client.#open(port, timeoutMs);
    const greeting = await client.line();
    if (!greeting.startsWith('+OK')) throw new Error(`POP3 greeting: ${greeting}`);
    client.greeting = greeting;
    return client;
  }

  #open(port, timeoutMs) {
    return new Promise((resolve, reject) => {
      this.#sock = connect(port, HOST, resolve);
      this.#sock.setNoDelay(true);
      this.#sock.setTimeout(timeoutMs, () => this.#sock.destroy(new Error('POP3 server timed out')));
      this.#sock.once('error', reject);
      this.#sock.on('error', (err) => {
        this.#error = err;
        this.#wake();
      });
      this.#sock.on('data', (d) => {
        this.#chunks.push(d);
        this.#length += d.length;
        this.#wake();
      });
      this.#sock.on('close', () => {
        this.#closed = true;
        this.#wake();
      });
    });
  }

  #wake() {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  #buffer() {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #take(n) {
    const buf = this.#buffer();
    const out = buf.subarray(0, n);
    const rest = buf.subarray(n);
    this.#chunks = rest.length ? [rest] : [];
    this.#length = rest.length;
    return out;
  }

  async #until(find) {
    let from = 0;
    for (;;) {
      if (this.#length > 0) {
        const buf = this.#buffer();
        const at = find(buf, from);
        if (at >= 0) return this.#take(at);
        from = Math.max(0, buf.length - TERMINATOR.length);
      }
      if (this.#error) throw this.#error;
      if (this.#closed) throw new Error('POP3 connection closed');
      await new Promise((r) => (this.#waiter = r));
    }
  }

  /** One response line, without CRLF. */
  async line() {
    const raw = await this.#until((buf, from) => {
      const i = buf.indexOf(10, from);
      return i < 0 ? -1 : i + 1;
    });
    return raw.toString('latin1').replace(/\r?\n$/, '');
  }

  async command(text) {
    this.#sock.write(`${text}\r\n`);
    const reply = await this.line();
    if (!reply.startsWith('+OK')) throw new Error(`POP3 ${text.split(' ')[0]}: ${reply}`);
    return reply;
  }

  /** A multi-line answer; resolves with its bytes (without the status line and terminator). */
  async multi(text) {
    await this.command(text);
    // an empty body is just ".\r\n"
    const raw = await this.#until((buf, from) => {
      if (buf.length >= 3 && buf[0] === 0x2e && buf[1] === 0x0d && buf[2] === 0x0a) return 3;
      const i = buf.indexOf(TERMINATOR, from);
      return i < 0 ? -1 : i + TERMINATOR.length;
    });
    return raw.length === 3 && raw[0] === 0x2e ? Buffer.alloc(0) : raw.subarray(0, raw.length - 3);
  }

  async login(user, password) {
    await this.command(`USER ${user}`);
    await this.command(`PASS ${password}`);
  }

  async stat() {
    const [, count, size] = (await this.command('STAT')).split(' ');
    return { count: Number(count), size: Number(size) };
  }

  async quit() {
    const reply = await this.command('QUIT');
    this.#sock.end();
    return reply;
  }

  destroy() {
    this.#sock?.destroy();
  }
}
