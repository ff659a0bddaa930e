import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { Message, bufferSource, fileSource, readHeaderSection } from '@quail/core';
import { MailparserMessageParser } from '../src/mailparser-parser.js';

const raw = [
  'Received: from client.test (127.0.0.1)',
  '  by mx.example.test with SMTP; 22 Jan 2008 11:00:09 -0000',
  'From: Om <om@omx.test>',
  'To: vorname@example.test',
  'Subject: =?UTF-8?B?R3LDvMOfZQ==?=',
  'Message-Id: <1@omx.test>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'ok so?',
  '--b1',
  'Content-Type: application/octet-stream; name="a.bin"',
  'Content-Disposition: attachment; filename="a.bin"',
  'Content-Transfer-Encoding: base64',
  '',
  'AAECAw==',
  '--b1--',
  '',
].join('\n');

describe('Message', () => {
  const parser = new MailparserMessageParser();

  it('reads headers without the body, unfolding continuation lines', async () => {
    const m = new Message(bufferSource(raw), parser);
    const h = await m.headers();
    expect(h.get('received')).toBe('from client.test (127.0.0.1) by mx.example.test with SMTP; 22 Jan 2008 11:00:09 -0000');
    expect(h.get('SUBJECT')).toBe('=?UTF-8?B?R3LDvMOfZQ==?=');
    expect(h.getAll('content-type')).toEqual(['multipart/mixed; boundary="b1"']);
    expect(h.lines.map((l) => l.name)).toEqual(['received', 'from', 'to', 'subject', 'message-id', 'mime-version', 'content-type']);
  });

  it('stops reading a stream at the end of the header', async () => {
    let pulled = 0;
    const body = Buffer.alloc(64 * 1024, 'x');
    const stream = new Readable({
      read() {
        pulled++;
        this.push(pulled === 1 ? Buffer.from('Subject: big\r\n\r\n') : pulled < 1000 ? body : null);
      },
    });
    const h = await readHeaderSection(stream);
    expect(h.get('subject')).toBe('big');
    expect(pulled).toBeLessThan(5);
  });

  it('caps an endless header at the limit', async () => {
    const h = await readHeaderSection(Readable.from([Buffer.from(`X-Long: ${'a'.repeat(5000)}`)]), 1024);
    expect(h.get('x-long')?.length).toBeLessThanOrEqual(1024);
  });

  it('parses the whole message through the parser boundary', async () => {
    const parsed = await new Message(bufferSource(raw), parser).parse();
    expect(parsed.subject).toBe('Grüße');
    expect(parsed.from).toBe('"Om" <om@omx.test>');
    expect(parsed.messageId).toBe('<1@omx.test>');
    expect(parsed.text?.trim()).toBe('ok so?');
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]).toMatchObject({ filename: 'a.bin', size: 4 });
    expect([...parsed.attachments[0]!.content]).toEqual([0, 1, 2, 3]);
  });

  it('streams byte ranges of a file source', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quail-msg-'));
    const path = join(dir, 'm');
    await writeFile(path, 'Subject: s\n\n0123456789\n');
    const src = fileSource(path);
    expect(src.size).toBe(23);
    expect(await text(src.stream({ start: 12, end: 16 }))).toBe('0123');
    expect(await text(src.stream())).toBe('Subject: s\n\n0123456789\n');
    expect(await text(src.stream({ start: 20, end: 99 }))).toBe('89\n');
    expect(await text(src.stream({ start: 30 }))).toBe('');
    await rm(dir, { recursive: true });
  });

  it('reads small and large file sources alike, ranges included', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quail-msg-'));
    // one file read at once (small), one streamed (over 128 KiB)
    for (const size of [5000, 300 * 1024 + 7]) {
      const path = join(dir, `m${size}`);
      const data = Buffer.alloc(size, 0);
      for (let i = 0; i < size; i++) data[i] = i % 251;
      await writeFile(path, data);
      const src = fileSource(path);
      expect(Buffer.concat(await src.stream().toArray())).toEqual(data);
      expect(Buffer.concat(await src.stream({ start: 1000, end: 4000 }).toArray())).toEqual(data.subarray(1000, 4000));
      expect(Buffer.concat(await src.stream({ start: size - 3 }).toArray())).toEqual(data.subarray(size - 3));
    }
    await rm(dir, { recursive: true });
  });

  it('a file source whose file is gone fails its stream, not the caller', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quail-msg-'));
    const src = fileSource(join(dir, 'gone'), 10);
    const stream = src.stream();
    await expect(text(stream)).rejects.toMatchObject({ code: 'ENOENT' });
    await rm(dir, { recursive: true });
  });
});
