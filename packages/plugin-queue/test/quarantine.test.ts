import { readdir, readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { success } from '@quail/core';
import { harness, queueFiles, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

const split = (id: string) => String(Number.parseInt(id.slice(-6), 16) % 23);

/** Writes a state log as a crash would leave it: its mtime is the (test clock's) time of the write. */
async function writeState(path: string, text: string): Promise<void> {
  await writeFile(path, text);
  const now = new Date(h!.clock.now());
  await utimes(path, now, now);
}

describe('corrupt queue files', () => {
  it('moves corrupt and truncated files aside with a log line naming them, and delivers the rest', async () => {
    h = await harness(() => success('ok'), { control: { concurrencylocal: '0' } });
    const enqueue = (n: number) => h!.queue.enqueue({ sender: 'a@example.org', recipients: [`u${n}@example.com`] }, `Subject: ${n}\n\nbody ${n}\n`, { kind: 'bounce' });
    const [good, badInfo, truncated, badState, good2] = await Promise.all([0, 1, 2, 3, 4].map(enqueue));
    await h.queue.idle();
    await h.server.stop();
    const q = join(h.root, 'queue');
    await writeFile(join(q, 'info', split(badInfo!.id), badInfo!.id), '{"v":1,"id":"');
    await truncate(join(q, 'mess', split(truncated!.id), truncated!.id), 10);
    await writeState(join(q, 'state', split(badState!.id), badState!.id), 'not json\n{"k":"defer","i":0,"t":"x","next":0}\n');
    const fakeTodo = '1767225600000.00000000aa';
    await writeFile(join(q, 'mess', split(fakeTodo), fakeTodo), 'a body\n');
    await writeFile(join(q, 'todo', fakeTodo), '\0\0garbage');
    await writeFile(join(q, 'info', '3', 'stray-file'), 'who put this here');
    await writeFile(join(h.root, 'control', 'concurrencylocal'), '10\n');
    await h.restart();
    await h.queue.idle();

    expect(h.deliveries.map((d) => d.delivery.messageId).sort()).toEqual([good!.id, good2!.id].sort());
    const moved = (await readdir(join(q, 'quarantine'))).sort();
    expect(moved).toEqual(
      [
        `${badInfo!.id}.info`,
        `${badInfo!.id}.mess`,
        `${truncated!.id}.info`,
        `${truncated!.id}.mess`,
        `${badState!.id}.info`,
        `${badState!.id}.mess`,
        `${badState!.id}.state`,
        `${fakeTodo}.todo`,
        `${fakeTodo}.mess`,
        '3.stray-file',
      ].sort(),
    );
    const warnings = h.logs.filter((l) => l.startsWith('warning: quarantined'));
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^warning: quarantined queue/info/${split(badInfo!.id)}/${badInfo!.id}, queue/mess/.*: queue/info/.*${badInfo!.id}: truncated`)),
        expect.stringContaining(`queue/mess/${split(truncated!.id)}/${truncated!.id}: truncated or altered: 10 bytes where`),
        expect.stringContaining(`queue/state/${split(badState!.id)}/${badState!.id}: line 1 is not valid JSON`),
        expect.stringContaining(`: queue/todo/${fakeTodo}: truncated (no final newline)`),
        'warning: quarantined queue/info/3/stray-file: not a queue file name; moved to queue/quarantine/3.stray-file',
      ]),
    );
    expect((await queueFiles(h.root)).filter((f) => !f.startsWith('quarantine/'))).toEqual([]);
    expect(await readFile(join(q, 'quarantine', `${fakeTodo}.mess`), 'utf8')).toBe('a body\n');
  });

  it('ignores a delivery record cut short by a crash and tries that recipient again', async () => {
    h = await harness(() => success('ok'), { control: { concurrencylocal: '0' } });
    const r = await h.queue.enqueue({ sender: 'a@example.org', recipients: ['x@example.com', 'y@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    await h.server.stop();
    await writeState(join(h.root, 'queue', 'state', split(r.id), r.id), '{"k":"done","i":0,"ok":true,"t":"did 1+0+0\\n"}\n{"k":"done","i":1,"ok":tr');
    await writeFile(join(h.root, 'control', 'concurrencylocal'), '10\n');
    await h.restart();
    await h.queue.idle();
    expect(h.deliveries.map((d) => d.delivery.recipients[0]!.recipient)).toEqual(['y@example.com']);
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('removes what an interrupted injection left behind when it starts', async () => {
    h = await harness(() => success('ok'));
    await h.server.stop();
    const q = join(h.root, 'queue');
    const id = '1767225600000.00000000bb';
    await writeFile(join(q, 'tmp', id), 'half a bo');
    await writeFile(join(q, 'mess', split(id), id), 'complete body, but never committed\n');
    await writeFile(join(q, 'intd', id), '{"v":1');
    await writeFile(join(q, 'state', '5', '1767225600000.00000000cc'), '');
    await new Promise((r) => setTimeout(r, 20));
    await h.restart();
    await h.queue.idle();
    expect(await queueFiles(h.root)).toEqual([]);
    expect(h.deliveries).toHaveLength(0);
    expect(h.logs).toEqual(expect.arrayContaining([`removed queue/tmp/${id}: left over from an interrupted injection`]));
  });
});

describe('hostile queue files', () => {
  const cases: Array<[string, 'info' | 'state', (id: string, good: string) => string, RegExp]> = [
    ['an info file naming another message (path traversal)', 'info', (_id, good) => good.replace(/"id":"[^"]+"/, '"id":"../../../etc/passwd"'), /does not match the file name/],
    ['an info file with recipients that are not records', 'info', (_id, good) => good.replace(/"recipients":\[.*\]/, '"recipients":["x"]'), /bad recipient record/],
    ['an info file of a future version', 'info', (_id, good) => good.replace('"v":1', '"v":2'), /unknown version 2/],
    ['an info file with NUL bytes', 'info', (_id, good) => good.replace('{', '{\0\0'), /not valid JSON/],
    ['an info file of 10 MB on one line', 'info', () => `${'A'.repeat(10 * 1024 * 1024)}\n`, /not valid JSON/],
    ['a state record for a recipient that does not exist', 'state', () => '{"k":"done","i":7,"ok":true,"t":"x"}\n', /line 1 is not a delivery record/],
    ['a state record of an unknown kind', 'state', () => '{"k":"rm -rf","i":0,"t":"x"}\n', /line 1 is not a delivery record/],
    ['a state log with a 10 MB line', 'state', () => `${'{'.repeat(10 * 1024 * 1024)}\n`, /line 1 is not valid JSON/],
  ];

  it.each(cases)('quarantines %s and keeps delivering the others', async (_name, kind, mangle, reason) => {
    h = await harness(() => success('ok'), { control: { concurrencylocal: '0' } });
    const bad = await h.queue.enqueue({ sender: 'a@example.org', recipients: ['bad@example.com'] }, 'x\n', { kind: 'bounce' });
    const good = await h.queue.enqueue({ sender: 'a@example.org', recipients: ['good@example.com'] }, 'y\n', { kind: 'bounce' });
    await h.queue.idle();
    await h.server.stop();
    const infoPath = join(h.root, 'queue', 'info', split(bad.id), bad.id);
    const info = await readFile(infoPath, 'utf8');
    if (kind === 'info') await writeFile(infoPath, mangle(bad.id, info));
    else await writeState(join(h.root, 'queue', 'state', split(bad.id), bad.id), mangle(bad.id, info));
    await writeFile(join(h.root, 'control', 'concurrencylocal'), '10\n');
    await h.restart();
    await h.queue.idle();
    expect(h.deliveries.map((d) => d.delivery.messageId)).toEqual([good.id]);
    expect(h.logs.find((l) => l.startsWith('warning: quarantined'))).toMatch(reason);
    expect((await readdir(join(h.root, 'queue', 'quarantine'))).sort()).toContain(`${bad.id}.${kind}`);
  });
});
