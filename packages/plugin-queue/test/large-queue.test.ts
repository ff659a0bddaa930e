import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { success } from '@quail/core';
import { nodeQueueFs, type QueueFs } from '@quail/plugin-queue';
import { harness, queueFiles, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

const COUNT = 20_000;
const BODY = `Subject: bulk\n\n${'x'.repeat(4000)}\n`;

/** Writes COUNT preprocessed messages straight into the queue layout (as a long-running server would leave them). */
async function generate(root: string): Promise<string[]> {
  const ids: string[] = [];
  for (let s = 0; s < 23; s++) {
    await mkdir(join(root, 'queue', 'mess', String(s)), { recursive: true });
    await mkdir(join(root, 'queue', 'info', String(s)), { recursive: true });
  }
  const birth = Date.UTC(2026, 0, 1);
  for (let i = 0; i < COUNT; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, COUNT - i) }, async (_, j) => {
        const n = i + j;
        const id = `${birth}.${n.toString(16).padStart(10, '0')}`;
        const s = String(n % 23);
        const rcpt = n % 2 ? `user${n}@example.com` : `user${n}@remote${n % 50}.example`;
        const route = { channel: n % 2 ? 'local' : 'remote', recipient: rcpt, address: rcpt };
        const info = { v: 1, id, qp: n + 1, origin: { kind: 'bounce' }, birth, size: BODY.length, sender: 'bulk@example.org', recipients: [{ recipient: rcpt, route }] };
        await writeFile(join(root, 'queue', 'mess', s, id), BODY);
        await writeFile(join(root, 'queue', 'info', s, id), `${JSON.stringify(info)}\n`);
        ids.push(id);
      }),
    );
  }
  return ids;
}

describe('a queue of 20,000 messages', () => {
  it('starts, lists and schedules without reading bodies or loading every message', { timeout: 180_000 }, async () => {
    const reads = { info: 0, mess: 0, other: 0 };
    const fs: QueueFs = {
      ...nodeQueueFs,
      readFile: (path) => {
        const kind = path.split('/').at(-3);
        if (kind === 'info' || kind === 'mess') reads[kind]++;
        else reads.other++;
        return nodeQueueFs.readFile(path);
      },
      sync: async () => undefined,
      syncDir: async () => undefined,
    };
    h = await harness(() => success('ok'), { control: { concurrencylocal: '0', concurrencyremote: '0' }, queue: { fs } });
    await h.server.stop();
    const started = Date.now();
    const ids = await generate(h.root);

    const heapBefore = process.memoryUsage().heapUsed;
    await h.restart();
    await h.queue.idle();
    expect(reads).toEqual({ info: 1, mess: 0, other: 1 });
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);

    let listed = 0;
    for await (const m of h.queue.list()) {
      listed++;
      expect(m.size).toBe(BODY.length);
    }
    expect(listed).toBe(COUNT);
    expect(reads.mess).toBe(0);

    await writeFile(join(h.root, 'control', 'concurrencylocal'), '10\n');
    await writeFile(join(h.root, 'control', 'concurrencyremote'), '20\n');
    expect(await h.server.reload()).toBe(true);
    await h.queue.idle();
    expect(new Set(h.deliveries.map((d) => d.delivery.messageId))).toEqual(new Set(ids));
    console.log(`20,000 messages: generated, started, listed and delivered in ${Date.now() - started} ms`);
    expect(h.deliveries).toHaveLength(COUNT);
    expect(reads.mess).toBe(0);
    expect(await queueFiles(h.root)).toEqual([]);
  });
});
