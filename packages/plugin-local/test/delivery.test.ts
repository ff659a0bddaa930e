import { chmod, chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, QuailError } from '@quail/core';
import { dotQmail, harness, python, temporaryQueueError, type Harness } from './helpers.js';

const MESSAGE = 'Received: (qmail 1 invoked from network); 5 Mar 2024 09:04:01 -0000\nSubject: test\n\nhello\n';
const isRoot = process.getuid?.() === 0;

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

/** Every file in a maildir's new/, contents only. */
async function maildirMessages(maildir: string): Promise<string[]> {
  const names = await readdir(join(maildir, 'new'));
  return Promise.all(names.map((n) => readFile(join(maildir, 'new', n), 'utf8')));
}

async function makeMaildir(dir: string): Promise<string> {
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
  return dir;
}

describe('the alias user', () => {
  it('delivers postmaster through .qmail-postmaster with Return-Path and Delivered-To on top', async () => {
    const maildir = await makeMaildir(join(h.root, 'alias', 'Maildir'));
    await dotQmail(join(h.root, 'alias', '.qmail-postmaster'), '# the postmaster\n./Maildir/\n');
    const result = await h.deliver('postmaster@mx.example.com', MESSAGE);
    expect(result).toEqual({ kind: 'success', text: 'did 1+0+0' });
    expect(await maildirMessages(maildir)).toEqual([`Return-Path: <sender@example.org>\nDelivered-To: postmaster@mx.example.com\n${MESSAGE}`]);
  });

  it('uses .qmail-default for unknown names and bounces when there is none', async () => {
    const maildir = await makeMaildir(join(h.root, 'alias', 'Maildir'));
    expect(await h.deliver('nobody-here@mx.example.com', MESSAGE)).toEqual({ kind: 'failure', text: 'Sorry, no mailbox here by that name. (#5.1.1)' });
    await dotQmail(join(h.root, 'alias', '.qmail-default'), './Maildir/\n');
    expect(await h.deliver('Nobody-Here@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    expect(await maildirMessages(maildir)).toHaveLength(1);
  });

  it('leaves remote deliveries to other plugins', async () => {
    expect(await h.deliver('someone@remote.example', MESSAGE, { channel: 'remote' })).toBeUndefined();
  });
});

describe('users/assign users', () => {
  let home: string;
  beforeEach(async () => {
    home = join(h.root, 'home', 'joe');
    await mkdir(home, { recursive: true, mode: 0o755 });
    await mkdir(join(h.root, 'users'));
    await writeFile(join(h.root, 'users', 'assign'), `=joe:joe:0:0:${home}:::\n+joe-:joe:0:0:${home}:-::\n.\n`);
  });

  it('a missing .qmail means the default delivery (control/defaultdelivery: ./Maildir/)', async () => {
    const maildir = await makeMaildir(join(home, 'Maildir'));
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success', text: 'did 1+0+0' });
    expect(await maildirMessages(maildir)).toHaveLength(1);
  });

  it('an empty .qmail means the default delivery too', async () => {
    const maildir = await makeMaildir(join(home, 'Maildir'));
    await dotQmail(join(home, '.qmail'), '');
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    expect(await maildirMessages(maildir)).toHaveLength(1);
  });

  it('delivers to an absolute maildir and to several places in order', async () => {
    const a = await makeMaildir(join(h.root, 'elsewhere', 'Maildir'));
    const b = await makeMaildir(join(home, 'Maildir'));
    await dotQmail(join(home, '.qmail'), `${a}/\n./Maildir/\n`);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'success', text: 'did 2+0+0' });
    expect(await maildirMessages(a)).toHaveLength(1);
    expect(await maildirMessages(b)).toHaveLength(1);
  });

  it('finds .qmail-ext, then -default files walking back, and sets DEFAULT', async () => {
    const lists = await makeMaildir(join(home, 'Lists'));
    await dotQmail(join(home, '.qmail-lists-default'), './Lists/\n|echo "EXT=$EXT EXT2=$EXT2 DEFAULT=$DEFAULT"\n');
    const result = await h.deliver('joe-lists-qmail-announce@mx.example.com', MESSAGE);
    expect(result).toEqual({ kind: 'success', text: 'did 1+0+1/EXT=lists-qmail-announce EXT2=qmail-announce DEFAULT=qmail-announce' });
    expect(await maildirMessages(lists)).toEqual([`Return-Path: <sender@example.org>\nDelivered-To: joe-lists-qmail-announce@mx.example.com\n${MESSAGE}`]);
    expect(await h.deliver('joe-other@mx.example.com', MESSAGE)).toMatchObject({ kind: 'failure', text: 'Sorry, no mailbox here by that name. (#5.1.1)' });
  });

  it('defers when users/assign has a malformed line, and logs file and line', async () => {
    await writeFile(join(h.root, 'users', 'assign'), `=joe:joe:0:0:${home}:::\n=broken\n.\n`);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'deferral', text: expect.stringContaining('line 2') });
    expect(h.logs.join('')).toContain(`${join(h.root, 'users', 'assign')}:2:`);
  });

  it('defers for a writable or sticky home and a writable .qmail', async () => {
    await makeMaildir(join(home, 'Maildir'));
    await dotQmail(join(home, '.qmail'), './Maildir/\n', 0o666);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Uh-oh: .qmail file is writable. (#4.7.0)' });
    await chmod(join(home, '.qmail'), 0o644);
    await chmod(home, 0o1755);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'deferral', text: expect.stringContaining('sticky') });
    await chmod(home, 0o777);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Uh-oh: home directory is writable. (#4.7.0)' });
  });

  it('an x bit on .qmail allows forwards only', async () => {
    await dotQmail(join(home, '.qmail'), './Maildir/\n', 0o744);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)' });
    await dotQmail(join(home, '.qmail'), '|true\n', 0o744);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)' });
    await dotQmail(join(home, '.qmail'), '&a@example.org\n', 0o744);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
  });

  it('defers an unparseable line, logging the file and the line', async () => {
    const maildir = await makeMaildir(join(home, 'Maildir'));
    await dotQmail(join(home, '.qmail'), './Maildir/\nJoe <joe@example.org>\n');
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'deferral', text: expect.stringContaining('line 2') });
    expect(h.logs.join('')).toContain(`${join(home, '.qmail')}:2: forward address must be a bare user@host`);
    expect(await maildirMessages(maildir)).toEqual([]);
  });

  it('a maildir with tmp/ missing is a deferral, and the message is delivered on retry', async () => {
    const maildir = join(home, 'Maildir');
    await mkdir(join(maildir, 'new'), { recursive: true });
    await mkdir(join(maildir, 'cur'));
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Temporary error on maildir delivery. (#4.3.0)' });
    await mkdir(join(maildir, 'tmp'));
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    expect(await maildirMessages(maildir)).toHaveLength(1);
  });
});

describe('loops and hostile addresses', () => {
  it('fails a message that already has this Delivered-To line, delivering nothing', async () => {
    const maildir = await makeMaildir(join(h.root, 'alias', 'Maildir'));
    await dotQmail(join(h.root, 'alias', '.qmail-postmaster'), './Maildir/\n');
    const looping = `Delivered-To: someone@else\nDelivered-To: postmaster@mx.example.com\n${MESSAGE}`;
    expect(await h.deliver('postmaster@mx.example.com', looping)).toEqual({
      kind: 'failure',
      text: 'This message is looping: it already has my Delivered-To line. (#5.4.6)',
    });
    const inBody = `${MESSAGE}\nDelivered-To: postmaster@mx.example.com\n`;
    expect(await h.deliver('postmaster@mx.example.com', inBody)).toMatchObject({ kind: 'success' });
    const similar = `Delivered-To: postmaster@mx.example.com.evil\nDelivered-To: POSTMASTER@mx.example.com\n${MESSAGE}`;
    expect(await h.deliver('postmaster@mx.example.com', similar)).toMatchObject({ kind: 'success' });
    expect(await maildirMessages(maildir)).toHaveLength(2);
  });

  it('refuses local parts that could name a path, before touching any file', async () => {
    await makeMaildir(join(h.root, 'alias', 'Maildir'));
    await dotQmail(join(h.root, 'alias', '.qmail-default'), './Maildir/\n');
    for (const local of ['../../etc/passwd', 'a/b', '.qmail', 'x..y', 'a\0b', 'a\r\nb', 'a\nRCPT']) {
      expect(await h.deliver(`${local}@mx.example.com`, MESSAGE), JSON.stringify(local)).toMatchObject({ kind: 'failure', text: expect.stringMatching(/#5\.1\.1/) });
    }
    expect(await readdir(join(h.root, 'alias', 'Maildir', 'new'))).toEqual([]);
  });
});

describe('forwarding', () => {
  it('collects &address and bare address lines into one injection with the original sender', async () => {
    await dotQmail(join(h.root, 'alias', '.qmail-root'), '&admin@example.org\nops@example.net\n');
    const result = await h.deliver('root@mx.example.com', MESSAGE, { sender: 'alice@example.org' });
    expect(result).toEqual({ kind: 'success', text: 'did 0+2+0 qp 1001' });
    expect(h.enqueued).toEqual([
      {
        envelope: { sender: 'alice@example.org', recipients: ['admin@example.org', 'ops@example.net'] },
        body: `Delivered-To: root@mx.example.com\n${MESSAGE}`,
        origin: { kind: 'forward' },
      },
    ]);
  });

  it('uses <local>-owner@host as sender when .qmail-<ext>-owner exists, but never for bounces', async () => {
    await dotQmail(join(h.root, 'alias', '.qmail-list'), '&a@example.org\n');
    await dotQmail(join(h.root, 'alias', '.qmail-list-owner'), '&owner@example.org\n');
    await h.deliver('list@mx.example.com', MESSAGE, { sender: 'alice@example.org' });
    await h.deliver('list@mx.example.com', MESSAGE, { sender: '' });
    expect(h.enqueued.map((e) => e.envelope.sender)).toEqual(['list-owner@mx.example.com', '']);
  });

  it('a queue failure is a deferral and no forward is half-sent', async () => {
    const broken = await harness({ queueFail: temporaryQueueError });
    try {
      await dotQmail(join(broken.root, 'alias', '.qmail-root'), '&admin@example.org\n');
      expect(await broken.deliver('root@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Unable to forward message: qq temporary problem. (#4.3.0)' });
    } finally {
      await broken.close();
    }
    const refusing = await harness({ queueFail: new QuailError(ErrorCodes.PERMANENT, 'qq permanent problem') });
    try {
      await dotQmail(join(refusing.root, 'alias', '.qmail-root'), '&admin@example.org\n');
      expect(await refusing.deliver('root@mx.example.com', MESSAGE)).toMatchObject({ kind: 'failure' });
    } finally {
      await refusing.close();
    }
  });
});

describe('mbox delivery', () => {
  it("appends with From line and >From quoting, readable by Python's mailbox.mbox", async () => {
    await dotQmail(join(h.root, 'alias', '.qmail-postmaster'), './mbox\n');
    const first = 'Subject: one\n\nFrom the start\n>From quoted\nbody\n';
    const second = 'Subject: two\n\nno final newline';
    expect(await h.deliver('postmaster@mx.example.com', first, { sender: 'a@example.org' })).toEqual({ kind: 'success', text: 'did 1+0+0' });
    expect(await h.deliver('postmaster@mx.example.com', second, { sender: '' })).toMatchObject({ kind: 'success' });
    const mboxPath = join(h.root, 'alias', 'mbox');
    const raw = await readFile(mboxPath, 'utf8');
    expect(raw).toMatch(/^From a@example\.org [A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \d{4}\nReturn-Path: <a@example\.org>\nDelivered-To: postmaster@mx\.example\.com\nSubject: one\n\n>From the start\n>>From quoted\nbody\n\nFrom MAILER-DAEMON /);
    expect(raw.endsWith('no final newline\n\n')).toBe(true);
    expect((await stat(mboxPath)).mode & 0o777).toBe(0o600);
    const read = await python<Array<{ from: string; subject: string; payload: string; returnPath: string }>>(
      `
import json, mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
box.lock()
out = [{"from": m.get_from(), "subject": m["Subject"], "payload": m.get_payload(), "returnPath": m["Return-Path"]} for m in box]
box.unlock()
print(json.dumps(out))
`,
      mboxPath,
    );
    expect(read).toHaveLength(2);
    expect(read[0]).toMatchObject({ subject: 'one', returnPath: '<a@example.org>', payload: '>From the start\n>>From quoted\nbody\n' });
    expect(read[0]!.from).toMatch(/^a@example\.org /);
    expect(read[1]).toMatchObject({ subject: 'two', returnPath: '<>', payload: 'no final newline\n' });
    expect(read[1]!.from).toMatch(/^MAILER-DAEMON /);
    expect(await readdir(join(h.root, 'alias'))).not.toContain('mbox.lock');
  });

  it('waits for a lock held by another writer (Python holding mailbox.mbox.lock)', async () => {
    await dotQmail(join(h.root, 'alias', '.qmail-postmaster'), './mbox\n');
    const mboxPath = join(h.root, 'alias', 'mbox');
    await writeFile(mboxPath, '');
    const { spawn } = await import('node:child_process');
    const holder = spawn('python3', ['-c', 'import mailbox,sys,time\nb=mailbox.mbox(sys.argv[1])\nb.lock()\nprint("locked",flush=True)\nsys.stdin.read()\nb.unlock()', mboxPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    let done = false;
    const delivering = h.deliver('postmaster@mx.example.com', 'Subject: x\n\ny\n').then((r) => {
      done = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(false);
    holder.stdin.end();
    await new Promise((r) => holder.once('exit', r));
    expect(await delivering).toMatchObject({ kind: 'success' });
    expect(await readFile(mboxPath, 'utf8')).toContain('Subject: x\n\ny\n\n');
  });
});

describe.runIf(isRoot)('program delivery', () => {
  let home: string;
  beforeEach(async () => {
    home = join(h.root, 'home', 'joe');
    await mkdir(home, { recursive: true, mode: 0o755 });
    await chown(home, 1234, 1234);
    await mkdir(join(h.root, 'users'));
    await writeFile(join(h.root, 'users', 'assign'), `=joe:joe:1234:1234:${home}:::\n+joe-:joe:1234:1234:${home}:-::\n.\n`);
  });

  async function joeQmail(text: string, name = '.qmail'): Promise<void> {
    await dotQmail(join(home, name), text);
    await chown(join(home, name), 1234, 1234);
  }

  it('runs as the owner of the file with qmail-local\'s environment and the message on stdin', async () => {
    await joeQmail('|printf "%s|" "$(id -u)" "$(id -g)" "$SENDER" "$NEWSENDER" "$RECIPIENT" "$USER" "$HOME" "$HOST" "$LOCAL" "$EXT" "$DTLINE" "$RPLINE" "$PWD"; wc -c\n', '.qmail-test');
    const result = await h.deliver('joe-test@mx.example.com', MESSAGE, { sender: 'alice@example.org' });
    expect(result).toEqual({
      kind: 'success',
      text: `did 0+0+1/1234|1234|alice@example.org|alice@example.org|joe-test@mx.example.com|joe|${home}|mx.example.com|joe-test|test|Delivered-To: joe-test@mx.example.com/|Return-Path: <alice@example.org>/|${home}|${Buffer.byteLength(MESSAGE)}`,
    });
  });

  it('runs programs of root-owned files as nobody, never as root', async () => {
    await dotQmail(join(h.root, 'alias', '.qmail-postmaster'), '|id -u; id -g; id -G\n');
    const nobody = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('nobody:'))!.split(':');
    const result = await h.deliver('postmaster@mx.example.com', MESSAGE);
    expect(result).toEqual({ kind: 'success', text: `did 0+0+1/${nobody[2]}/${nobody[3]}/${nobody[3]}` });
  });

  it('keeps addresses out of the command line', async () => {
    const marker = join(h.root, 'pwned');
    await joeQmail(`|printf '%s' "$SENDER"\n`);
    const evil = `x\`touch ${marker}\`$(touch ${marker});touch ${marker}@evil.example`;
    const result = await h.deliver('joe@mx.example.com', MESSAGE, { sender: evil });
    expect(result).toEqual({ kind: 'success', text: `did 0+0+1/${evil}` });
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('maps exit codes: 0 success, 99 stop, 100 and 64/65/70/76/77/78/112 permanent, others temporary, crash', async () => {
    const maildir = await makeMaildir(join(home, 'Maildir'));
    await chown(join(home, 'Maildir'), 1234, 1234);
    const cases: Array<[string, string]> = [
      ['exit 0', 'success'],
      ['exit 100', 'failure'],
      ['exit 64', 'failure'],
      ['exit 112', 'failure'],
      ['exit 111', 'deferral'],
      ['exit 1', 'deferral'],
      ['kill -9 $$', 'deferral'],
    ];
    for (const [command, kind] of cases) {
      await joeQmail(`|${command}\n`);
      expect(await h.deliver('joe@mx.example.com', MESSAGE), command).toMatchObject({ kind });
    }
    await joeQmail('|echo crashing; kill -9 $$\n');
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Aack, child crashed. (#4.3.0)' });
    await joeQmail('|echo mailbox full >&2; exit 100\n');
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'failure', text: 'mailbox full' });
    await joeQmail('&before@example.org\n|exit 99\n./Maildir/\n&after@example.org\n');
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toEqual({ kind: 'success', text: 'did 0+1+1 qp 1001' });
    expect(h.enqueued.map((e) => e.envelope.recipients)).toEqual([['before@example.org']]);
    expect(await maildirMessages(maildir)).toEqual([]);
    await joeQmail('./Maildir/\n|exit 100\n&never@example.org\n');
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'failure' });
    expect(h.enqueued).toHaveLength(1);
  });

  it('kills a program that runs past local.timeout', async () => {
    const slow = await harness({ control: { 'local.timeout': '1' } });
    try {
      await dotQmail(join(slow.root, 'alias', '.qmail-postmaster'), '|sleep 30\n');
      expect(await slow.deliver('postmaster@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Timeout on program delivery. (#4.3.0)' });
    } finally {
      await slow.close();
    }
  });

  it("refuses file lines naming places the file's owner does not own", async () => {
    await mkdir(join(h.root, 'rootonly'), { mode: 0o755 });
    await joeQmail(`${join(h.root, 'rootonly', 'mbox')}\n`);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'deferral', text: expect.stringContaining('access denied') });
    await expect(stat(join(h.root, 'rootonly', 'mbox'))).rejects.toMatchObject({ code: 'ENOENT' });
    await joeQmail('./mbox\n');
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    expect((await stat(join(home, 'mbox'))).uid).toBe(1234);
  });

  it("gives maildir files to the owner, and a missing .qmail's default delivery to the users/assign account", async () => {
    const maildir = await makeMaildir(join(home, 'Maildir'));
    for (const sub of ['', 'tmp', 'new', 'cur']) await chown(join(maildir, sub), 1234, 1234);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    const [name] = await readdir(join(maildir, 'new'));
    expect((await stat(join(maildir, 'new', name!))).uid).toBe(1234);
  });
});
