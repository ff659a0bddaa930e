import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MailStore, MailUser } from '@quail/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_FILE } from '../src/index.js';
import { mailboxWith, sampleMessage, startEngine, type EngineFixture } from './helpers.js';

const MESSAGES = [sampleMessage('one'), sampleMessage('two', 5), 'Subject: three\n\n.\n..\n.leading dot\nlast line without end'];
const crlf = (text: string) => Buffer.byteLength(text.replace(/\n/g, '\r\n'));

async function files(maildir: string, dir: 'new' | 'cur'): Promise<string[]> {
  return (await readdir(join(maildir, dir))).sort();
}

/** The file name in cur/ of the message the session numbers `index + 1` (once the moves of login are done). */
async function fileOf(e: EngineFixture, user: MailUser, index: number): Promise<string> {
  await e.store.movesDone();
  const listed = await (await e.store.open(user.maildir)).list();
  return (await files(user.maildir, 'cur')).find((n) => n.startsWith(`${listed[index]!.uid}:`))!;
}

describe('Pop3Session: TRANSACTION and UPDATE states', () => {
  let e: EngineFixture;
  let user: MailUser;

  beforeEach(async () => {
    e = await startEngine();
    user = await mailboxWith(e, 'joe', 'secret', MESSAGES);
    e.transport.take();
    await e.say('USER joe');
    expect(await e.say('PASS secret')).toEqual(['+OK ']);
  });
  afterEach(() => e.cleanup());

  it('moves new/ into cur/ from login on (in the background) and numbers messages oldest first', async () => {
    await e.store.movesDone();
    expect(await files(user.maildir, 'new')).toEqual([]);
    expect((await files(user.maildir, 'cur')).every((n) => n.endsWith(':2,'))).toBe(true);
    expect(await files(user.maildir, 'cur')).toHaveLength(3);
    const [, ...subjects] = await e.say('TOP 1 0');
    expect(subjects).toContain('Subject: one');
    expect((await e.say('TOP 3 0')).join('\n')).toContain('Subject: three');
  });

  it('STAT and LIST give CRLF octet counts', async () => {
    const sizes = MESSAGES.map(crlf);
    expect(await e.say('STAT')).toEqual([`+OK 3 ${sizes[0]! + sizes[1]! + sizes[2]!}`]);
    expect(await e.say('LIST')).toEqual(['+OK ', `1 ${sizes[0]}`, `2 ${sizes[1]}`, `3 ${sizes[2]}`, '.']);
    expect(await e.say('LIST 2')).toEqual([`+OK 2 ${sizes[1]}`]);
  });

  it('UIDL gives the Maildir unique names, stable across sessions', async () => {
    const listed = await (await e.store.open(user.maildir)).list();
    const uidl = await e.say('UIDL');
    expect(uidl).toEqual(['+OK ', ...listed.map((m, i) => `${i + 1} ${m.uid}`), '.']);
    expect(await e.say('UIDL 3')).toEqual([`+OK 3 ${listed[2]!.uid}`]);
    await e.say('QUIT');
    const again = e.another();
    again.transport.take();
    await again.say('USER joe');
    await again.say('PASS secret');
    expect(await again.say('UIDL')).toEqual(uidl);
  });

  it('RETR sends the exact octets LIST announced, dot-stuffed, and marks the message seen at QUIT', async () => {
    for (let n = 1; n <= 3; n++) {
      await e.session.handle(Buffer.from(`RETR ${n}`));
      const wire = e.transport.takeBytes().toString('latin1');
      const first = wire.indexOf('\r\n');
      const size = crlf(MESSAGES[n - 1]!);
      expect(wire.slice(0, first)).toBe(`+OK ${size} octets`);
      const body = wire.slice(first + 2);
      expect(body.endsWith('\r\n.\r\n')).toBe(true);
      const unstuffed = body
        .slice(0, -3)
        .split('\r\n')
        .map((l) => (l.startsWith('.') ? l.slice(1) : l))
        .join('\n');
      const original = MESSAGES[n - 1]!;
      expect(unstuffed).toBe(original.endsWith('\n') ? original : `${original}\n`);
    }
    const third = (await e.say('TOP 3 5')).join('\n');
    expect(third).toContain('\n..\n...\n..leading dot\nlast line without end\n.');
    await e.store.movesDone();
    expect((await files(user.maildir, 'cur')).every((name) => name.endsWith(':2,'))).toBe(true);
    expect(await e.say('QUIT')).toEqual(['+OK ']);
    const cur = await files(user.maildir, 'cur');
    expect(cur).toHaveLength(3);
    expect(cur.every((name) => name.endsWith(':2,S'))).toBe(true);
  });

  it('a transport without sendWhole gets the same answers through sendStream', async () => {
    await e.say('QUIT');
    const streamOnly = e.another({}, { streamOnly: true });
    const whole = e.another();
    const answers: Buffer[] = [];
    for (const session of [streamOnly, whole]) {
      session.transport.take();
      await session.say('USER joe');
      await session.say('PASS secret');
      for (const command of ['RETR 1', 'RETR 3', 'TOP 2 1', 'TOP 3 0']) await session.session.handle(Buffer.from(command));
      answers.push(session.transport.takeBytes());
      await session.say('QUIT');
    }
    expect(answers[0]!.toString('latin1')).toBe(answers[1]!.toString('latin1'));
    expect(answers[0]!.toString('latin1')).toContain('\r\n..leading dot\r\n');
  });

  it('RETR in order gets the next message read ahead: the same bytes, and a DELE in between still wins', async () => {
    const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
    const answers = async (session: { session: EngineFixture['session']; transport: EngineFixture['transport'] }, order: number[]) => {
      const out = new Map<number, string>();
      for (const n of order) {
        await session.session.handle(Buffer.from(`RETR ${n}`));
        out.set(n, session.transport.takeBytes().toString('latin1'));
        await nextTurn();
      }
      return out;
    };
    const inOrder = await answers(e, [1]);
    // Message 2 is read ahead now; a DELE still refuses its RETR, and after RSET the prepared answer is used.
    expect(await e.say('DELE 2')).toEqual(['+OK ']);
    expect(await e.say('RETR 2')).toEqual(['-ERR already deleted']);
    await e.say('RSET');
    for (const [n, answer] of await answers(e, [2, 3])) inOrder.set(n, answer);
    await e.say('QUIT');
    const other = e.another();
    other.transport.take();
    await other.say('USER joe');
    await other.say('PASS secret');
    const reversed = await answers(other, [3, 2, 1]);
    for (const n of [1, 2, 3]) expect(inOrder.get(n)).toBe(reversed.get(n));
    expect(inOrder.get(3)).toContain('\r\n..leading dot\r\n');
  });

  it('marks only what RETR sent seen, not what TOP sent', async () => {
    await e.say('RETR 2');
    await e.say('TOP 3 1');
    await e.say('QUIT');
    const byUid = new Map((await files(user.maildir, 'cur')).map((n) => [n.slice(0, n.indexOf(':')), n.slice(n.indexOf(':'))]));
    const listed = await (await e.store.open(user.maildir)).list();
    expect(listed.map((m) => byUid.get(m.uid))).toEqual([':2,', ':2,S', ':2,']);
  });

  it('TOP sends the header, the blank line and n body lines, without marking seen', async () => {
    const top0 = await e.say('TOP 2 0');
    expect(top0).toEqual(['+OK ', 'From: a@example.org', 'To: b@example.com', 'Subject: two', '', '.']);
    const top2 = await e.say('TOP 2 2');
    expect(top2.slice(4)).toEqual(['', 'line 0 of two', '..line 1 of two', '.']);
    const whole = await e.say('TOP 2');
    expect(whole).toHaveLength(1 + 4 + 5 + 1);
    expect(await e.say('TOP 2 99999999999999999999')).toEqual(whole);
    expect((await files(user.maildir, 'cur')).some((n) => n.endsWith('S'))).toBe(false);
  });

  it('answers bad message numbers with qmail-pop3d texts', async () => {
    expect(await e.say('RETR 0')).toEqual(['-ERR messages are counted from 1']);
    expect(await e.say('RETR -1')).toEqual(['-ERR syntax error']);
    expect(await e.say('RETR 999999')).toEqual(['-ERR not that many messages']);
    expect(await e.say('RETR 4')).toEqual(['-ERR not that many messages']);
    expect(await e.say('RETR 123456789012345678901234567890')).toEqual(['-ERR not that many messages']);
    expect(await e.say('RETR one')).toEqual(['-ERR syntax error']);
    expect(await e.say('RETR')).toEqual(['-ERR syntax error']);
    expect(await e.say('RETR 1 2')).toEqual(['-ERR syntax error']);
    expect(await e.say('NOOP')).toEqual(['+OK ']);
    expect(await e.say('TOP 1 -5')).toEqual(['-ERR syntax error']);
    expect(await e.say('TOP 1 x')).toEqual(['-ERR syntax error']);
    expect(await e.say('TOP')).toEqual(['-ERR syntax error']);
    expect(await e.say('NOOP')).toEqual(['+OK ']);
    expect(await e.say('LIST 0')).toEqual(['-ERR messages are counted from 1']);
    expect(await e.say('UIDL 9')).toEqual(['-ERR not that many messages']);
    expect(await e.say('DELE')).toEqual(['-ERR syntax error']);
    expect(await e.say('LIST 1 2')).toEqual(['-ERR syntax error']);
    expect(await e.say('RETR 001')).toHaveLength(1 + 7 + 1);
  });

  it('refuses commands that belong to AUTHORIZATION, and unknown ones', async () => {
    for (const cmd of ['USER joe', 'PASS secret', 'APOP joe x', 'AUTH PLAIN', 'STLS']) {
      expect(await e.say(cmd)).toEqual(['-ERR not allowed after login']);
    }
    expect(await e.say('XTND XMIT')).toEqual(['-ERR unimplemented']);
    expect(await e.say('NOOP')).toEqual(['+OK ']);
  });

  it('DELE marks, LAST reports, RSET unmarks; nothing leaves the disk before QUIT', async () => {
    expect(await e.say('DELE 2')).toEqual(['+OK ']);
    expect(await e.say('DELE 2')).toEqual(['-ERR already deleted']);
    expect(await e.say('RETR 2')).toEqual(['-ERR already deleted']);
    expect(await e.say('TOP 2 0')).toEqual(['-ERR already deleted']);
    expect(await e.say('LIST 2')).toEqual(['-ERR already deleted']);
    expect(await e.say('LAST')).toEqual(['+OK 2']);
    expect(await e.say('DELE 1')).toEqual(['+OK ']);
    expect(await e.say('LAST')).toEqual(['+OK 2']);
    expect(await e.say('STAT')).toEqual([`+OK 1 ${crlf(MESSAGES[2]!)}`]);
    expect((await e.say('LIST')).map((l) => l.split(' ')[0])).toEqual(['+OK', '3', '.']);
    await e.store.movesDone();
    expect(await files(user.maildir, 'cur')).toHaveLength(3);
    expect(await e.say('RSET')).toEqual(['+OK ']);
    expect(await e.say('LAST')).toEqual(['+OK 0']);
    expect((await e.say('STAT'))[0]).toMatch(/^\+OK 3 /);
    expect(await files(user.maildir, 'cur')).toHaveLength(3);
  });

  it('QUIT removes the messages marked deleted and keeps the rest', async () => {
    const kept = await fileOf(e, user, 1);
    await e.say('DELE 1');
    await e.say('DELE 3');
    expect(await e.say('QUIT')).toEqual(['+OK ']);
    expect(e.transport.closed).toBe(true);
    expect(await files(user.maildir, 'cur')).toEqual([kept]);
    await expect(stat(join(user.maildir, LOCK_FILE))).rejects.toThrow();
  });

  it('a dropped connection deletes nothing, marks what RETR sent seen, and releases the lock', async () => {
    await e.say('RETR 1');
    await e.say('DELE 1');
    await e.say('DELE 2');
    await expect(stat(join(user.maildir, LOCK_FILE))).resolves.toBeDefined();
    await e.session.closed();
    expect(await files(user.maildir, 'new')).toEqual([]);
    const cur = await files(user.maildir, 'cur');
    expect(cur).toHaveLength(3);
    expect(cur.filter((n) => n.endsWith(':2,S'))).toEqual([await fileOf(e, user, 0)]);
    await expect(stat(join(user.maildir, LOCK_FILE))).rejects.toThrow();
    expect(e.locks.size).toBe(0);
  });

  it('a server shutdown tells the client and deletes nothing', async () => {
    await e.say('DELE 1');
    await e.session.shutdown();
    expect(e.transport.take()).toEqual(['-ERR [SYS/TEMP] server shutting down, nothing was deleted']);
    expect(e.transport.closed).toBe(true);
    expect(await files(user.maildir, 'cur')).toHaveLength(3);
    expect(e.locks.size).toBe(0);
  });

  it('gives a second session on the same mailbox -ERR [IN-USE] until the first one ends', async () => {
    const second = e.another();
    second.transport.take();
    await second.say('USER joe');
    expect(await second.say('PASS secret')).toEqual(['-ERR [IN-USE] mailbox in use by another POP3 session']);
    expect(second.transport.closed).toBe(true);
    await e.say('QUIT');
    const third = e.another();
    third.transport.take();
    await third.say('USER joe');
    expect(await third.say('PASS secret')).toEqual(['+OK ']);
  });

  it('copes with a message file deleted underneath the session', async () => {
    await rm(join(user.maildir, 'cur', await fileOf(e, user, 0)));
    expect(await e.say('RETR 1')).toEqual(['-ERR unable to open that message']);
    expect(await e.say('TOP 1 0')).toEqual(['-ERR unable to open that message']);
    expect((await e.say('RETR 2'))[0]).toMatch(/^\+OK \d+ octets$/);
    await e.say('DELE 1');
    expect(await e.say('QUIT')).toEqual(['+OK ']);
    expect(await files(user.maildir, 'cur')).toHaveLength(2);
  });

  it('answers -ERR when a message fails to read before its first byte, and goes on serving', async () => {
    const name = await fileOf(e, user, 0);
    await rm(join(user.maildir, 'cur', name));
    await mkdir(join(user.maildir, 'cur', name));
    expect(await e.say('RETR 1')).toEqual(['-ERR unable to open that message']);
    expect(await e.say('NOOP')).toEqual(['+OK ']);
    expect((await e.say('RETR 2'))[0]).toMatch(/^\+OK \d+ octets$/);
  });

  it('reports a deletion that failed at QUIT and keeps that message', async () => {
    await e.store.movesDone();
    const [victim] = await files(user.maildir, 'cur');
    await rm(join(user.maildir, 'cur', victim!));
    await mkdir(join(user.maildir, 'cur', victim!));
    for (const n of [1, 2, 3]) await e.say(`DELE ${n}`);
    expect(await e.say('QUIT')).toEqual(['-ERR [SYS/TEMP] unable to remove all deleted messages']);
    expect(await files(user.maildir, 'cur')).toEqual([victim]);
  });
});

describe('Pop3Session: a large new/ moved into cur/ in the background', () => {
  const COUNT = 60;
  let e: EngineFixture;
  let user: MailUser;
  afterEach(() => e.cleanup());

  beforeEach(async () => {
    e = await startEngine();
    user = await mailboxWith(
      e,
      'joe',
      'secret',
      Array.from({ length: COUNT }, (_, i) => sampleMessage(`m${i + 1}`, i % 5)),
    );
    e.transport.take();
    await e.say('USER joe');
  });

  it('serves RETR, TOP and DELE of messages whose move has not happened yet, and ends with all of them in cur/', async () => {
    const listed = await (await e.store.open(user.maildir)).list();
    const newName = (n: number) => join(user.maildir, 'new', listed[n - 1]!.uid);
    expect(await e.say('PASS secret')).toEqual(['+OK ']);
    // The moves go oldest first, a few at a time: the newest messages are still in new/.
    expect([COUNT, COUNT - 1, COUNT - 2].every((n) => existsSync(newName(n)))).toBe(true);
    const retr = await e.say(`RETR ${COUNT}`);
    expect(retr[0]).toBe(`+OK ${Buffer.byteLength(sampleMessage(`m${COUNT}`, (COUNT - 1) % 5).replace(/\n/g, '\r\n'))} octets`);
    expect(retr).toContain(`Subject: m${COUNT}`);
    expect(await e.say(`TOP ${COUNT - 1} 0`)).toContain(`Subject: m${COUNT - 1}`);
    expect(await e.say(`DELE ${COUNT - 2}`)).toEqual(['+OK ']);
    expect(await e.say('STAT')).toEqual([expect.stringMatching(new RegExp(`^\\+OK ${COUNT - 1} \\d+$`))]);
    expect(await e.say('QUIT')).toEqual(['+OK ']);
    expect(await files(user.maildir, 'new')).toEqual([]);
    const cur = await files(user.maildir, 'cur');
    expect(cur).toHaveLength(COUNT - 1);
    expect(cur.filter((n) => n.endsWith(':2,S'))).toEqual([`${listed[COUNT - 1]!.uid}:2,S`]);
    expect(cur.some((n) => n.startsWith(listed[COUNT - 3]!.uid))).toBe(false);
  });

  it('a connection dropped right after login still leaves every listed message in cur/', async () => {
    expect(await e.say('PASS secret')).toEqual(['+OK ']);
    await e.say(`RETR ${COUNT}`);
    await e.session.closed();
    expect(await files(user.maildir, 'new')).toEqual([]);
    expect(await files(user.maildir, 'cur')).toHaveLength(COUNT);
    expect((await files(user.maildir, 'cur')).filter((n) => n.endsWith(':2,S'))).toHaveLength(1);
    expect(e.locks.size).toBe(0);
  });

  it('a second session lists the same numbers, sizes and uids', async () => {
    await e.say('PASS secret');
    const first = [await e.say('UIDL'), await e.say('LIST')];
    await e.say('QUIT');
    const again = e.another();
    again.transport.take();
    await again.say('USER joe');
    await again.say('PASS secret');
    expect([await again.say('UIDL'), await again.say('LIST')]).toEqual(first);
  });
});

describe('Pop3Session over a MailStore with only core Mailbox calls', () => {
  let e: EngineFixture;
  afterEach(() => e.cleanup());

  it('moves at login, streams RETR and TOP, marks seen at QUIT and deletes, as with plugin-maildir', async () => {
    // Hides plugin-maildir's extras (list in the background, readWhole, finishMoves).
    const coreOnly = (store: MailStore): MailStore => ({
      create: (maildir) => store.create(maildir),
      deliver: (maildir, source, options) => store.deliver(maildir, source, options),
      usage: (maildir) => store.usage(maildir),
      open: async (maildir) => {
        const box = await store.open(maildir);
        return {
          path: box.path,
          list: (options) => box.list(options),
          read: (uid, options) => box.read(uid, options),
          setFlags: (uid, change) => box.setFlags(uid, change),
          remove: (uid) => box.remove(uid),
        };
      },
    });
    e = await startEngine({ mailStore: coreOnly });
    const user = await mailboxWith(e, 'joe', 'secret', MESSAGES);
    e.transport.take();
    await e.say('USER joe');
    expect(await e.say('PASS secret')).toEqual(['+OK ']);
    expect(await files(user.maildir, 'new')).toEqual([]);
    const retr = await e.say('RETR 3');
    expect(retr[0]).toBe(`+OK ${crlf(MESSAGES[2]!)} octets`);
    expect(retr).toContain('..leading dot');
    expect(await e.say('TOP 2 0')).toEqual(['+OK ', 'From: a@example.org', 'To: b@example.com', 'Subject: two', '', '.']);
    await e.say('DELE 1');
    expect(await e.say('QUIT')).toEqual(['+OK ']);
    const cur = await files(user.maildir, 'cur');
    expect(cur).toHaveLength(2);
    expect(cur.filter((n) => n.endsWith(':2,S'))).toHaveLength(1);
  });
});

describe('Pop3Session: mailbox trouble at login', () => {
  let e: EngineFixture;
  afterEach(() => e.cleanup());

  it('answers -ERR [SYS/TEMP] when the Maildir cannot be scanned, and leaves no lock behind', async () => {
    e = await startEngine();
    const user = e.auth.add('ghost', 'pw', e.root);
    await mkdir(user.maildir, { recursive: true });
    e.transport.take();
    await e.say('USER ghost');
    expect(await e.say('PASS pw')).toEqual(['-ERR [SYS/TEMP] unable to scan $HOME/Maildir']);
    expect(e.transport.closed).toBe(true);
    expect(e.locks.size).toBe(0);
    await expect(stat(join(user.maildir, LOCK_FILE))).rejects.toThrow();
  });

  it('answers -ERR [SYS/TEMP] when the lock cannot be taken (no such directory)', async () => {
    e = await startEngine();
    e.auth.add('nohome', 'pw', e.root);
    e.transport.take();
    await e.say('USER nohome');
    expect(await e.say('PASS pw')).toEqual(['-ERR [SYS/TEMP] unable to lock the mailbox']);
  });
});
