import type { Socket } from 'node:net';
import { Writable, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { TlsInfo } from '@quail/core';
import type { Pop3Transport } from './transport.js';

/** How long a closing connection may take to flush before it is cut. */
const CLOSE_GRACE_MS = 5_000;

export interface SocketTransportEvents {
  /** Bytes from the client (after TLS, the decrypted bytes). */
  onData(chunk: Buffer): void;
  /** Called right before the TLS handshake of STLS: drop buffered plain-text input. */
  onUpgrade(): void;
}

/** A POP3 transport over a TCP socket, optionally upgraded to TLS. */
export class SocketTransport implements Pop3Transport {
  /** The TCP connection underneath everything. */
  readonly raw: Socket;
  #socket: Socket;
  #secure: boolean;
  readonly #context: SecureContext | undefined;
  readonly #events: SocketTransportEvents;
  readonly #onData = (chunk: Buffer) => this.#events.onData(chunk);

  constructor(raw: Socket, top: Socket, secure: boolean, context: SecureContext | undefined, events: SocketTransportEvents) {
    this.raw = raw;
    this.#socket = top;
    this.#secure = secure;
    this.#context = context;
    this.#events = events;
    top.on('data', this.#onData);
  }

  get secure(): boolean {
    return this.#secure;
  }

  /** The socket application data flows through (the TLS socket once encrypted). */
  get socket(): Socket {
    return this.#socket;
  }

  get closing(): boolean {
    return this.#socket.destroyed || this.#socket.writableEnded;
  }

  send(line: string): void {
    if (this.closing) return;
    this.#socket.write(`${line}\r\n`);
  }

  async sendStream(source: Readable, ...transforms: Transform[]): Promise<void> {
    const socket = this.#socket;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (socket.destroyed || socket.writableEnded) {
          callback(new Error('the client closed the connection'));
          return;
        }
        if (socket.write(chunk)) {
          callback();
          return;
        }
        const done = (err?: Error) => {
          socket.off('drain', onDrain);
          socket.off('close', onClose);
          callback(err);
        };
        const onDrain = () => done();
        const onClose = () => done(new Error('the client closed the connection'));
        socket.on('drain', onDrain);
        socket.on('close', onClose);
      },
    });
    await pipeline([source, ...transforms, sink]);
  }

  sendWhole(response: Buffer): Promise<void> {
    const socket = this.#socket;
    if (this.closing) return Promise.reject(new Error('the client closed the connection'));
    if (socket.write(response)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new Error('the client closed the connection'));
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  async startTls(): Promise<TlsInfo> {
    if (!this.#context) throw new Error('no TLS certificate configured');
    const plain = this.#socket;
    plain.off('data', this.#onData);
    this.#events.onUpgrade();
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.#context });
    secure.on('error', () => undefined);
    this.#socket = secure;
    this.#secure = true;
    await handshake(secure);
    secure.on('data', this.#onData);
    return tlsInfo(secure);
  }

  close(): void {
    if (this.closing) return;
    this.#socket.end();
    const timer = setTimeout(() => this.raw.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.raw.once('close', () => clearTimeout(timer));
  }
}

/** Resolves when the TLS handshake is done; rejects when it fails or the connection closes first. */
export function handshake(socket: TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      socket.off('secure', onSecure);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onSecure = () => done();
    const onError = (err: Error) => done(err);
    const onClose = () => done(new Error('the connection closed during the TLS handshake'));
    socket.on('secure', onSecure);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

export function tlsInfo(socket: TLSSocket): TlsInfo {
  return { protocol: socket.getProtocol() ?? 'unknown', cipher: socket.getCipher()?.name ?? 'unknown' };
}
