import { createServer, type Server, type Socket } from 'node:net';

/** A message a peer received. */
export interface PeerMessage {
  sender: string;
  recipients: string[];
  data: string;
}

/**
 * A small real SMTP server on loopback standing in for a remote MX: it speaks
 * ESMTP line by line, accepts recipients except those whose local part starts
 * with "refuse" (550 at RCPT), and records what it received.
 */
export class SmtpPeer {
  readonly messages: PeerMessage[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor() {
    this.#server = createServer((socket) => this.#session(socket));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #session(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    let buffer = '';
    let inData = false;
    let data: string[] = [];
    let sender = '';
    let recipients: string[] = [];
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply('220 peer.test ESMTP');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            this.messages.push({ sender, recipients, data: data.join('\n') });
            reply('250 ok queued');
            data = [];
          } else data.push(line.startsWith('.') ? line.slice(1) : line);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        const arg = /<([^>]*)>/.exec(line)?.[1] ?? '';
        if (verb === 'EHLO') reply('250-peer.test\r\n250 8BITMIME');
        else if (verb === 'HELO') reply('250 peer.test');
        else if (verb === 'MAIL') {
          sender = arg;
          recipients = [];
          reply('250 ok');
        } else if (verb === 'RCPT') {
          if (/^refuse/i.test(arg)) reply(`550 5.1.1 <${arg}>: no such user here`);
          else {
            recipients.push(arg);
            reply('250 ok');
          }
        } else if (verb === 'DATA') {
          if (recipients.length === 0) reply('554 no valid recipients');
          else {
            inData = true;
            reply('354 go ahead');
          }
        } else if (verb === 'RSET') {
          recipients = [];
          reply('250 ok');
        } else if (verb === 'NOOP') reply('250 ok');
        else if (verb === 'QUIT') {
          reply('221 bye');
          socket.end();
        } else reply('502 unimplemented');
      }
    });
  }
}
