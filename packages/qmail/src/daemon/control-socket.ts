import { connect, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import { QuailError, ErrorCodes } from '@quail/core';

/**
 * The control socket protocol: the client sends one JSON line (the request);
 * when the request names `size`, exactly that many raw bytes follow (a message
 * to inject). The daemon answers with one JSON line and closes.
 */
export interface ControlRequest {
  cmd: string;
  size?: number;
  [key: string]: unknown;
}

export interface ControlResponse {
  ok: boolean;
  /** What the command prints. */
  text?: string;
  /** The one-line reason when ok is false. */
  error?: string;
  /** 100 permanent, 111 temporary (qmail's exit codes), when ok is false. */
  exitCode?: number;
}

export type ControlHandler = (request: ControlRequest, body: Buffer | undefined) => Promise<ControlResponse>;

/** Largest request header line, and largest body (a message) the socket takes. */
const MAX_HEAD = 64 * 1024;
export const MAX_BODY = 512 * 1024 * 1024;

/** Listens on a unix socket that only the owner may use (mode 0600, created under a tight umask). */
export async function listenControl(path: string, handler: ControlHandler): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (socket) => serve(socket, handler));
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  return server;
}

function serve(socket: Socket, handler: ControlHandler): void {
  let head: Buffer = Buffer.alloc(0);
  let request: ControlRequest | undefined;
  const chunks: Buffer[] = [];
  let received = 0;
  let done = false;
  const reply = (response: ControlResponse) => {
    if (done) return;
    done = true;
    socket.end(`${JSON.stringify(response)}\n`);
  };
  let started = false;
  const run = () => {
    started = true;
    const body = request!.size !== undefined ? Buffer.concat(chunks, received) : undefined;
    socket.pause();
    handler(request!, body).then(reply, (err: unknown) => reply({ ok: false, error: (err as Error).message, exitCode: 111 }));
  };
  socket.on('error', () => undefined);
  socket.on('end', () => !started && reply({ ok: false, error: request ? 'the request ended before its announced size' : 'the request ended without a line', exitCode: 100 }));
  socket.on('data', (data: Buffer) => {
    if (done) return;
    if (!request) {
      head = Buffer.concat([head, data]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) {
        if (head.length > MAX_HEAD) reply({ ok: false, error: 'request line too long', exitCode: 100 });
        return;
      }
      try {
        const parsed = JSON.parse(head.subarray(0, nl).toString('utf8')) as unknown;
        if (!parsed || typeof parsed !== 'object' || typeof (parsed as ControlRequest).cmd !== 'string') throw new Error('no cmd');
        request = parsed as ControlRequest;
        const size = request.size;
        if (size !== undefined && (!Number.isInteger(size) || size < 0 || size > MAX_BODY)) throw new Error('bad size');
      } catch {
        reply({ ok: false, error: 'malformed control request', exitCode: 100 });
        return;
      }
      data = head.subarray(nl + 1);
    }
    const want = request.size ?? 0;
    if (data.length > 0) {
      chunks.push(data);
      received += data.length;
    }
    if (received > want) return reply({ ok: false, error: 'more data than announced', exitCode: 100 });
    if (received === want) run();
  });
}

/** Removes a socket file left by a daemon that is gone; throws if a daemon still answers there. */
export async function claimSocket(path: string): Promise<void> {
  const answer = await request(path, { cmd: 'ping' }).catch((err: unknown) => err as Error);
  if (!(answer instanceof Error)) throw new QuailError(ErrorCodes.STATE, `a quail daemon is already running (control socket ${path})`);
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** True when the error means no daemon listens on the socket. */
export function isNotRunning(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTSOCK';
}

/** Sends one request (with an optional body) and waits for the answer. */
export function request(path: string, req: ControlRequest, body?: Buffer, timeoutMs = 120_000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new QuailError(ErrorCodes.TEMPORARY, `no answer from the daemon on ${path} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(`${JSON.stringify(body ? { ...req, size: body.length } : req)}\n`);
      if (body) socket.write(body);
    });
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(data) as ControlResponse);
      } catch {
        reject(new QuailError(ErrorCodes.TEMPORARY, `the daemon closed the control socket without an answer`));
      }
    });
  });
}
