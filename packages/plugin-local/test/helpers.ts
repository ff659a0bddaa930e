import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import maildirPlugin from '@quail/plugin-maildir';
import localPlugin from '@quail/plugin-local';
import {
  bufferSource,
  createServer,
  definePlugin,
  ErrorCodes,
  Message,
  QuailError,
  Tokens,
  type Delivery,
  type DeliveryReport,
  type Envelope,
  type Queue,
  type QueueOrigin,
  type QuailServer,
} from '@quail/core';

export const run = promisify(execFile);

export interface Enqueued {
  envelope: Envelope;
  body: string;
  origin: QueueOrigin;
}

/** A Queue service that records what is injected (plugin-queue is tested on its own). */
export function recordingQueue(options: { fail?: QuailError } = {}): { plugin: ReturnType<typeof definePlugin>; enqueued: Enqueued[] } {
  const enqueued: Enqueued[] = [];
  let qp = 1000;
  const queue: Pick<Queue, 'enqueue'> = {
    async enqueue(envelope, body, origin) {
      let text: string;
      if (typeof body === 'string') text = body;
      else if (Buffer.isBuffer(body)) text = body.toString('latin1');
      else {
        const parts: Buffer[] = [];
        for await (const chunk of body as Readable) parts.push(Buffer.from(chunk as Buffer));
        text = Buffer.concat(parts).toString('latin1');
      }
      if (options.fail) throw options.fail;
      enqueued.push({ envelope, body: text, origin });
      qp += 1;
      return { id: `m${qp}`, qp, acceptedAt: new Date() };
    },
  };
  const plugin = definePlugin({
    name: 'recording-queue',
    provides: [Tokens.Queue],
    register(ctx) {
      ctx.provide(Tokens.Queue, queue as Queue);
    },
  });
  return { plugin, enqueued };
}

export const temporaryQueueError = new QuailError(ErrorCodes.TEMPORARY, 'qq temporary problem');

export interface Harness {
  root: string;
  server: QuailServer;
  enqueued: Enqueued[];
  logs: string[];
  deliver(address: string, message: string, options?: { sender?: string; channel?: string; prefix?: string }): Promise<DeliveryReport | undefined>;
  close(): Promise<void>;
}

/**
 * A server with plugin-maildir, plugin-local and a recording queue, in a temp
 * root readable by unprivileged program accounts (mode 0755 directories).
 */
export async function harness(options: { control?: Record<string, string>; queueFail?: QuailError } = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'quail-local-'));
  await chmod(root, 0o755);
  await mkdir(join(root, 'control'));
  await mkdir(join(root, 'alias'), { mode: 0o755 });
  for (const [name, text] of Object.entries({ me: 'mx.example.com', ...options.control })) await writeFile(join(root, 'control', name), text);
  const queue = recordingQueue(options.queueFail ? { fail: options.queueFail } : {});
  const logs: string[] = [];
  const server = createServer({
    root,
    plugins: [queue.plugin, localPlugin, maildirPlugin],
    log: { level: 'warn', write: (line) => void logs.push(line) },
  });
  await server.start();
  let seq = 0;
  return {
    root,
    server,
    enqueued: queue.enqueued,
    logs,
    async deliver(address, message, o = {}) {
      const parser = server.resolve(Tokens.MessageParser);
      const delivery: Delivery = {
        id: ++seq,
        messageId: `msg${seq}`,
        sender: o.sender ?? 'sender@example.org',
        channel: o.channel ?? 'local',
        recipients: [{ recipient: address, route: { channel: o.channel ?? 'local', recipient: address, address, ...(o.prefix && { prefix: o.prefix }) } }],
        message: new Message(bufferSource(message), parser),
        queuedAt: new Date(),
        attempt: 1,
        signal: new AbortController().signal,
      };
      return server.hooks.deliver.promise(delivery);
    },
    async close() {
      await server.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Writes a dot-qmail file with a safe mode (0644 unless given). */
export async function dotQmail(path: string, text: string, mode = 0o644): Promise<void> {
  await writeFile(path, text);
  await chmod(path, mode);
}

/** Runs a Python 3 program with arguments and parses its JSON output. */
export async function python<T>(program: string, ...args: string[]): Promise<T> {
  const { stdout } = await run('python3', ['-c', program, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as T;
}
