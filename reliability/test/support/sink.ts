import { createServer, type Server, type Socket } from 'node:net';

/** One message a sink accepted. */
export interface SunkMessage {
  sender: string;
  recipients: string[];
  data: string;
}

/**
 * A "foreign" SMTP server on loopback that accepts everything: control/smtproutes
 * sends every remote delivery here, so a relayed message is one that arrives.
 */
export class SinkServer {
  readonly messages: SunkMessage[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;

  private constructor() {
    this.#server = createServer((socket) => this.#session(socket));
  }

  static async start(): Promise<SinkServer> {
    const sink = new SinkServer();
    await new Promise<void>((resolve) => sink.#server.listen(0, '127.0.0.1', resolve));
    sink.port = (sink.#server.address() as { port: number }).port;
    return sink;
  }

  #session(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    let buffer = '';
    let inData = false;
    let current: SunkMessage = { sender: '', recipients: [], data: '' };
    socket.write('220 sink.foreign.example ESMTP\r\n');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        const lf = buffer.indexOf('\n');
        if (lf < 0) return;
        const line = buffer.slice(0, lf).replace(/\r$/, '');
        buffer = buffer.slice(lf + 1);
        if (inData) {
          if (line === '.') {
            inData = false;
            this.messages.push(current);
            current = { sender: '', recipients: [], data: '' };
            socket.write('250 ok\r\n');
          } else current.data += `${line.startsWith('.') ? line.slice(1) : line}\n`;
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') socket.write('250 sink.foreign.example\r\n');
        else if (verb === 'MAIL') {
          current = { sender: /<([^>]*)>/.exec(line)?.[1] ?? '', recipients: [], data: '' };
          socket.write('250 ok\r\n');
        } else if (verb === 'RCPT') {
          current.recipients.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          socket.write('250 ok\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') {
          socket.end('221 bye\r\n');
        } else socket.write('250 ok\r\n');
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
