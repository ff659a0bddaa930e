import { createServer, type Server, type Socket } from 'node:net';

/** One message a peer accepted. */
export interface PeerMessage {
  sender: string;
  recipients: string[];
  /** The message as received, dot-stuffing undone, lines ended by LF. */
  data: string;
}

export interface SmtpPeerOptions {
  /** Recipients answered `550` at RCPT; by default every recipient is accepted. */
  refuse?: (recipient: string) => boolean;
  /** The name in the greeting and the EHLO answer. */
  name?: string;
}

/**
 * A small real SMTP server on 127.0.0.1 standing in for a remote MX: point
 * control/smtproutes at its port and read `messages` to see what quail sent.
 * It speaks ESMTP line by line and records each message it accepts.
 */
export class SmtpPeer {
  readonly messages: PeerMessage[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #refuse: (recipient: string) => boolean;
  readonly #name: string;
  port = 0;

  private constructor(options: SmtpPeerOptions) {
    this.#refuse = options.refuse ?? (() => false);
    this.#name = options.name ?? 'peer.test';
    this.#server = createServer((socket) => this.#session(socket));
  }

  static async start(options: SmtpPeerOptions = {}): Promise<SmtpPeer> {
    const peer = new SmtpPeer(options);
    await new Promise<void>((resolve) => peer.#server.listen(0, '127.0.0.1', resolve));
    peer.port = (peer.#server.address() as { port: number }).port;
    return peer;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #session(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let inData = false;
    let current: PeerMessage = { sender: '', recipients: [], data: '' };
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply(`220 ${this.#name} ESMTP`);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (let lf = buffer.indexOf('\n'); lf >= 0; lf = buffer.indexOf('\n')) {
        const line = buffer.slice(0, lf).replace(/\r$/, '');
        buffer = buffer.slice(lf + 1);
        if (inData) {
          if (line === '.') {
            inData = false;
            this.messages.push(current);
            current = { sender: '', recipients: [], data: '' };
            reply('250 ok queued');
          } else current.data += `${line.startsWith('.') ? line.slice(1) : line}\n`;
          continue;
        }
        this.#command(line, current, reply, () => (inData = true), socket);
      }
    });
  }

  #command(line: string, current: PeerMessage, reply: (line: string) => void, startData: () => void, socket: Socket): void {
    const verb = line.slice(0, 4).toUpperCase();
    const arg = /<([^>]*)>/.exec(line)?.[1] ?? '';
    if (verb === 'EHLO') reply(`250-${this.#name}\r\n250 8BITMIME`);
    else if (verb === 'HELO') reply(`250 ${this.#name}`);
    else if (verb === 'MAIL') {
      current.sender = arg;
      current.recipients = [];
      reply('250 ok');
    } else if (verb === 'RCPT') {
      if (this.#refuse(arg)) reply(`550 5.1.1 <${arg}>: no such user here`);
      else {
        current.recipients.push(arg);
        reply('250 ok');
      }
    } else if (verb === 'DATA') {
      if (current.recipients.length === 0) reply('554 no valid recipients');
      else {
        startData();
        reply('354 go ahead');
      }
    } else if (verb === 'RSET') {
      current.recipients = [];
      reply('250 ok');
    } else if (verb === 'NOOP') reply('250 ok');
    else if (verb === 'QUIT') {
      reply('221 bye');
      socket.end();
    } else reply('502 unimplemented');
  }
}
