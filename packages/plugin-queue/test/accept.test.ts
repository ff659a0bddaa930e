import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { success } from '@quail/core';
import { formatQstat, receivedLine } from '@quail/plugin-queue';
import { harness, listAll, queueFiles, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

describe('acceptance (qmail-queue)', () => {
  it('keeps a message invisible until commit, then stores it with the Received line on top and delivers it', async () => {
    h = await harness(() => success('did 1+0+0'));
    const writer = await h.queue.create({ kind: 'network', remoteAddress: '192.0.2.7' });
    writer.stream.write('Received: from client by mx.example.com with SMTP; x\n');
    writer.stream.end('Subject: hi\n\nbody\n');
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(0);
    expect(await listAll(h.queue)).toEqual([]);
    expect(await h.queue.stat()).toMatchObject({ messages: 0, unprocessed: 0 });
    expect((await queueFiles(h.root)).filter((f) => !f.startsWith('tmp/'))).toEqual([]);

    const receipt = await writer.commit({ sender: 'alice@example.org', recipients: ['joe@example.com'] });
    expect(receipt.id).toBe(writer.id);
    expect(receipt.qp).toBeGreaterThan(0);
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
    const { delivery, body } = h.deliveries[0]!;
    expect(body).toBe(`Received: (qmail ${receipt.qp} invoked from network); 1 Jan 2026 00:00:00 -0000\nReceived: from client by mx.example.com with SMTP; x\nSubject: hi\n\nbody\n`);
    expect(delivery).toMatchObject({ messageId: receipt.id, sender: 'alice@example.org', channel: 'local', attempt: 1, id: 1 });
    expect(delivery.recipients).toEqual([{ recipient: 'joe@example.com', route: { channel: 'local', recipient: 'joe@example.com', address: 'joe@example.com' } }]);
    expect(await queueFiles(h.root)).toEqual([]);
    expect(h.logs).toEqual(
      expect.arrayContaining([
        `new msg ${receipt.id}`,
        `info msg ${receipt.id}: bytes ${body.length} from <alice@example.org> qp ${receipt.qp} uid ${process.getuid!()}`,
        `starting delivery 1: msg ${receipt.id} to local joe@example.com`,
        'delivery 1: success: did_1+0+0/',
        `end msg ${receipt.id}`,
      ]),
    );
  });

  it('lets data hooks read the staged message before commit', async () => {
    h = await harness(() => success('ok'));
    const writer = await h.queue.create({ kind: 'local', uid: 1000 });
    writer.stream.end('Subject: staged\n\nx\n');
    await new Promise((r) => writer.stream.once('finish', r));
    const message = writer.message();
    expect((await message.headers()).get('subject')).toBe('staged');
    const chunks: Buffer[] = [];
    for await (const c of message.stream()) chunks.push(c as Buffer);
    expect(message.size).toBe(Buffer.concat(chunks).length);
    expect(Buffer.concat(chunks).toString()).toMatch(/^Received: \(qmail \d+ invoked by uid 1000\); 1 Jan 2026 00:00:00 -0000\nSubject: staged\n/);
    await writer.abort();
  });

  it('leaves nothing behind after abort, also when aborted twice', async () => {
    h = await harness(() => success('ok'));
    const writer = await h.queue.create({ kind: 'network', remoteAddress: '::1' });
    writer.stream.write('half a message');
    await writer.abort();
    await writer.abort();
    expect(await queueFiles(h.root)).toEqual([]);
    await expect(writer.commit({ sender: 'a@b.c', recipients: ['x@example.com'] })).rejects.toMatchObject({ code: 'QUAIL_E_STATE' });
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(0);
  });

  it('writes the Received line for each origin as qmail-queue does', () => {
    const t = Date.UTC(2024, 2, 5, 9, 4, 1);
    expect(receivedLine(4242, { kind: 'network', remoteAddress: '192.0.2.1' }, t)).toBe('Received: (qmail 4242 invoked from network); 5 Mar 2024 09:04:01 -0000\n');
    expect(receivedLine(7, { kind: 'bounce' }, t)).toBe('Received: (qmail 7 invoked for bounce); 5 Mar 2024 09:04:01 -0000\n');
    expect(receivedLine(7, { kind: 'forward' }, t)).toBe('Received: (qmail 7 invoked by alias); 5 Mar 2024 09:04:01 -0000\n');
    expect(receivedLine(7, { kind: 'local', uid: 89 }, t)).toBe('Received: (qmail 7 invoked by uid 89); 5 Mar 2024 09:04:01 -0000\n');
  });

  it('refuses envelope addresses it cannot store, permanently, and keeps nothing', async () => {
    h = await harness(() => success('ok'));
    await expect(h.queue.enqueue({ sender: 'a@b.c', recipients: [`${'x'.repeat(1003)}@example.com`] }, 'x\n', { kind: 'bounce' })).rejects.toMatchObject({ code: 'QUAIL_E_PERMANENT' });
    await expect(h.queue.enqueue({ sender: 'a@b.c\nRCPT TO:<evil@x>', recipients: ['x@example.com'] }, 'x\n', { kind: 'bounce' })).rejects.toMatchObject({ code: 'QUAIL_E_PERMANENT' });
    await expect(h.queue.enqueue({ sender: 'a@b.c', recipients: ['x\0@example.com'] }, 'x\n', { kind: 'bounce' })).rejects.toMatchObject({ code: 'QUAIL_E_PERMANENT' });
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('takes a message without recipients and lets it leave the queue at once', async () => {
    h = await harness(() => success('ok'));
    const r = await h.queue.enqueue({ sender: 'a@example.org', recipients: [] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(0);
    expect(h.logs).toContain(`end msg ${r.id}`);
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('streams a 10 MB message with a 10 MB line through unchanged', async () => {
    h = await harness(() => success('ok'));
    const big = `Subject: big\n\n${'y'.repeat(10 * 1024 * 1024)}\n`;
    const writer = await h.queue.create({ kind: 'network', remoteAddress: '192.0.2.1' });
    for (let i = 0; i < big.length; i += 65536) writer.stream.write(big.slice(i, i + 65536));
    writer.stream.end();
    await writer.commit({ sender: 'a@example.org', recipients: ['joe@example.com'] });
    await h.queue.idle();
    const { body, delivery } = h.deliveries[0]!;
    expect(body.slice(body.indexOf('\n') + 1)).toBe(big);
    expect(delivery.message.size).toBe(Buffer.byteLength(body));
  });

  it('gives unique ids to messages committed at the same instant, and counts them in stat', async () => {
    h = await harness(() => undefined, { control: { concurrencylocal: '0' } });
    const receipts = await Promise.all(Array.from({ length: 50 }, (_, i) => h!.queue.enqueue({ sender: '', recipients: [`u${i}@example.com`] }, `n ${i}\n`, { kind: 'bounce' })));
    expect(new Set(receipts.map((r) => r.id)).size).toBe(50);
    await h.queue.idle();
    const stat = await h.queue.stat();
    expect(stat).toEqual({ messages: 50, unprocessed: 0, pending: { local: 50 }, paused: false });
    expect(formatQstat(stat)).toBe('messages in queue: 50\nmessages in queue but not yet preprocessed: 0\n');
    const stored = await readFile(join(h.root, 'queue', 'mess', String(Number.parseInt(receipts[0]!.id.slice(-6), 16) % 23), receipts[0]!.id), 'utf8');
    expect(stored).toBe(`Received: (qmail ${receipts[0]!.qp} invoked for bounce); 1 Jan 2026 00:00:00 -0000\nn 0\n`);
  });
});
