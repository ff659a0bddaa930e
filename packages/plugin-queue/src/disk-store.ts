import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DirectorySyncs, fileSource, type Logger, type MessageParser, type QueueOrigin, type QueuedMessageInfo, type QueuedRecipient, type QueueWriter, type Route } from '@quail/core';
import { errnoCode, type QueueFs } from './fs-seam.js';
import { isMessageId, QueueLayout, SPLIT, splitOf } from './layout.js';
import { CorruptQueueFile, MessageGone, decodeEnvelope, type EnvelopeRecord, decodeInfo, encodeInfo, encodeState, replayState, type InfoRecord, type RecipientProgress, type StateEntry } from './records.js';
import type { LoadedMessage, Preprocessed, QueueStore, StoreCounts } from './store.js';
import { SpareFiles } from './spare-files.js';
import { DiskQueueWriter, type CommittedMessage } from './writer.js';

export interface DiskStoreOptions {
  root: string;
  fs: QueueFs;
  parser: MessageParser;
  /** The Clock's time (ms). */
  now: () => number;
  log: Logger;
}

const ignoreMissing = (err: unknown) => {
  if (errnoCode(err) !== 'ENOENT') throw err;
};

/** Delivery locks held by schedulers of this process (a pid alone cannot tell two of them apart). */
const locksHeldHere = new Set<string>();

/** Messages read ahead while listing. */
const LIST_AHEAD = 32;

/** Stat calls in flight at once while scanning a large queue. */
const STAT_BATCH = 256;

/** The queue directory (see QueueLayout for what lives where). */
export class DiskQueueStore implements QueueStore {
  readonly layout: QueueLayout;
  readonly #fs: QueueFs;
  readonly #parser: MessageParser;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #appending = new Map<string, Promise<void>>();
  readonly #dirs: DirectorySyncs;
  readonly #committing = new Set<string>();
  readonly #spares: SpareFiles;

  constructor(options: DiskStoreOptions) {
    this.layout = new QueueLayout(options.root);
    this.#fs = options.fs;
    this.#parser = options.parser;
    this.#now = options.now;
    this.#log = options.log;
    this.#dirs = new DirectorySyncs((dir) => options.fs.syncDir(dir));
    this.#spares = new SpareFiles(this.layout, options.fs);
  }

  async open(): Promise<void> {
    for (const dir of this.layout.directories()) await this.#fs.mkdir(dir);
    await this.#removeLeftovers(Date.now());
  }

  /**
   * Removes what an interrupted injection or removal left behind (qmail's states
   * S2/S3): bodies in tmp/, envelopes in intd/ without todo/, message files with
   * neither todo/ nor info/, state logs without info/. Only files older than this
   * start are touched, so an injection running right now is left alone.
   */
  async #removeLeftovers(startedAt: number): Promise<void> {
    const { layout } = this;
    const old = async (path: string) => {
      try {
        return (await this.#fs.stat(path)).mtimeMs < startedAt;
      } catch (err) {
        ignoreMissing(err);
        return false;
      }
    };
    const drop = async (path: string, why: string) => {
      await this.#fs.unlink(path).catch(ignoreMissing);
      this.#log.info(`removed ${this.#relative(path)}: ${why}`);
    };
    for (const name of await this.#fs.readdir(layout.tmpDir)) {
      const path = layout.tmp(name);
      if (await old(path)) await drop(path, 'left over from an interrupted injection');
    }
    const todo = new Set(await this.#fs.readdir(layout.todoDir));
    for (const name of await this.#fs.readdir(layout.intdDir)) {
      const path = layout.intd(name);
      if (!todo.has(name) && (await old(path))) await drop(path, 'envelope of an injection that never committed');
    }
    for (let s = 0; s < SPLIT; s++) {
      const info = new Set(await this.#fs.readdir(layout.splitDir('info', s)));
      for (const name of await this.#fs.readdir(layout.splitDir('mess', s))) {
        const path = join(layout.splitDir('mess', s), name);
        if (!info.has(name) && !todo.has(name) && (await old(path))) await drop(path, 'message that was never committed or was being removed');
      }
      for (const name of await this.#fs.readdir(layout.splitDir('state', s))) {
        if (!info.has(name) && !todo.has(name)) await drop(join(layout.splitDir('state', s), name), 'state of a message that has left the queue');
      }
    }
  }

  #relative(path: string): string {
    return path.startsWith(this.layout.base) ? `queue${path.slice(this.layout.base.length)}` : path;
  }

  createWriter(origin: QueueOrigin, onCommit: (id: string, committed: CommittedMessage) => void): Promise<QueueWriter> {
    return DiskQueueWriter.open({ layout: this.layout, fs: this.#fs, dirs: this.#dirs, spares: this.#spares, committing: this.#committing, parser: this.#parser, now: this.#now, onCommit }, origin);
  }

  async lockScheduler(): Promise<{ ok: true } | { ok: false; holder: string }> {
    const path = this.layout.sendLock;
    if (locksHeldHere.has(path)) return { ok: false, holder: String(process.pid) };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await this.#fs.open(path, 'wx', 0o600);
        try {
          await this.#fs.write(fh, `${process.pid}\n`);
        } finally {
          await this.#fs.close(fh);
        }
        locksHeldHere.add(path);
        return { ok: true };
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const holder = (await this.#fs.readFile(path).catch(() => Buffer.alloc(0))).toString().trim();
      const pid = Number(holder);
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) return { ok: false, holder };
      await this.#fs.unlink(path).catch(ignoreMissing);
    }
    return { ok: false, holder: 'unknown' };
  }

  async unlockScheduler(): Promise<void> {
    if (!locksHeldHere.delete(this.layout.sendLock)) return;
    await this.#fs.unlink(this.layout.sendLock).catch(ignoreMissing);
  }

  watchUnprocessed(onId: (id: string) => void): () => void {
    const trouble = (err: Error) => this.#log.warn(`warning: unable to watch ${this.#relative(this.layout.todoDir)}: ${err.message}; relying on rescans`);
    try {
      return this.#fs.watch(this.layout.todoDir, (name) => isMessageId(name) && !this.#committing.has(name) && onId(name), trouble);
    } catch (err) {
      trouble(err as Error);
      return () => undefined;
    }
  }

  async listUnprocessed(): Promise<string[]> {
    const ids: string[] = [];
    for (const name of await this.#fs.readdir(this.layout.todoDir)) {
      if (isMessageId(name)) ids.push(name);
      else await this.#quarantineFile(this.layout.todo(name), 'not a queue file name');
    }
    return ids.sort();
  }

  /**
   * Routes a committed message's recipients in memory; nothing is written: `todo/<id>`
   * stays the message's durable record until it is settled or removed, and a crash
   * before then preprocesses it again. A message found with `info/<id>` as well was
   * being settled when a crash came: its `todo/` name is removed and it is 'settled'.
   */
  async preprocess(id: string, route: (recipient: string, sender: string) => Promise<Route>, committed?: CommittedMessage): Promise<Preprocessed | 'settled' | undefined> {
    const { layout } = this;
    try {
      let env: EnvelopeRecord;
      let size: number;
      if (committed) {
        // committed by this process a moment ago: the envelope and size are known, and no state log can exist yet
        ({ envelope: env, size } = committed);
      } else {
        if (await this.#exists(layout.info(id))) {
          await this.#dropTodo(id);
          return 'settled';
        }
        const data = await this.#fs.readFile(layout.todo(id)).catch((err: unknown) => {
          if (errnoCode(err) === 'ENOENT') throw new MessageGone(id);
          throw err;
        });
        env = decodeEnvelope(layout.todo(id), id, data);
        size = await this.#messSize(id);
        // an older version linked intd/<id> to todo/<id>: the file must keep a single name
        await this.#fs.unlink(layout.intd(id)).catch(ignoreMissing);
      }
      const recipients = [];
      for (const recipient of env.recipients) recipients.push({ recipient, route: await route(recipient, env.sender) });
      return { info: { v: 1, id, qp: env.qp, origin: env.origin, birth: env.at, size, sender: env.sender, recipients }, hasState: !committed };
    } catch (err) {
      if (!(err instanceof CorruptQueueFile)) throw err;
      await this.quarantine(id, err.message);
      return undefined;
    }
  }

  async #exists(path: string): Promise<boolean> {
    try {
      await this.#fs.stat(path);
      return true;
    } catch (err) {
      ignoreMissing(err);
      return false;
    }
  }

  /**
   * Stores a preprocessed message that has to wait in `info/<s>/<id>` (written in
   * tmp/, fdatasynced, renamed, `info/<s>/` fsynced), then removes `todo/<id>`
   * durably. A crash in between leaves both: the next start finishes the job.
   */
  async settle(id: string, info: InfoRecord): Promise<void> {
    const { layout } = this;
    const tmp = this.#spares.take() ?? layout.tmp(`${id}.info`);
    try {
      const fh = await this.#fs.open(tmp, 'w', 0o640);
      try {
        await this.#fs.write(fh, encodeInfo(info));
        await this.#fs.sync(fh);
      } finally {
        await this.#fs.close(fh);
      }
      await this.#fs.rename(tmp, layout.info(id));
    } catch (err) {
      await this.#fs.unlink(tmp).catch(() => undefined);
      throw err;
    }
    await this.#dirs.sync(dirname(layout.info(id)));
    await this.#dropTodo(id);
  }

  /** Removes `todo/<id>` durably; its file is recycled once the removal is on disk. */
  async #dropTodo(id: string): Promise<void> {
    const spare = await this.#spares.retire(this.layout.todo(id)).catch((err: unknown) => void ignoreMissing(err));
    try {
      await this.#dirs.sync(this.layout.todoDir);
    } catch (err) {
      if (spare) await this.#fs.unlink(spare).catch(() => undefined);
      throw err;
    }
    this.#spares.keep(spare);
  }

  async #messSize(id: string): Promise<number> {
    try {
      return (await this.#fs.stat(this.layout.mess(id))).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new CorruptQueueFile(this.layout.mess(id), 'message file is missing');
      throw err;
    }
  }

  async scan(batch: (entries: Array<{ id: string; due: number }>) => boolean): Promise<void> {
    for (let s = 0; s < SPLIT; s++) {
      const names: string[] = [];
      for (const name of await this.#fs.readdir(this.layout.splitDir('info', s))) {
        if (isMessageId(name) && splitOf(name) === s) names.push(name);
        else await this.#quarantineFile(join(this.layout.splitDir('info', s), name), 'not a queue file name');
      }
      for (let i = 0; i < names.length; i += STAT_BATCH) {
        const part = names.slice(i, i + STAT_BATCH);
        if (!batch(await Promise.all(part.map(async (id) => ({ id, due: await this.#due(id) }))))) return;
      }
    }
  }

  /** A message's next attempt time is the mtime of its state log (qmail keeps it in local/remote mtimes); no log: now. */
  async #due(id: string): Promise<number> {
    try {
      return (await this.#fs.stat(this.layout.state(id))).mtimeMs;
    } catch (err) {
      ignoreMissing(err);
      return 0;
    }
  }

  async load(id: string, preprocessed?: Preprocessed): Promise<LoadedMessage> {
    if (preprocessed) {
      // preprocessed in this process: info/ does not exist, the record in memory is the routed message
      const { info } = preprocessed;
      const state = preprocessed.hasState ? await this.#readState(id, info.recipients.length) : undefined;
      const progress = state?.progress ?? info.recipients.map(() => ({ done: false, ok: false, attempts: 0, next: 0 }));
      return { info, progress, hasState: state !== undefined, ...(state?.bounced !== undefined && { bounced: state.bounced }), source: fileSource(this.layout.mess(id), info.size) };
    }
    const infoPath = this.layout.info(id);
    let data: Buffer;
    try {
      data = await this.#fs.readFile(infoPath);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new MessageGone(id);
      throw err;
    }
    const info = decodeInfo(infoPath, id, data);
    const size = await this.#messSize(id);
    if (size !== info.size) throw new CorruptQueueFile(this.layout.mess(id), `truncated or altered: ${size} bytes where ${info.size} were queued`);
    const state = await this.#readState(id, info.recipients.length);
    const progress = state?.progress ?? info.recipients.map(() => ({ done: false, ok: false, attempts: 0, next: 0 }));
    return { info, progress, hasState: state !== undefined, ...(state?.bounced !== undefined && { bounced: state.bounced }), source: fileSource(this.layout.mess(id), size) };
  }

  /** The replayed state log of a message, or undefined when it has none. */
  async #readState(id: string, recipients: number): Promise<ReturnType<typeof replayState> | undefined> {
    const statePath = this.layout.state(id);
    let data: Buffer;
    try {
      data = await this.#fs.readFile(statePath);
    } catch (err) {
      ignoreMissing(err);
      return undefined;
    }
    return replayState(statePath, data, recipients);
  }

  /** Appends to a message's state log; appends to one message are serialised so records never interleave. */
  record(id: string, entries: StateEntry[]): Promise<void> {
    const previous = this.#appending.get(id) ?? Promise.resolve();
    const next = previous.then(() => this.#append(id, entries));
    const settled = next.catch(() => undefined);
    this.#appending.set(id, settled);
    void settled.then(() => {
      if (this.#appending.get(id) === settled) this.#appending.delete(id);
    });
    return next;
  }

  async #append(id: string, entries: StateEntry[]): Promise<void> {
    const path = this.layout.state(id);
    let created = true;
    let fh;
    try {
      fh = await this.#fs.open(path, 'ax', 0o640);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      created = false;
      fh = await this.#fs.open(path, 'a', 0o640);
    }
    try {
      await this.#fs.write(fh, encodeState(entries));
      await this.#fs.sync(fh);
    } finally {
      await this.#fs.close(fh);
    }
    if (created) await this.#dirs.sync(dirname(path));
  }

  async setDue(id: string, due: number): Promise<void> {
    const path = this.layout.state(id);
    const when = new Date(due);
    try {
      await this.#fs.utimes(path, when, when);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      await this.#fs.close(await this.#fs.open(path, 'a', 0o640));
      await this.#fs.utimes(path, when, when);
    }
  }

  /**
   * qmail-clean: the message's record first (`info/<s>/<id>`, or `todo/<id>` for a
   * message that was never settled); once its removal is durable the message has
   * left the queue. Then the state log and the body; a crash in between leaves
   * orphans that the next start removes.
   */
  async remove(id: string, how: { hasState?: boolean; size?: number; unsettled?: boolean } = {}): Promise<void> {
    const { layout } = this;
    const record = how.unsettled ? layout.todo(id) : layout.info(id);
    let spare: string | undefined;
    if (how.size === undefined) await this.#fs.unlink(record).catch(ignoreMissing);
    else spare = await this.#spares.retire(record).catch((err: unknown) => void ignoreMissing(err));
    try {
      await this.#dirs.sync(dirname(record));
    } catch (err) {
      if (spare) await this.#fs.unlink(spare).catch(() => undefined);
      throw err;
    }
    this.#spares.keep(spare);
    if (how.hasState !== false) await this.#fs.unlink(layout.state(id)).catch(ignoreMissing);
    if (how.size === undefined) await this.#fs.unlink(layout.mess(id)).catch(ignoreMissing);
    else this.#spares.keep(await this.#spares.retire(layout.mess(id), how.size).catch((err: unknown) => void ignoreMissing(err)));
  }

  /** Unlinks the spare files kept for reuse (when the queue goes idle and when it stops). */
  release(): Promise<void> {
    return this.#spares.drain();
  }

  async quarantine(id: string, reason: string): Promise<string[]> {
    const { layout } = this;
    const moved: string[] = [];
    const files: Array<[string, string]> = [
      [layout.todo(id), 'todo'],
      [layout.intd(id), 'intd'],
      [layout.info(id), 'info'],
      [layout.state(id), 'state'],
      [layout.mess(id), 'mess'],
    ];
    for (const [path, kind] of files) {
      const target = join(layout.quarantineDir, `${id}.${kind}`);
      try {
        await this.#fs.rename(path, target);
        moved.push(this.#relative(path));
      } catch (err) {
        ignoreMissing(err);
      }
    }
    const why = reason.split(`${this.layout.base}/`).join('queue/');
    this.#log.warn(`warning: quarantined ${moved.join(', ') || `message ${id}`}: ${why}; moved to ${this.#relative(layout.quarantineDir)}/`);
    return moved;
  }

  async #quarantineFile(path: string, reason: string): Promise<void> {
    const target = join(this.layout.quarantineDir, `${basename(dirname(path))}.${basename(path)}`);
    await this.#fs.rename(path, target).catch(ignoreMissing);
    this.#log.warn(`warning: quarantined ${this.#relative(path)}: ${reason}; moved to ${this.#relative(target)}`);
  }

  /** Every preprocessed message, read a few at a time ahead of the consumer; unreadable ones are skipped. */
  async *list(): AsyncIterable<QueuedMessageInfo> {
    const tryLoad = (id: string): Promise<{ m?: LoadedMessage; err?: unknown }> =>
      this.load(id).then(
        (m) => ({ m }),
        (err: unknown) => (err instanceof CorruptQueueFile || err instanceof MessageGone || errnoCode(err) === 'ENOENT' ? {} : { err }),
      );
    for (let s = 0; s < SPLIT; s++) {
      const names = (await this.#fs.readdir(this.layout.splitDir('info', s))).filter(isMessageId).sort();
      const ahead: Array<Promise<{ m?: LoadedMessage; err?: unknown }>> = [];
      for (let i = 0; i < names.length || ahead.length > 0; ) {
        while (i < names.length && ahead.length < LIST_AHEAD) ahead.push(tryLoad(names[i++]!));
        const { m, err } = await ahead.shift()!;
        if (err) throw err;
        if (m) yield describe(m);
      }
    }
  }

  async counts(): Promise<StoreCounts> {
    let messages = 0;
    const pending: Record<string, number> = {};
    for (let s = 0; s < SPLIT; s++) {
      messages += (await this.#fs.readdir(this.layout.splitDir('mess', s))).length;
    }
    for await (const m of this.list()) {
      for (const r of m.recipients) if (r.state === 'pending' || r.state === 'deferred') pending[r.channel] = (pending[r.channel] ?? 0) + 1;
    }
    const unprocessed = (await this.#fs.readdir(this.layout.todoDir)).length;
    return { messages, unprocessed, pending };
  }
}

/**
 * True while the process can still deliver. A zombie (killed, not yet reaped:
 * right after a SIGKILL of a whole process group) answers kill(pid, 0) but is
 * gone: on Linux its /proc state says so.
 */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}

function stateOf(p: RecipientProgress): QueuedRecipient['state'] {
  if (p.done) return p.ok ? 'delivered' : 'failed';
  return p.attempts > 0 ? 'deferred' : 'pending';
}

export function describe(m: LoadedMessage): QueuedMessageInfo {
  return {
    id: m.info.id,
    sender: m.info.sender,
    size: m.info.size,
    queuedAt: new Date(m.info.birth),
    recipients: m.info.recipients.map((r, i) => {
      const p = m.progress[i]!;
      return {
        recipient: r.recipient,
        address: r.route.address,
        channel: r.route.channel,
        state: stateOf(p),
        attempts: p.attempts,
        ...(!p.done && p.attempts > 0 && { nextAttempt: new Date(p.next) }),
        ...(p.text !== undefined && { lastText: p.text }),
      };
    }),
  };
}
