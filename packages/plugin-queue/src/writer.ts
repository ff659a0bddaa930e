import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { dirname } from 'node:path';
import {
  ErrorCodes,
  Message,
  QuailError,
  type Envelope,
  type MessageParser,
  type DirectorySyncs,
  type MessageSource,
  type QueueOrigin,
  type QueueReceipt,
  type QueueWriter,
} from '@quail/core';
import { errnoCode, type QueueFs } from './fs-seam.js';
import { qmailDate } from './format.js';
import { newMessageId, type QueueLayout } from './layout.js';
import { encodeEnvelope, envelopeProblem, type EnvelopeRecord } from './records.js';
import type { SpareFiles } from './spare-files.js';

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

/** What an in-process commit hands to the scheduler, so that preprocessing need not read it back. */
export interface CommittedMessage {
  envelope: EnvelopeRecord;
  /** Size of `mess/<s>/<id>` in bytes. */
  size: number;
}

export interface WriterDeps {
  layout: QueueLayout;
  fs: QueueFs;
  dirs: DirectorySyncs;
  spares: SpareFiles;
  /** Ids this process is committing: the todo/ watcher leaves them to `onCommit`. */
  committing: Set<string>;
  parser: MessageParser;
  now: () => number;
  onCommit: (id: string, committed: CommittedMessage) => void;
}

type WriterState = 'writing' | 'committing' | 'committed' | 'aborted';

/** Data is kept in memory up to this size and then written in one call (a typical message: one write). */
const WRITE_BUFFER = 64 * 1024;

/** qmail's qp is the pid of qmail-queue; here the pid and a per-process sequence number. */
let qpSequence = 0;
function nextQp(): number {
  qpSequence = (qpSequence + 1) & 0xffff;
  return ((process.pid * 0x10000 + qpSequence) % 2 ** 31) || 1;
}

/**
 * qmail-queue for one message. The body goes to `tmp/<id>` (or a recycled spare
 * file in tmp/); commit fdatasyncs it and renames it to `mess/<s>/<id>`, writes
 * and fdatasyncs the envelope in `tmp/<id>.env` (or a spare), fsyncs `mess/<s>/`
 * (shared with concurrent commits), then renames the envelope to `todo/<id>` and
 * fsyncs `todo/` (shared too): once that fsync returns the message is queued.
 */
export class DiskQueueWriter implements QueueWriter {
  readonly id: string;
  readonly stream: Writable;
  readonly qp: number;
  readonly #deps: WriterDeps;
  readonly #origin: QueueOrigin;
  #fh: number | undefined;
  #size = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #state: WriterState = 'writing';
  #path: string;
  #error: unknown;
  #finished: Promise<void>;

  private constructor(deps: WriterDeps, id: string, path: string, fh: number, qp: number, origin: QueueOrigin) {
    this.#deps = deps;
    this.id = id;
    this.#fh = fh;
    this.qp = qp;
    this.#origin = origin;
    this.#path = path;
    this.stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => this.#add(chunk).then(() => cb(), cb),
      writev: (chunks, cb) => {
        let work = Promise.resolve();
        for (const c of chunks) work = work.then(() => this.#add(c.chunk as Buffer));
        work.then(() => cb(), cb);
      },
      final: (cb) => this.#flush().then(() => cb(), cb),
    });
    this.#finished = new Promise<void>((resolve, reject) => {
      this.stream.once('finish', resolve);
      this.stream.once('error', reject);
      this.stream.once('close', () => (this.stream.writableFinished ? resolve() : reject(new Error('the message stream was closed before it ended'))));
    });
    this.#finished.catch(() => undefined);
  }

  /**
   * Opens the body file in tmp/ (a recycled spare when there is one, otherwise a
   * new `tmp/<id>`); qmail-queue's Received line goes first into the write buffer.
   */
  static async open(deps: WriterDeps, origin: QueueOrigin): Promise<DiskQueueWriter> {
    const id = newMessageId(deps.now());
    const spare = deps.spares.take();
    const path = spare ?? deps.layout.tmp(id);
    let fh: number | undefined;
    try {
      fh = await deps.fs.open(path, spare ? 'w' : 'wx', 0o640);
      const qp = nextQp();
      const writer = new DiskQueueWriter(deps, id, path, fh, qp, origin);
      await writer.#add(Buffer.from(receivedLine(qp, origin, deps.now())));
      return writer;
    } catch (err) {
      if (fh !== undefined) await deps.fs.close(fh).catch(() => undefined);
      await deps.fs.unlink(path).catch(() => undefined);
      throw temporary(err, 'create');
    }
  }

  /** Buffers a chunk (the stream copies nothing: the caller's buffer is kept until written). */
  async #add(chunk: Buffer): Promise<void> {
    if (this.#state !== 'writing' || this.#fh === undefined) throw new QuailError(ErrorCodes.STATE, `message ${this.id} is no longer being written`);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#size += chunk.length;
    if (this.#pendingBytes >= WRITE_BUFFER) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    if (this.#state !== 'writing' || this.#fh === undefined) throw new QuailError(ErrorCodes.STATE, `message ${this.id} is no longer being written`);
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      await this.#deps.fs.write(this.#fh, data);
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
    const todo = layout.todo(this.id);
    // the envelope is written in a recycled spare file of tmp/, or a new tmp/<id>.env
    const spare = this.#deps.spares.take();
    const envPath = spare ?? layout.tmp(`${this.id}.env`);
    const acceptedAt = this.#deps.now();
    let named = false;
    const envRecord: EnvelopeRecord = {
      v: 1,
      id: this.id,
      qp: this.qp,
      origin: this.#origin,
      at: acceptedAt,
      sender: envelope.sender,
      recipients: [...envelope.recipients],
    };
    const record = encodeEnvelope(envRecord);
    const { dirs } = this.#deps;
    try {
      const fh = this.#fh!;
      // The body, its name in mess/ and the envelope become durable side by side;
      // nothing counts until the link into todo/ below, made only once all three are done.
      const body = (async () => {
        await fs.sync(fh);
        this.#fh = undefined;
        await fs.close(fh);
      })();
      const name = (async () => {
        await fs.rename(this.#path, mess);
        this.#path = mess;
        await dirs.sync(dirname(mess));
      })();
      const env = (async () => {
        const efh = await fs.open(envPath, spare ? 'w' : 'wx', 0o640);
        try {
          await fs.write(efh, record);
          await fs.sync(efh);
        } finally {
          await fs.close(efh);
        }
      })();
      const outcomes = await Promise.allSettled([body, name, env]);
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
      this.#deps.committing.add(this.id);
      await fs.rename(envPath, todo);
      named = true;
      await dirs.sync(layout.todoDir);
    } catch (err) {
      this.#deps.committing.delete(this.id);
      this.#state = 'aborted';
      if (this.#fh !== undefined) await fs.close(this.#fh).catch(() => undefined);
      this.#fh = undefined;
      await fs.unlink(named ? todo : envPath).catch(() => undefined);
      await fs.unlink(this.#path).catch(() => undefined);
      throw temporary(err, 'write');
    }
    this.#state = 'committed';
    this.#deps.onCommit(this.id, { envelope: envRecord, size: this.#size });
    this.#deps.committing.delete(this.id);
    return { id: this.id, qp: this.qp, acceptedAt: new Date(acceptedAt) };
  }

  async abort(): Promise<void> {
    if (this.#state !== 'writing') return;
    this.#state = 'aborted';
    if (!this.stream.destroyed) this.stream.destroy();
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh !== undefined) await this.#deps.fs.close(fh).catch(() => undefined);
    await this.#deps.fs.unlink(this.#path).catch(() => undefined);
  }
}
