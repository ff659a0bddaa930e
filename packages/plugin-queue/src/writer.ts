import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { dirname } from 'node:path';
import {
  ErrorCodes,
  Message,
  QuailError,
  type Envelope,
  type MessageParser,
  type MessageSource,
  type QueueOrigin,
  type QueueReceipt,
  type QueueWriter,
} from '@quail/core';
import { errnoCode, type QueueFs } from './fs-seam.js';
import { qmailDate } from './format.js';
import { newMessageId, type QueueLayout } from './layout.js';
import { encodeEnvelope, envelopeProblem } from './records.js';

/** qmail-queue's `invoked ...` words for each origin (reference 3.3). */
export function invokedBy(origin: QueueOrigin): string {
  switch (origin.kind) {
    case 'network':
      return 'from network';
    case 'bounce':
      return 'for bounce';
    case 'forward':
      return 'by alias';
    case 'local':
      return `by uid ${origin.uid}`;
  }
}

export function receivedLine(qp: number, origin: QueueOrigin, nowMs: number): string {
  return `Received: (qmail ${qp} invoked ${invokedBy(origin)}); ${qmailDate(nowMs)}\n`;
}

/** An I/O error as qmail-queue would report it: always temporary. */
export function temporary(err: unknown, during: 'write' | 'create'): QuailError {
  if (err instanceof QuailError) return err;
  const code = errnoCode(err);
  const text = during === 'write' || code === 'ENOSPC' || code === 'EDQUOT' ? 'qq write error or disk full (#4.3.0)' : 'qq trouble creating files in queue (#4.3.0)';
  return new QuailError(ErrorCodes.TEMPORARY, `${text}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export interface WriterDeps {
  layout: QueueLayout;
  fs: QueueFs;
  parser: MessageParser;
  now: () => number;
  onCommit: (id: string) => void;
}

type WriterState = 'writing' | 'committing' | 'committed' | 'aborted';

/**
 * qmail-queue for one message. The body goes to `tmp/<id>`; commit fsyncs it,
 * renames it to `mess/<s>/<id>`, writes and fsyncs `intd/<id>`, fsyncs the
 * message directory and then links `intd/<id>` to `todo/<id>` and fsyncs todo/:
 * that link is the instant the message is queued.
 */
export class DiskQueueWriter implements QueueWriter {
  readonly id: string;
  readonly stream: Writable;
  readonly qp: number;
  readonly #deps: WriterDeps;
  readonly #origin: QueueOrigin;
  #fh: FileHandle | undefined;
  #size = 0;
  #state: WriterState = 'writing';
  #path: string;
  #error: unknown;
  #finished: Promise<void>;

  private constructor(deps: WriterDeps, id: string, fh: FileHandle, qp: number, origin: QueueOrigin) {
    this.#deps = deps;
    this.id = id;
    this.#fh = fh;
    this.qp = qp;
    this.#origin = origin;
    this.#path = deps.layout.tmp(id);
    this.stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => this.#write(chunk).then(() => cb(), cb),
      writev: (chunks, cb) => this.#write(Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb),
    });
    this.#finished = new Promise<void>((resolve, reject) => {
      this.stream.once('finish', resolve);
      this.stream.once('error', reject);
      this.stream.once('close', () => (this.stream.writableFinished ? resolve() : reject(new Error('the message stream was closed before it ended'))));
    });
    this.#finished.catch(() => undefined);
  }

  /** Opens `tmp/<id>` and writes qmail-queue's Received line. */
  static async open(deps: WriterDeps, origin: QueueOrigin): Promise<DiskQueueWriter> {
    const id = newMessageId(deps.now());
    let fh: FileHandle | undefined;
    try {
      fh = await deps.fs.open(deps.layout.tmp(id), 'wx', 0o640);
      const qp = (await fh.stat()).ino % 2 ** 31;
      const writer = new DiskQueueWriter(deps, id, fh, qp, origin);
      await writer.#write(Buffer.from(receivedLine(qp, origin, deps.now())));
      return writer;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await deps.fs.unlink(deps.layout.tmp(id)).catch(() => undefined);
      throw temporary(err, 'create');
    }
  }

  async #write(chunk: Buffer): Promise<void> {
    if (this.#state !== 'writing' || !this.#fh) throw new QuailError(ErrorCodes.STATE, `message ${this.id} is no longer being written`);
    try {
      await this.#deps.fs.write(this.#fh, chunk);
      this.#size += chunk.length;
    } catch (err) {
      this.#error ??= err;
      throw temporary(err, 'write');
    }
  }

  /** The message as written so far; it follows the file from tmp/ to mess/ on commit. */
  message(): Message {
    const writer = this;
    const source: MessageSource = {
      get size() {
        return writer.#size;
      },
      get path() {
        return writer.#path;
      },
      stream: (range) =>
        createReadStream(writer.#path, {
          ...(range?.start !== undefined && { start: range.start }),
          ...(range?.end !== undefined && { end: range.end - 1 }),
        }),
    };
    return new Message(source, this.#deps.parser);
  }

  async commit(envelope: Envelope): Promise<QueueReceipt> {
    if (this.#state !== 'writing') throw new QuailError(ErrorCodes.STATE, `message ${this.id} cannot be committed: it is ${this.#state}`);
    const problem = envelopeProblem(envelope);
    if (problem) {
      await this.abort();
      throw new QuailError(ErrorCodes.PERMANENT, problem);
    }
    if (!this.stream.writableEnded) this.stream.end();
    try {
      await this.#finished;
    } catch (err) {
      await this.abort();
      throw temporary(this.#error ?? err, 'write');
    }
    this.#state = 'committing';
    const { fs, layout } = this.#deps;
    const mess = layout.mess(this.id);
    const intd = layout.intd(this.id);
    const todo = layout.todo(this.id);
    const acceptedAt = this.#deps.now();
    let linked = false;
    const record = encodeEnvelope({
      v: 1,
      id: this.id,
      qp: this.qp,
      origin: this.#origin,
      at: acceptedAt,
      sender: envelope.sender,
      recipients: [...envelope.recipients],
    });
    try {
      const fh = this.#fh!;
      // The body, its name in mess/ and the envelope become durable side by side;
      // nothing counts until the link into todo/ below, made only once all three are done.
      const body = (async () => {
        await fs.sync(fh);
        this.#fh = undefined;
        await fh.close();
      })();
      const name = (async () => {
        await fs.rename(this.#path, mess);
        this.#path = mess;
        await fs.syncDir(dirname(mess));
      })();
      const env = (async () => {
        const efh = await fs.open(intd, 'wx', 0o640);
        try {
          await fs.write(efh, record);
          await fs.sync(efh);
        } finally {
          await efh.close();
        }
      })();
      const outcomes = await Promise.allSettled([body, name, env]);
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
      await fs.link(intd, todo);
      linked = true;
      await fs.syncDir(layout.todoDir);
    } catch (err) {
      this.#state = 'aborted';
      await this.#fh?.close().catch(() => undefined);
      this.#fh = undefined;
      if (linked) await fs.unlink(todo).catch(() => undefined);
      await fs.unlink(intd).catch(() => undefined);
      await fs.unlink(this.#path).catch(() => undefined);
      throw temporary(err, 'write');
    }
    this.#state = 'committed';
    await fs.unlink(intd).catch(() => undefined);
    this.#deps.onCommit(this.id);
    return { id: this.id, qp: this.qp, acceptedAt: new Date(acceptedAt) };
  }

  async abort(): Promise<void> {
    if (this.#state !== 'writing') return;
    this.#state = 'aborted';
    if (!this.stream.destroyed) this.stream.destroy();
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
    await this.#deps.fs.unlink(this.#path).catch(() => undefined);
  }
}
