import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bufferSource } from '@quail/core';
import { formatQuota, MaildirStore, parseQuotaDefinition } from '@quail/plugin-maildir';
import { tempDir } from './helpers.js';

let cleanup: () => Promise<void>;
let store: MaildirStore;
let maildir: string;

beforeEach(async () => {
  let dir: string;
  ({ dir, cleanup } = await tempDir());
  store = new MaildirStore({ hostname: 'mx' });
  maildir = join(dir, 'Maildir');
  await store.create(maildir);
});
afterEach(() => cleanup());

const sizeFile = () => readFile(join(maildir, 'maildirsize'), 'utf8');
const msg = (n: number) => bufferSource('x'.repeat(n - 1) + '\n');

describe('quota definitions', () => {
  it('format and parse the Maildir++ first line', () => {
    expect(formatQuota({ bytes: 10485760, messages: 1000 })).toBe('10485760S,1000C');
    expect(formatQuota({ bytes: 5000 })).toBe('5000S');
    expect(formatQuota({ messages: 7 })).toBe('7C');
    expect(parseQuotaDefinition('10485760S,1000C')).toEqual({ bytes: 10485760, messages: 1000 });
    expect(parseQuotaDefinition('1000C')).toEqual({ messages: 1000 });
    expect(parseQuotaDefinition('10MB')).toBeUndefined();
    expect(parseQuotaDefinition('1000S,x')).toBeUndefined();
  });
});

describe('maildirsize accounting', () => {
  it('creates the file on the first delivery with a quota and appends one line per delivery', async () => {
    const quota = { bytes: 10000, messages: 10 };
    await store.deliver(maildir, msg(100), { quota, prepend: 'Delivered-To: u@x\n' });
    await store.deliver(maildir, msg(200), { quota });
    expect(await sizeFile()).toBe('10000S,10C\n0 0\n118 1\n200 1\n');
    expect(await store.usage(maildir)).toEqual({ bytes: 318, messages: 2 });
  });

  it('counts what was already there when the file is missing', async () => {
    await store.deliver(maildir, msg(50));
    await store.deliver(maildir, msg(60), { folder: 'Sent' });
    await store.deliver(maildir, msg(70), { quota: { bytes: 1000 } });
    expect(await sizeFile()).toBe('1000S\n110 2\n70 1\n');
  });

  it('refuses a message that does not fit in bytes, with QUAIL_E_QUOTA, and delivers nothing', async () => {
    const quota = { bytes: 300 };
    await store.deliver(maildir, msg(200), { quota });
    await store.deliver(maildir, msg(100), { quota });
    await expect(store.deliver(maildir, msg(1), { quota })).rejects.toMatchObject({ code: 'QUAIL_E_QUOTA', message: expect.stringMatching(/^user is over quota/) });
    expect((await store.open(maildir).then((b) => b.list())).length).toBe(2);
  });

  it('refuses a message over the message count', async () => {
    const quota = { bytes: 1_000_000, messages: 2 };
    await store.deliver(maildir, msg(10), { quota });
    await store.deliver(maildir, msg(10), { quota });
    await expect(store.deliver(maildir, msg(10), { quota })).rejects.toMatchObject({ code: 'QUAIL_E_QUOTA' });
  });

  it('counts the prepended header lines against the quota', async () => {
    await expect(store.deliver(maildir, msg(100), { quota: { bytes: 110 }, prepend: 'Delivered-To: user@example.com\n' })).rejects.toMatchObject({ code: 'QUAIL_E_QUOTA' });
  });

  it('applies no limit to deliveries without a quota, but still keeps an existing file up to date', async () => {
    await store.deliver(maildir, msg(10), { quota: { bytes: 15 } });
    await store.deliver(maildir, msg(100));
    expect(await sizeFile()).toBe('15S\n0 0\n10 1\n100 1\n');
  });

  it('frees space when a message is removed (a negative line)', async () => {
    const quota = { messages: 1 };
    const stored = await store.deliver(maildir, msg(40), { quota });
    const box = await store.open(maildir);
    await box.remove(stored.uid);
    expect(await sizeFile()).toBe('1C\n0 0\n40 1\n-40 -1\n');
    await store.deliver(maildir, msg(40), { quota });
  });

  it('rebuilds the file when it reaches 5120 bytes, skipping .Trash and T-flagged mail', async () => {
    const quota = { bytes: 1_000_000 };
    const kept = await store.deliver(maildir, msg(10), { quota });
    await store.deliver(maildir, msg(1000), { folder: 'Trash' });
    const trashed = await store.deliver(maildir, msg(2000));
    await (await store.open(maildir)).setFlags(trashed.uid, { add: 'T' });
    await store.deliver(maildir, msg(20), { folder: 'Archive' });
    await writeFile(join(maildir, 'maildirsize'), `1000000S\n${'1 1\n'.repeat(1300)}`);
    expect((await stat(join(maildir, 'maildirsize'))).size).toBeGreaterThanOrEqual(5120);
    await store.deliver(maildir, msg(5), { quota });
    expect(await sizeFile()).toBe('1000000S\n30 2\n5 1\n');
    expect(kept.size).toBe(10);
  });

  it('rebuilds when the quota changed, the file is malformed, or it is older than 15 minutes', async () => {
    await store.deliver(maildir, msg(10), { quota: { bytes: 100 } });
    await store.deliver(maildir, msg(10), { quota: { bytes: 200 } });
    expect(await sizeFile()).toBe('200S\n10 1\n10 1\n');
    await writeFile(join(maildir, 'maildirsize'), '200S\n5 1\nnonsense\n');
    await store.deliver(maildir, msg(10), { quota: { bytes: 200 } });
    expect(await sizeFile()).toBe('200S\n20 2\n10 1\n');
    await writeFile(join(maildir, 'maildirsize'), '200S\n999999 0\n');
    const old = Date.now() / 1000 - 16 * 60;
    await utimes(join(maildir, 'maildirsize'), old, old);
    await store.deliver(maildir, msg(10), { quota: { bytes: 200 } });
    expect(await sizeFile()).toBe('200S\n30 3\n10 1\n');
  });

  it('trusts a fresh file (deletions by quota-unaware readers show at the next rebuild)', async () => {
    await store.deliver(maildir, msg(10), { quota: { bytes: 100 } });
    await writeFile(join(maildir, 'maildirsize'), '100S\n95 1\n');
    await expect(store.deliver(maildir, msg(10), { quota: { bytes: 100 } })).rejects.toMatchObject({ code: 'QUAIL_E_QUOTA' });
  });

  it('is a temporary failure (not over quota) when the maildir is broken', async () => {
    await expect(store.deliver(join(maildir, 'missing'), msg(10), { quota: { bytes: 100 } })).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
  });
});
