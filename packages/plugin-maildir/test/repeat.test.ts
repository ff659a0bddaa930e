import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bufferSource, deliveryKey } from '@quail/core';
import { MaildirStore } from '@quail/plugin-maildir';
import { tempDir } from './helpers.js';

const delivery = { messageId: '1795259175.4711', queuedAt: new Date(Date.UTC(2026, 10, 21, 11, 6, 15)) };

describe('keyed deliveries (a retry after a crash)', () => {
  it('store one copy when the same delivery is made twice', async () => {
    const { dir, cleanup } = await tempDir();
    const store = new MaildirStore({ hostname: 'mx.example.test' });
    await store.create(dir);
    const key = deliveryKey(delivery, 'joe@example.test');
    const first = await store.deliver(dir, bufferSource('Subject: once\n\nbody\n'), { prepend: 'Delivered-To: joe@example.test\n', key });
    const again = await store.deliver(dir, bufferSource('Subject: once\n\nbody\n'), { prepend: 'Delivered-To: joe@example.test\n', key });
    expect(first.repeated).toBeUndefined();
    expect(again).toMatchObject({ uid: first.uid, repeated: true });
    expect(first.uid).toMatch(/^1795259175\.M000000Q[0-9a-f]{24}\.mx\.example\.test,S=\d+,W=\d+$/);
    expect(await readdir(join(dir, 'new'))).toEqual([first.uid]);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    await cleanup();
  });

  it('keep separate copies for other recipients and other parts', async () => {
    const { dir, cleanup } = await tempDir();
    const store = new MaildirStore();
    await store.create(dir);
    const src = () => bufferSource('Subject: x\n\nbody\n');
    await store.deliver(dir, src(), { key: deliveryKey(delivery, 'a@example.test') });
    await store.deliver(dir, src(), { key: deliveryKey(delivery, 'b@example.test') });
    await store.deliver(dir, src(), { key: deliveryKey(delivery, 'b@example.test', 'line 2') });
    await store.deliver(dir, src());
    await store.deliver(dir, src());
    expect(await readdir(join(dir, 'new'))).toHaveLength(5);
    await cleanup();
  });

  it('replace a tmp/ file left by a crashed attempt of the same delivery', async () => {
    const { dir, cleanup } = await tempDir();
    const store = new MaildirStore({ hostname: 'mx.example.test' });
    await store.create(dir);
    const key = deliveryKey(delivery, 'joe@example.test');
    await writeFile(join(dir, 'tmp', `${key}.mx.example.test`), 'Subject: half writ');
    const stored = await store.deliver(dir, bufferSource('Subject: whole\n\nbody\n'), { key });
    expect(await readFile(stored.path, 'utf8')).toBe('Subject: whole\n\nbody\n');
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    await cleanup();
  });

  it('count a repeated delivery once against the quota', async () => {
    const { dir, cleanup } = await tempDir();
    const store = new MaildirStore();
    await store.create(dir);
    const key = deliveryKey(delivery, 'joe@example.test');
    const quota = { bytes: 1_000_000, messages: 100 };
    await store.deliver(dir, bufferSource('Subject: q\n\nbody\n'), { key, quota });
    await store.deliver(dir, bufferSource('Subject: q\n\nbody\n'), { key, quota });
    expect(await store.usage(dir)).toEqual({ bytes: 17, messages: 1 });
    await cleanup();
  });

  it('refuse a key that is not a delivery key', async () => {
    const { dir, cleanup } = await tempDir();
    const store = new MaildirStore();
    await store.create(dir);
    await expect(store.deliver(dir, bufferSource('x\n'), { key: '../../etc/passwd' })).rejects.toMatchObject({ code: 'QUAIL_E_INVALID' });
    expect(await readdir(join(dir, 'new'))).toEqual([]);
    await cleanup();
  });
});
