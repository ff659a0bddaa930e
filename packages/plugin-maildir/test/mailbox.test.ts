import { existsSync } from 'node:fs';
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bufferSource, ManualClock } from '@quail/core';
import { MaildirStore } from '@quail/plugin-maildir';
import { collect, python, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let clock: ManualClock;
let store: MaildirStore;
let maildir: string;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  clock = new ManualClock(Date.UTC(2024, 2, 5, 9, 0, 0));
  store = new MaildirStore({ hostname: 'mx', clock });
  maildir = join(dir, 'Maildir');
  await store.create(maildir);
});
afterEach(() => cleanup());

async function deliverAt(seconds: number, body: string) {
  clock.advance(seconds * 1000);
  return store.deliver(maildir, bufferSource(body));
}

describe('listing', () => {
  it('lists oldest first with sizes, and moveNew moves new/ into cur/ with :2, keeping uids', async () => {
    const a = await deliverAt(0, 'A: 1\n\na\n');
    const b = await deliverAt(5, 'B: 2\n\nbb\n');
    const c = await deliverAt(5, 'C: 3\n\nccc');
    const box = await store.open(maildir);
    const before = await box.list();
    expect(before.map((m) => m.uid)).toEqual([a.uid, b.uid, c.uid]);
    expect(before.map((m) => [m.size, m.crlfSize, m.flags])).toEqual([
      [8, 11, ''],
      [9, 12, ''],
      [9, 11, ''],
    ]);
    expect(before[1]!.date.getTime()).toBe(Date.UTC(2024, 2, 5, 9, 0, 5));
    const after = await box.list({ moveNew: true });
    expect(after.map((m) => m.uid)).toEqual([a.uid, b.uid, c.uid]);
    expect(await readdir(join(maildir, 'new'))).toEqual([]);
    expect((await readdir(join(maildir, 'cur'))).sort()).toEqual([a.uid, b.uid, c.uid].map((u) => `${u}:2,`).sort());
  });

  it('sets and clears flags in sorted order, moving new/ messages to cur/', async () => {
    const a = await deliverAt(0, 'x\n');
    const box = await store.open(maildir);
    await box.setFlags(a.uid, { add: 'TS' });
    expect(await readdir(join(maildir, 'cur'))).toEqual([`${a.uid}:2,ST`]);
    await box.setFlags(a.uid, { add: 'R', remove: 'T' });
    expect(await readdir(join(maildir, 'cur'))).toEqual([`${a.uid}:2,RS`]);
    expect((await box.list())[0]).toMatchObject({ uid: a.uid, flags: 'RS' });
    expect((await collect(await box.read(a.uid))).toString()).toBe('x\n');
  });

  it('removes messages and finds messages another reader moved', async () => {
    const a = await deliverAt(0, 'a\n');
    const b = await deliverAt(1, 'b\n');
    const first = await store.open(maildir);
    await first.list();
    const second = await store.open(maildir);
    await second.list({ moveNew: true });
    expect((await collect(await first.read(b.uid))).toString()).toBe('b\n');
    await first.remove(a.uid);
    expect((await second.list()).map((m) => m.uid)).toEqual([b.uid]);
    await expect(first.read(a.uid)).rejects.toMatchObject({ code: 'QUAIL_E_INVALID' });
  });

  it('reads mail written by other software: sizes from stat and one read, date from the name or mtime', async () => {
    const vpop = '1700000000.4242.mx,S=13';
    const qmail = '1700000100.4243.mx';
    const odd = 'courier-style-name';
    await writeFile(join(maildir, 'new', vpop), 'Subject: v\n\nv\n');
    await writeFile(join(maildir, 'cur', `${qmail}:2,S`), 'Subject: q\r\n\r\nq');
    await writeFile(join(maildir, 'new', odd), 'o\n');
    await utimes(join(maildir, 'new', odd), 1700000200, 1700000200);
    await writeFile(join(maildir, 'new', '.hidden'), 'ignored\n');
    const box = await store.open(maildir);
    const list = await box.list();
    expect(list).toEqual([
      { uid: vpop, size: 13, crlfSize: 16, flags: '', date: new Date(1700000000000) },
      { uid: qmail, size: 15, crlfSize: 15, flags: 'S', date: new Date(1700000100000) },
      { uid: odd, size: 2, crlfSize: 3, flags: '', date: new Date(1700000200000) },
    ]);
    expect((await collect(await box.read(vpop, { crlf: true }))).toString()).toBe('Subject: v\r\n\r\nv\r\n');
  });

  it('removes tmp/ debris older than 36 hours when moving new mail, and nothing younger', async () => {
    await writeFile(join(maildir, 'tmp', 'old'), 'x');
    await writeFile(join(maildir, 'tmp', 'young'), 'x');
    const old = Date.now() / 1000 - 37 * 3600;
    await utimes(join(maildir, 'tmp', 'old'), old, old);
    await (await store.open(maildir)).list({ moveNew: true });
    expect(await readdir(join(maildir, 'tmp'))).toEqual(['young']);
  });
});

describe('moving new/ in the background (list with moveInBackground)', () => {
  const COUNT = 40;
  let uids: string[];

  beforeEach(async () => {
    uids = [];
    for (let i = 0; i < COUNT; i++) uids.push((await deliverAt(1, `Subject: ${i}\n\n.body ${i}\n`)).uid);
  });

  it('answers with the listing the moves will leave, and finishMoves resolves once new/ is in cur/', async () => {
    const box = await store.open(maildir);
    const listed = await box.list({ moveNew: true, moveInBackground: true });
    expect(listed.map((m) => [m.uid, m.flags])).toEqual(uids.map((u) => [u, '']));
    // The moves go oldest first, a few at a time: the newest are still in new/.
    expect(existsSync(join(maildir, 'new', uids[COUNT - 1]!))).toBe(true);
    await box.finishMoves();
    expect(await readdir(join(maildir, 'new'))).toEqual([]);
    expect((await readdir(join(maildir, 'cur'))).sort()).toEqual(uids.map((u) => `${u}:2,`).sort());
    expect(await (await store.open(maildir)).list()).toEqual(listed);
  });

  it('reads, flags and removes messages whose move is still to come', async () => {
    const box = await store.open(maildir);
    await box.list({ moveNew: true, moveInBackground: true });
    const [last, flagged, removed] = [uids[COUNT - 1]!, uids[COUNT - 2]!, uids[COUNT - 3]!];
    expect(existsSync(join(maildir, 'new', last))).toBe(true);
    const read = box.readWhole(last, 1024, (bytes) => bytes.toString());
    const flagging = box.setFlags(flagged, { add: 'S' });
    const removing = box.remove(removed);
    expect(await read).toBe(`Subject: ${COUNT - 1}\n\n.body ${COUNT - 1}\n`);
    await Promise.all([flagging, removing, box.finishMoves()]);
    const cur = (await readdir(join(maildir, 'cur'))).sort();
    expect(cur).toHaveLength(COUNT - 1);
    expect(cur.filter((n) => !n.endsWith(':2,'))).toEqual([`${flagged}:2,S`]);
    expect(cur.some((n) => n.startsWith(removed))).toBe(false);
    expect(await readdir(join(maildir, 'new'))).toEqual([]);
  });

  it('reads a message moved by another reader meanwhile', async () => {
    const box = await store.open(maildir);
    await box.list();
    await (await store.open(maildir)).list({ moveNew: true });
    expect(await box.readWhole(uids[0]!, 1024, (bytes) => bytes.toString())).toBe('Subject: 0\n\n.body 0\n');
  });
});

describe('readWhole', () => {
  it('hands the stored bytes to consume, or gives undefined for a message over the limit', async () => {
    const a = await deliverAt(0, 'Subject: a\n\nshort\n');
    const box = await store.open(maildir);
    await box.list();
    expect(await box.readWhole(a.uid, a.size, (bytes) => bytes.toString())).toBe('Subject: a\n\nshort\n');
    expect(await box.readWhole(a.uid, a.size - 1, () => 'called')).toBeUndefined();
  });

  it('gives undefined for a file larger than its name says, and QUAIL_E_INVALID for a message that is gone', async () => {
    const a = await deliverAt(0, 'x\n');
    const box = await store.open(maildir);
    await box.list();
    await writeFile(join(maildir, 'new', a.uid), 'grown since delivery\n');
    expect(await box.readWhole(a.uid, 1024, () => 'called')).toBeUndefined();
    await box.remove(a.uid);
    await expect(box.readWhole(a.uid, 1024, () => 'called')).rejects.toMatchObject({ code: 'QUAIL_E_INVALID' });
  });
});

describe('TOP (bodyLines)', () => {
  const message = 'From: a\nSubject: s\n\nline 1\nline 2\r\nline 3\n';
  const cases: Array<[number, boolean, string]> = [
    [0, false, 'From: a\nSubject: s\n\n'],
    [1, false, 'From: a\nSubject: s\n\nline 1\n'],
    [2, true, 'From: a\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\n'],
    [99, true, 'From: a\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\nline 3\r\n'],
  ];
  for (const [lines, crlf, expected] of cases) {
    it(`${lines} body lines${crlf ? ' with CRLF' : ''}`, async () => {
      const stored = await store.deliver(maildir, bufferSource(message));
      const box = await store.open(maildir);
      expect((await collect(await box.read(stored.uid, { bodyLines: lines, crlf }))).toString()).toBe(expected);
    });
  }

  it('a header ended by CRLF CRLF, and a message without a body', async () => {
    const a = await store.deliver(maildir, bufferSource('A: 1\r\n\r\nbody\r\nmore\r\n'));
    const b = await store.deliver(maildir, bufferSource('A: 1\nB: 2'));
    const box = await store.open(maildir);
    expect((await collect(await box.read(a.uid, { bodyLines: 1 }))).toString()).toBe('A: 1\r\n\r\nbody\r\n');
    expect((await collect(await box.read(b.uid, { bodyLines: 0, crlf: true }))).toString()).toBe('A: 1\r\nB: 2');
  });

  it('stops reading a large message after the lines asked for', async () => {
    const big = `Subject: big\n\n${'y'.repeat(100)}\n`.padEnd(20 * 1024 * 1024, 'z');
    const stored = await store.deliver(maildir, bufferSource(big));
    const box = await store.open(maildir);
    const top = await collect(await box.read(stored.uid, { bodyLines: 1, crlf: true }));
    expect(top.toString()).toBe(`Subject: big\r\n\r\n${'y'.repeat(100)}\r\n`);
  });
});

describe("Python's mailbox.Maildir reads what quail delivered", () => {
  it('every message, byte for byte, with its subdir and flags', async () => {
    const bodies = [
      'From: a@example.com\nSubject: one\n\nhello\n',
      'From: b@example.com\nSubject: two\n\n>From quoting is not Maildir business\nno newline at end',
      'Subject: 8bit \xe9\n\n\x00\x01binary\n',
      '',
    ];
    const stored = [];
    for (const body of bodies) stored.push(await store.deliver(maildir, bufferSource(Buffer.from(body, 'latin1')), { prepend: 'Delivered-To: u@example.com\n' }));
    await store.deliver(maildir, bufferSource('Subject: in folder\n\nf\n'), { folder: 'Sent' });
    const box = await store.open(maildir);
    await box.list({ moveNew: true });
    await box.setFlags(stored[0]!.uid, { add: 'S' });
    await box.setFlags(stored[1]!.uid, { add: 'RST' });
    const md = await python<{ messages: Record<string, { subdir: string; flags: string; hex: string }>; folders: string[]; sent: number }>(
      `
import json, mailbox, sys
md = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = {}
for key in md.keys():
    msg = md.get_message(key)
    out[key] = {"subdir": msg.get_subdir(), "flags": msg.get_flags(), "hex": md.get_bytes(key).hex()}
print(json.dumps({"messages": out, "folders": md.list_folders(), "sent": len(md.get_folder("Sent"))}))
`,
      maildir,
    );
    expect(Object.keys(md.messages).sort()).toEqual(stored.map((s) => s.uid).sort());
    stored.forEach((s, i) => {
      const expected = Buffer.concat([Buffer.from('Delivered-To: u@example.com\n'), Buffer.from(bodies[i]!, 'latin1')]);
      expect(md.messages[s.uid]!.hex).toBe(expected.toString('hex'));
      expect(md.messages[s.uid]!.subdir).toBe('cur');
    });
    expect(md.messages[stored[0]!.uid]!.flags).toBe('S');
    expect(md.messages[stored[1]!.uid]!.flags).toBe('RST');
    expect(md.messages[stored[2]!.uid]!.flags).toBe('');
    expect(md.folders).toEqual(['Sent']);
    expect(md.sent).toBe(1);
  });

  it('a message Python delivers is listed and read by quail', async () => {
    await python(
      `
import json, mailbox, sys
md = mailbox.Maildir(sys.argv[1], create=False)
msg = mailbox.MaildirMessage(b"Subject: from python\\n\\nbody\\n")
msg.set_flags("FS")
msg.set_subdir("cur")
print(json.dumps(md.add(msg)))
`,
      maildir,
    );
    const box = await store.open(maildir);
    const [msg] = await box.list();
    expect(msg).toMatchObject({ flags: 'FS', size: 27, crlfSize: 30 });
    expect((await collect(await box.read(msg!.uid, { crlf: true }))).toString()).toBe('Subject: from python\r\n\r\nbody\r\n');
    await box.remove(msg!.uid);
    expect(await readdir(join(maildir, 'cur'))).toEqual([]);
  });
});
