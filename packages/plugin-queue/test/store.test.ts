import { afterEach, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, success, type MessageParser } from '@quail/core';
import { ManualClock, tempRoot } from '@quail/core/testing';
import { DiskQueueStore, formatQread, nodeQueueFs, safeLogText, type QueueFs } from '@quail/plugin-queue';
import { CONTROL, harness, queueFiles, type Harness } from './helpers.js';

let cleanup: (() => Promise<void>) | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
  await cleanup?.();
  cleanup = undefined;
});

/** These tests never parse a message. */
const unusedParser: MessageParser = {
  headers: () => Promise.reject(new Error('not parsed in these tests')),
  parse: () => Promise.reject(new Error('not parsed in these tests')),
};

async function openStore(fs = nodeQueueFs, settle = true) {
  const made = await tempRoot(CONTROL);
  cleanup = made.cleanup;
  const clock = new ManualClock(Date.UTC(2024, 2, 5, 9, 4, 1));
  const store = new DiskQueueStore({ root: made.root, fs, parser: unusedParser, now: () => clock.now(), log: createLogger({ level: 'silent' }) });
  await store.open();
  const writer = await store.createWriter({ kind: 'network', remoteAddress: '192.0.2.1' }, () => undefined);
  writer.stream.end('Subject: x\n\nbody\n');
  const { id } = await writer.commit({ sender: 'alice@example.org', recipients: ['a@example.com', 'b@far.example', 'c\u0001@far.example'] });
  const preprocessed = await store.preprocess(id, async (recipient) => ({ channel: recipient.startsWith('a') ? 'local' : 'remote', recipient, address: recipient }));
  if (!preprocessed || preprocessed === 'settled') throw new Error('the message was not preprocessed in memory');
  if (settle) await store.settle(id, preprocessed.info);
  return { store, id, root: made.root, info: preprocessed.info };
}

describe('DiskQueueStore', () => {
  it('never loses a record when appends to one message race', async () => {
    let slow = false;
    const { store, id } = await openStore({
      ...nodeQueueFs,
      write: async (fh, data) => {
        // The first append (the one creating the log) is the slowest, so the others would overtake it.
        if (slow) {
          slow = false;
          await new Promise((r) => setTimeout(r, 30));
        }
        return nodeQueueFs.write(fh, data);
      },
    });
    slow = true;
    await Promise.all(Array.from({ length: 60 }, (_, n) => store.record(id, [{ k: 'defer', i: n % 3, t: `try ${n}`, next: n }])));
    const { progress } = await store.load(id);
    expect(progress.map((p) => p.attempts)).toEqual([20, 20, 20]);
  });

  it('lists per-recipient state the way qmail-qread prints it', async () => {
    const { store, id } = await openStore();
    await store.record(id, [
      { k: 'done', i: 0, ok: true, t: 'did 1+0+0\n' },
      { k: 'done', i: 1, ok: false, t: 'no such user\n' },
    ]);
    const listed = [];
    for await (const m of store.list()) listed.push(m);
    expect(listed).toHaveLength(1);
    const size = listed[0]!.size;
    expect(formatQread(listed[0]!)).toBe(
      `5 Mar 2024 09:04:01 GMT  #${id}  ${size}  <alice@example.org>  bouncing\n  done\tlocal\ta@example.com\n  done\tremote\tb@far.example\n\tremote\tc_@far.example\n`,
    );
    expect(listed[0]!.recipients.map((r) => r.state)).toEqual(['delivered', 'failed', 'pending']);
  });

  it('after a crash, preprocesses a message still in todo/ again and honours its state log', async () => {
    const { store, id, root } = await openStore(nodeQueueFs, false);
    // the remote recipient was delivered and recorded before the crash; the others were not
    await store.record(id, [{ k: 'done', i: 1, ok: true, t: 'remote said 250\n' }]);
    h = await harness(() => success('delivered'), { root });
    await h.queue.idle();
    expect(h.deliveries.map((d) => d.delivery.recipients.map((r) => r.recipient))).toEqual([['a@example.com'], ['c\u0001@far.example']]);
    expect(await queueFiles(root)).toEqual([]);
  });

  it('finishes a settle that a crash interrupted (info/ written, todo/ still there) and delivers once', async () => {
    const { store, id, root, info } = await openStore(nodeQueueFs, false);
    const todo = join(root, 'queue', 'todo', id);
    const envelope = await readFile(todo);
    await store.settle(id, info);
    await writeFile(todo, envelope);
    h = await harness(() => success('delivered'), { root });
    await h.queue.idle();
    expect(h.deliveries.flatMap((d) => d.delivery.recipients.map((r) => r.recipient)).sort()).toEqual(['a@example.com', 'b@far.example', 'c\u0001@far.example']);
    expect(await queueFiles(root)).toEqual([]);
  });

  it('delivers a message at its first attempt with two file syncs and three directory syncs, never writing info/', async () => {
    const calls: string[] = [];
    const counting: QueueFs = {
      ...nodeQueueFs,
      sync: (fd) => (calls.push('sync'), nodeQueueFs.sync(fd)),
      syncDir: (path) => (calls.push(`syncDir ${path.split('/queue/')[1]!.replace(/\/\d+$/, '/<s>')}`), nodeQueueFs.syncDir(path)),
      open: (path, flags, mode) => (calls.push(`open ${path.split('/queue/')[1]!.split('/')[0]}`), nodeQueueFs.open(path, flags, mode)),
    };
    h = await harness(() => success('delivered'), { queue: { fs: counting } });
    await h.queue.idle();
    calls.length = 0;
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
    expect(calls.sort()).toEqual(['open tmp', 'open tmp', 'sync', 'sync', 'syncDir mess/<s>', 'syncDir todo', 'syncDir todo']);
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it("makes report text safe for the log as qmail-send does", () => {
    expect(safeLogText('did 1+0+0\n')).toBe('did_1+0+0/');
    expect(safeLogText('100% sure\tnow\u00e9\n')).toBe('100__sure_now_/');
  });
});
