import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  ErrorCodes,
  Message,
  QuailError,
  definePlugin,
  fileSource,
  fsyncDir,
  Tokens,
  type Clock,
  type Envelope,
  type MessageParser,
  type Plugin,
  type Queue,
  type QueueOrigin,
  type QueueReceipt,
  type QueueStat,
  type QueueWriter,
  type QueuedMessageInfo,
} from '@quail/core';

/**
 * A spool, not a mail queue: each accepted message is written to `<dir>/<id>.msg`
 * with its envelope in `<id>.env`, both fsynced, and nothing is ever delivered.
 * It stands in for plugin-queue where only the SMTP side is measured or tested
 * (benchmarks, this package's tests). With `keep: false` each message is
 * written and fsynced once, then removed: the disk cost of a queue that makes
 * every message durable, without the disk filling up.
 */
export class SpoolQueue implements Queue {
  readonly dir: string;
  readonly #keep: boolean;
  readonly #parser: MessageParser;
  readonly #clock: Clock;
  #qp = 0;
  #paused = false;

  constructor(options: { dir: string; keep?: boolean; parser: MessageParser; clock: Clock }) {
    this.dir = options.dir;
    this.#keep = options.keep !== false;
    this.#parser = options.parser;
    this.#clock = options.clock;
  }

  async create(_origin: QueueOrigin): Promise<QueueWriter> {
    await mkdir(this.dir, { recursive: true });
    const id = `${Date.now()}.${randomBytes(6).toString('hex')}`;
    const tmp = join(this.dir, `${id}.tmp`);
    const stream = createWriteStream(tmp, { flags: 'wx' });
    const done = finished(stream).then(
      () => undefined,
      (err: unknown) => err,
    );
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const spool = this;
    return {
      id,
      stream,
      message: () => new Message(fileSource(tmp), this.#parser),
      async commit(envelope: Envelope): Promise<QueueReceipt> {
        if (state !== 'open') throw new QuailError(ErrorCodes.STATE, `message ${id} is already ${state}`);
        const failure = await done;
        if (failure) throw new QuailError(ErrorCodes.TEMPORARY, `spool write failed: ${String(failure)}`, { cause: failure });
        try {
          await fsyncFile(tmp);
          if (spool.#keep) {
            const env = join(spool.dir, `${id}.env`);
            await writeFile(env, JSON.stringify(envelope));
            await fsyncFile(env);
            await rename(tmp, join(spool.dir, `${id}.msg`));
            await fsyncDir(spool.dir);
          } else {
            await unlink(tmp);
          }
        } catch (err) {
          throw new QuailError(ErrorCodes.TEMPORARY, `spool commit failed: ${(err as Error).message}`, { cause: err });
        }
        state = 'committed';
        return { id, qp: ++spool.#qp, acceptedAt: new Date(spool.#clock.now()) };
      },
      async abort(): Promise<void> {
        if (state !== 'open') return;
        state = 'aborted';
        stream.destroy();
        await done;
        await unlink(tmp).catch(() => undefined);
      },
    };
  }

  async enqueue(envelope: Envelope, body: Readable | Buffer | string, origin: QueueOrigin): Promise<QueueReceipt> {
    const writer = await this.create(origin);
    try {
      if (typeof body === 'string' || Buffer.isBuffer(body)) writer.stream.end(body);
      else body.pipe(writer.stream);
      await finished(writer.stream);
      return await writer.commit(envelope);
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  /** The committed messages (those kept), oldest first. */
  async *list(): AsyncIterable<QueuedMessageInfo> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.env')).sort();
    for (const name of names) {
      const id = name.slice(0, -4);
      const envelope = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as Envelope;
      const size = (await readFile(join(this.dir, `${id}.msg`))).length;
      yield {
        id,
        sender: envelope.sender,
        size,
        queuedAt: new Date(Number(id.split('.')[0])),
        recipients: envelope.recipients.map((recipient) => ({ recipient, channel: 'spool', state: 'pending' as const, attempts: 0 })),
      };
    }
  }

  async stat(): Promise<QueueStat> {
    let messages = 0;
    for await (const _ of this.list()) messages++;
    return { messages, unprocessed: 0, pending: { spool: messages }, paused: this.#paused };
  }

  /** A spool delivers nothing, so there is nothing to retry or wait for. */
  async flush(): Promise<void> {}

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
  }

  async idle(): Promise<void> {}
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * A plugin providing the Queue service with a SpoolQueue in `dir` (relative to
 * the server root unless absolute). For benchmarks and tests of the SMTP side.
 */
export function spoolQueuePlugin(options: { dir: string; keep?: boolean; name?: string }): Plugin {
  return definePlugin({
    name: options.name ?? 'spool-queue',
    provides: [Tokens.Queue],
    register(ctx) {
      ctx.provideFactory(
        Tokens.Queue,
        () =>
          new SpoolQueue({
            dir: options.dir.startsWith('/') ? options.dir : join(ctx.root, options.dir),
            keep: options.keep !== false,
            parser: ctx.resolve(Tokens.MessageParser),
            clock: ctx.resolve(Tokens.Clock),
          }),
      );
    },
  });
}
