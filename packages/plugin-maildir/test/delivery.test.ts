import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bufferSource, createServer, fileSource, Tokens, type MailStore } from '@quail/core';
import maildirPlugin, { MaildirStore } from '@quail/plugin-maildir';
import { chunkedSource, collect, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let store: MaildirStore;
let maildir: string;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  store = new MaildirStore({ hostname: 'mx.example.com' });
  maildir = join(dir, 'Maildir');
  await store.create(maildir);
});
afterEach(() => cleanup());

describe('maildirmake', () => {
  it('creates tmp, new and cur with mode 0700 and leaves an existing maildir alone', async () => {
    for (const sub of ['', 'tmp', 'new', 'cur']) {
      const info = await stat(join(maildir, sub));
      expect(info.isDirectory()).toBe(true);
      expect(info.mode & 0o777).toBe(0o700);
    }
    await store.deliver(maildir, bufferSource('x\n'));
    await store.create(maildir);
    expect(await readdir(join(maildir, 'new'))).toHaveLength(1);
  });
});

describe('delivery', () => {
  it('writes prepend + message into new/ under a unique name with S and W sizes, and leaves tmp/ empty', async () => {
    const body = 'Subject: hi\n\nline one\nline two\n';
    const prepend = 'Return-Path: <a@b>\nDelivered-To: u@example.com\n';
    const stored = await store.deliver(maildir, bufferSource(body), { prepend });
    const names = await readdir(join(maildir, 'new'));
    expect(names).toEqual([stored.uid]);
    const content = prepend + body;
    const lfs = content.split('\n').length - 1;
    expect(stored.uid).toMatch(new RegExp(`^\\d+\\.M\\d+P${process.pid}Q\\d+R[0-9a-f]{8}\\.mx\\.example\\.com,S=${content.length},W=${content.length + lfs}$`));
    expect(stored.size).toBe(content.length);
    expect(stored.path).toBe(join(maildir, 'new', stored.uid));
    expect(await readFile(stored.path, 'utf8')).toBe(content);
    expect((await stat(stored.path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(maildir, 'tmp'))).toEqual([]);
  });

  it('streams file sources and keeps every byte (8-bit, NUL, long lines)', async () => {
    const data = Buffer.concat([Buffer.from('Subject: bin\n\n'), Buffer.from([0, 1, 0xff, 0x0a, 0x0d]), Buffer.alloc(3 * 1024 * 1024, 'x'), Buffer.from('\n')]);
    const file = join(dir, 'msg');
    await writeFile(file, data);
    const stored = await store.deliver(maildir, fileSource(file));
    expect((await readFile(stored.path)).equals(data)).toBe(true);
  });

  it('writes the header text before the message whatever the chunking, also for an empty message', async () => {
    const prepend = 'Delivered-To: u@example.com\n';
    const one = await store.deliver(maildir, chunkedSource('Subject: c\n\nchunks\n', 1), { prepend });
    const none = await store.deliver(maildir, bufferSource(''), { prepend });
    expect(await readFile(one.path, 'utf8')).toBe(`${prepend}Subject: c\n\nchunks\n`);
    expect(await readFile(none.path, 'utf8')).toBe(prepend);
    expect(none.uid).toMatch(new RegExp(`,S=${prepend.length},W=${prepend.length + 1}$`));
  });

  it('makes parallel deliveries into several maildirs each durable (shared new/ fsyncs)', async () => {
    const other = join(dir, 'Other');
    await store.create(other);
    const stored = await Promise.all(Array.from({ length: 40 }, (_, i) => store.deliver(i % 2 ? other : maildir, bufferSource(`n: ${i}\n`))));
    expect(stored.map((s, i) => s.path.startsWith(join(i % 2 ? other : maildir, 'new')))).toEqual(stored.map(() => true));
    expect(await readdir(join(maildir, 'new'))).toHaveLength(20);
    expect(await readdir(join(other, 'new'))).toHaveLength(20);
    expect(await readdir(join(other, 'tmp'))).toEqual([]);
  });

  it('gives every one of many parallel deliveries its own file', async () => {
    const stored = await Promise.all(Array.from({ length: 50 }, (_, i) => store.deliver(maildir, bufferSource(`n: ${i}\n`))));
    expect(new Set(stored.map((s) => s.uid)).size).toBe(50);
    const files = await readdir(join(maildir, 'new'));
    expect(files).toHaveLength(50);
    const bodies = await Promise.all(files.map((f) => readFile(join(maildir, 'new', f), 'utf8')));
    expect(bodies.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `n: ${i}\n`).sort());
  });

  it('is a temporary failure, never a lost or half message, when tmp/ is missing', async () => {
    await rm(join(maildir, 'tmp'), { recursive: true });
    await expect(store.deliver(maildir, bufferSource('x\n'))).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
    expect(await readdir(join(maildir, 'new'))).toEqual([]);
  });

  it('is a temporary failure when new/ is missing, and removes its tmp/ file', async () => {
    await rm(join(maildir, 'new'), { recursive: true });
    await expect(store.deliver(maildir, bufferSource('x\n'))).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
    expect(await readdir(join(maildir, 'tmp'))).toEqual([]);
  });

  it('is a temporary failure when the maildir is a file or does not exist', async () => {
    const file = join(dir, 'plainfile');
    await writeFile(file, '');
    await expect(store.deliver(file, bufferSource('x\n'))).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
    await expect(store.deliver(join(dir, 'nowhere'), bufferSource('x\n'))).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
    await expect(store.open(join(dir, 'nowhere'))).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
  });

  it('is a temporary failure when the source breaks mid-stream, leaving nothing behind', async () => {
    const broken = {
      size: 10,
      stream: () => {
        const s = chunkedSource('abcdefghij', 3).stream();
        let n = 0;
        s.on('data', () => {
          if (++n === 2) s.destroy(new Error('disk read error'));
        });
        return s;
      },
    };
    await expect(store.deliver(maildir, broken)).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
    expect(await readdir(join(maildir, 'tmp'))).toEqual([]);
    expect(await readdir(join(maildir, 'new'))).toEqual([]);
  });

  it('is a temporary failure when tmp/ is not writable by the delivering account', async () => {
    if (process.getuid?.() === 0) {
      // root ignores modes: make tmp/ unusable by replacing it with a file instead.
      await rm(join(maildir, 'tmp'), { recursive: true });
      await writeFile(join(maildir, 'tmp'), '');
    } else {
      await chmod(join(maildir, 'tmp'), 0o500);
    }
    await expect(store.deliver(maildir, bufferSource('x\n'))).rejects.toMatchObject({ code: 'QUAIL_E_TEMPORARY' });
    expect(await readdir(join(maildir, 'new'))).toEqual([]);
  });
});

describe('folders', () => {
  it('delivers into a Maildir++ folder, creating it with its maildirfolder marker', async () => {
    const stored = await store.deliver(maildir, bufferSource('x\n'), { folder: 'Lists.qmail' });
    expect(stored.path).toBe(join(maildir, '.Lists.qmail', 'new', stored.uid));
    expect((await stat(join(maildir, '.Lists.qmail', 'maildirfolder'))).size).toBe(0);
    await store.deliver(maildir, bufferSource('y\n'), { folder: '.Lists.qmail' });
    expect(await readdir(join(maildir, '.Lists.qmail', 'new'))).toHaveLength(2);
  });

  it('refuses folder names that could leave the maildir', async () => {
    for (const bad of ['../x', 'a/b', '..', '.', '', 'a..b', 'a.', 'x\0y', 'a\nb', 'INBOX', '..\\..']) {
      await expect(store.deliver(maildir, bufferSource('x\n'), { folder: bad })).rejects.toMatchObject({ code: 'QUAIL_E_INVALID' });
    }
    expect((await readdir(dir)).sort()).toEqual(['Maildir']);
    expect((await readdir(maildir)).sort()).toEqual(['cur', 'new', 'tmp']);
  });
});

describe('CRLF sizes', () => {
  const cases: Array<[string, string]> = [
    ['trailing newline', 'Subject: a\n\nbody\n'],
    ['no trailing newline', 'Subject: a\n\nbody'],
    ['CRLF already present', 'Subject: a\r\n\r\nbody\r\n'],
    ['mixed endings and a bare CR', 'A: 1\r\nB: 2\n\nx\ry\n\r\n\n'],
    ['empty message', ''],
    ['only newlines', '\n\n\n'],
  ];
  /** Independent reference: every LF not preceded by CR becomes CRLF. */
  const reference = (s: string) => s.replace(/(?<!\r)\n/g, '\r\n');

  for (const [label, body] of cases) {
    for (const chunk of [1, 2, 4096]) {
      it(`${label} (chunks of ${chunk})`, async () => {
        const stored = await store.deliver(maildir, chunkedSource(body, chunk));
        const box = await store.open(maildir);
        const [msg] = await box.list();
        expect(msg!.size).toBe(Buffer.byteLength(body));
        expect(msg!.crlfSize).toBe(Buffer.byteLength(reference(body)));
        const crlf = await collect(await box.read(stored.uid, { crlf: true }));
        expect(crlf.toString('latin1')).toBe(reference(body));
        expect(crlf.length).toBe(msg!.crlfSize);
        const raw = await collect(await box.read(stored.uid));
        expect(raw.toString('latin1')).toBe(body);
      });
    }
  }
});

describe('the plugin', () => {
  it('provides MailStore to a server', async () => {
    const server = createServer({ root: dir, plugins: [maildirPlugin], log: { level: 'silent' } });
    await server.start();
    try {
      const mailStore = server.resolve(Tokens.MailStore) as MailStore;
      expect(mailStore).toBeInstanceOf(MaildirStore);
      const stored = await mailStore.deliver(maildir, bufferSource('via server\n'));
      expect(await readFile(stored.path, 'utf8')).toBe('via server\n');
    } finally {
      await server.stop();
    }
  });
});

describe('hostile input', () => {
  it('refuses message names with path tricks in read, setFlags and remove', async () => {
    await mkdir(join(dir, 'outside'));
    await writeFile(join(dir, 'outside', 'secret'), 'secret');
    const box = await store.open(maildir);
    for (const uid of ['../../outside/secret', '../new', '.hidden', 'a/b', 'x\0', '', 'a:2,S']) {
      await expect(box.read(uid)).rejects.toMatchObject({ code: 'QUAIL_E_INVALID' });
      await expect(box.setFlags(uid, { add: 'S' })).rejects.toMatchObject({ code: 'QUAIL_E_INVALID' });
      await expect(box.remove(uid)).rejects.toMatchObject({ code: 'QUAIL_E_INVALID' });
    }
    expect(await readFile(join(dir, 'outside', 'secret'), 'utf8')).toBe('secret');
  });
});
