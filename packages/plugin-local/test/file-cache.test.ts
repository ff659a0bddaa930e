import { chmod, mkdir, readdir, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dotQmail, harness, type Harness } from './helpers.js';

// Deliveries keep what they read from users/assign, home directories and
// dot-qmail files once these have been left alone for a while. These tests date
// the files back so that everything read is kept, then make the changes an
// admin or a user makes and check that the very next delivery sees each of them.

const MESSAGE = 'Subject: test\n\nhello\n';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

/** Dates files and directories back a minute, as if untouched since. */
async function settle(...paths: string[]): Promise<void> {
  const past = new Date(Date.now() - 60_000);
  for (const path of paths) await utimes(path, past, past);
}

async function makeMaildir(dir: string): Promise<string> {
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
  return dir;
}

const count = (maildir: string) => readdir(join(maildir, 'new')).then((names) => names.length);

describe('what deliveries keep is renewed by every change', () => {
  it('a dot-qmail file edited in place is carried out as it now reads', async () => {
    const alias = join(h.root, 'alias');
    const maildir = await makeMaildir(join(alias, 'Maildir'));
    const file = join(alias, '.qmail-postmaster');
    await dotQmail(file, './Maildir/\n');
    await settle(file, alias);
    expect(await h.deliver('postmaster@mx.example.com', MESSAGE)).toEqual({ kind: 'success', text: 'did 1+0+0' });
    expect(await h.deliver('postmaster@mx.example.com', MESSAGE)).toEqual({ kind: 'success', text: 'did 1+0+0' });
    expect(await count(maildir)).toBe(2);
    await writeFile(file, '&boss@example.org\n');
    expect(await h.deliver('postmaster@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success', text: expect.stringMatching(/^did 0\+1\+0 qp /) });
    expect(h.enqueued.map((e) => e.envelope.recipients)).toEqual([['boss@example.org']]);
    expect(await count(maildir)).toBe(2);
  });

  it('the x bit set on a kept dot-qmail file applies at once, and cleared again too', async () => {
    const alias = join(h.root, 'alias');
    const maildir = await makeMaildir(join(alias, 'Maildir'));
    const file = join(alias, '.qmail-postmaster');
    await dotQmail(file, './Maildir/\n');
    await settle(file, alias);
    expect(await h.deliver('postmaster@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    await chmod(file, 0o744);
    expect(await h.deliver('postmaster@mx.example.com', MESSAGE)).toEqual({ kind: 'deferral', text: 'Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)' });
    await chmod(file, 0o644);
    await settle(file);
    expect(await h.deliver('postmaster@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    expect(await count(maildir)).toBe(2);
  });

  it('a .qmail-<ext> file added to a home is used at once, and removed is forgotten at once', async () => {
    const alias = join(h.root, 'alias');
    const maildir = await makeMaildir(join(alias, 'Maildir'));
    await settle(alias);
    expect(await h.deliver('list@mx.example.com', MESSAGE)).toEqual({ kind: 'failure', text: 'Sorry, no mailbox here by that name. (#5.1.1)' });
    expect(await h.deliver('list@mx.example.com', MESSAGE)).toMatchObject({ kind: 'failure' });
    await dotQmail(join(alias, '.qmail-list'), './Maildir/\n');
    expect(await h.deliver('list@mx.example.com', MESSAGE)).toEqual({ kind: 'success', text: 'did 1+0+0' });
    await settle(alias, join(alias, '.qmail-list'));
    expect(await h.deliver('list@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    await unlink(join(alias, '.qmail-list'));
    expect(await h.deliver('list@mx.example.com', MESSAGE)).toEqual({ kind: 'failure', text: 'Sorry, no mailbox here by that name. (#5.1.1)' });
    expect(await count(maildir)).toBe(2);
  });

  it('users/assign edited in place (same size) sends the next message to the new home', async () => {
    const homes = [join(h.root, 'home', 'aaa'), join(h.root, 'home', 'bbb')];
    for (const home of homes) {
      await mkdir(home, { recursive: true, mode: 0o755 });
      await makeMaildir(join(home, 'Maildir'));
    }
    await mkdir(join(h.root, 'users'));
    const assign = join(h.root, 'users', 'assign');
    await writeFile(assign, `=joe:joe:0:0:${homes[0]}:::\n.\n`);
    await settle(assign, ...homes);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    await writeFile(assign, `=joe:joe:0:0:${homes[1]}:::\n.\n`);
    expect(await h.deliver('joe@mx.example.com', MESSAGE)).toMatchObject({ kind: 'success' });
    expect(await count(join(homes[0]!, 'Maildir'))).toBe(2);
    expect(await count(join(homes[1]!, 'Maildir'))).toBe(1);
  });
});
