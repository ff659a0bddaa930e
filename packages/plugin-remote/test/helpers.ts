import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { Message, Tokens, bufferSource, createServer, type Delivery, type DeliveryReport, type QuailServer } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import remote from '../src/index.js';

const run = promisify(execFile);

/* ------------------------------------------------------------------ DNS */

export { startLoopbackDns as startDns, type ZoneEntry } from '@quail/testkit';

/* ------------------------------------------------------------------ SMTP peers */

export interface ReceivedMessage {
  from: string;
  to: string[];
  data: Buffer;
  secure: boolean;
  user?: string;
}

export interface Peer {
  port: number;
  host: string;
  connections: number;
  closed: number;
  mails: number;
  messages: ReceivedMessage[];
  close: () => Promise<void>;
}

export type PeerScript = Partial<Pick<SMTPServerOptions, 'onRcptTo' | 'onMailFrom' | 'onAuth' | 'onConnect'>> & {
  /** Reply after the body; default 250. */
  afterData?: (message: ReceivedMessage) => Error | undefined;
};

/** A real SMTP server (smtp-server) on loopback that records what it receives. */
export async function startPeer(options: Partial<SMTPServerOptions> & { script?: PeerScript; host?: string } = {}): Promise<Peer> {
  const { script = {}, host = '127.0.0.1', ...serverOptions } = options;
  const peer: Peer = { port: 0, host, connections: 0, closed: 0, mails: 0, messages: [], close: async () => undefined };
  const server = new SMTPServer({
    logger: false,
    disabledCommands: serverOptions.key ? [] : ['STARTTLS'],
    authOptional: true,
    ...serverOptions,
    onConnect(session, cb) {
      peer.connections++;
      if (script.onConnect) script.onConnect(session, cb);
      else cb();
    },
    onClose() {
      peer.closed++;
    },
    onMailFrom(address, session, cb) {
      peer.mails++;
      if (script.onMailFrom) script.onMailFrom(address, session, cb);
      else cb();
    },
    ...(script.onRcptTo && { onRcptTo: script.onRcptTo }),
    ...(script.onAuth && { onAuth: script.onAuth }),
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const message: ReceivedMessage = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          secure: session.secure,
          ...(typeof session.user === 'string' && { user: session.user }),
        };
        peer.messages.push(message);
        cb(script.afterData?.(message) ?? null);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  peer.port = (server.server.address() as AddressInfo).port;
  peer.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return peer;
}

/** An smtp-server error carrying an SMTP code. */
export function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

/**
 * A raw TCP peer for faults smtp-server cannot produce (garbage, trickled bytes,
 * broken TLS). `onLine` answers each command line; the greeting is written first.
 */
export async function startRawPeer(options: {
  host?: string;
  port?: number;
  greeting?: string | ((socket: Socket) => void);
  onLine?: (line: string, socket: Socket, state: { inData: boolean; count: number }) => void;
}): Promise<{ port: number; connections: number; lines: string[]; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const result = { port: 0, connections: 0, lines: [] as string[], close: async () => undefined as void };
  const server: NetServer = createNetServer((socket) => {
    result.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const state = { inData: false, count: 0 };
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        result.lines.push(line);
        state.count++;
        if (state.inData) {
          if (line === '.') {
            state.inData = false;
            options.onLine?.('.', socket, state);
          }
          continue;
        }
        options.onLine?.(line, socket, state);
      }
    });
    const greeting = options.greeting ?? '220 raw.test ESMTP\r\n';
    if (typeof greeting === 'string') socket.write(greeting);
    else greeting(socket);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  result.port = (server.address() as AddressInfo).port;
  result.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return result;
}

/** The usual answers of a working SMTP server, for raw peers that misbehave only at one point. */
export function politeAnswer(line: string, socket: Socket, state: { inData: boolean }): void {
  const verb = line.slice(0, 4).toUpperCase();
  if (verb === 'EHLO' || verb === 'HELO') socket.write('250-raw.test\r\n250 PIPELINING\r\n');
  else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP') socket.write('250 ok\r\n');
  else if (verb === 'DATA') {
    state.inData = true;
    socket.write('354 go ahead\r\n');
  } else if (line === '.') socket.write('250 ok queued\r\n');
  else if (verb === 'QUIT') socket.end('221 bye\r\n');
  else socket.write('502 unimplemented\r\n');
}

/* ------------------------------------------------------------------ TLS */

/** A key and a self-signed certificate for `names` (openssl), with the PEM paths. */
export async function makeCertificate(dir: string, names: string[]): Promise<{ key: string; cert: string; certFile: string }> {
  const keyFile = join(dir, `key-${names[0]}.pem`);
  const certFile = join(dir, `cert-${names[0]}.pem`);
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${names[0]}`, '-days', '1',
    '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    '-keyout', keyFile, '-out', certFile,
  ]);
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8'), certFile };
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'quail-remote-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/* ------------------------------------------------------------------ quail */

export interface Fixture {
  server: QuailServer;
  root: string;
  deliver: (recipients: string[], body?: string | Buffer, sender?: string) => Promise<DeliveryReport | undefined>;
  writeControl: (file: string, content: string) => Promise<void>;
  stop: () => Promise<void>;
}

/** Control files every test wants: our names, short timeouts, loopback not counted as this host. */
export const BASE_CONTROL = {
  me: 'quail.test\n',
  helohost: 'quail.test\n',
  notipme: '127.0.0.1\n::1\n',
  timeoutconnect: '5\n',
  timeoutremote: '10\n',
};

let sequence = 0;

/** A quail server with plugin-remote over a temp root with the given control files. */
export async function startQuail(files: Record<string, string>): Promise<Fixture> {
  const { root, cleanup } = await tempRoot({ ...BASE_CONTROL, ...files });
  const server = createServer({ root, plugins: [remote], log: { level: 'silent' } });
  await server.start();
  const parser = server.resolve(Tokens.MessageParser);
  return {
    server,
    root,
    writeControl: (file, content) => writeFile(join(root, 'control', file), content),
    deliver: (recipients, body = 'Subject: test\n\nhello\n', sender = 'sender@quail.test') => {
      const delivery: Delivery = {
        id: ++sequence,
        messageId: `m${sequence}`,
        sender,
        channel: 'remote',
        recipients: recipients.map((r) => ({ recipient: r, route: { channel: 'remote', recipient: r, address: r } })),
        message: new Message(bufferSource(body), parser),
        queuedAt: new Date(),
        attempt: 1,
        signal: new AbortController().signal,
      };
      return server.hooks.deliver.promise(delivery);
    },
    stop: async () => {
      if (server.state === 'running') await server.stop();
      await cleanup();
    },
  };
}

/** Waits until `check` holds (for events that happen after a call returns, such as a peer seeing a close). */
export async function eventually(check: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
