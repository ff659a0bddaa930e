import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bufferSource, Message, Tokens, type Delivery, type DotQmailRunner } from '@quail/core';
import { dotQmail, harness, type Harness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

/** A delivery as plugin-vpopmail hands it over: prefix-local@domain, one recipient. */
function vpopmailDelivery(message: string): Delivery {
  const address = 'example.com-joe@example.com';
  return {
    id: 1,
    messageId: 'm1',
    sender: 'alice@example.org',
    channel: 'local',
    recipients: [{ recipient: 'joe@example.com', route: { channel: 'local', recipient: 'joe@example.com', address, prefix: 'example.com' } }],
    message: new Message(bufferSource(message), h.server.resolve(Tokens.MessageParser)),
    queuedAt: new Date(),
    attempt: 1,
    signal: new AbortController().signal,
  };
}

describe('the DotQmail service', () => {
  let home: string;
  let runner: DotQmailRunner;
  beforeEach(async () => {
    home = join(h.root, 'domains', 'example.com', 'joe');
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(home, 'Maildir', sub), { recursive: true });
    runner = h.server.resolve(Tokens.DotQmail);
  });

  const request = (delivery: Delivery, extra: object = {}) => ({
    delivery,
    recipient: delivery.recipients[0]!,
    home,
    local: 'joe',
    host: 'example.com',
    ext: '',
    ...extra,
  });

  it('delivers a missing .qmail to the default maildir under its quota', async () => {
    const delivery = vpopmailDelivery('Subject: a\n\nb\n');
    const quota = { bytes: 100 };
    const maildir = join(home, 'Maildir');
    expect(await runner.run(join(home, '.qmail'), request(delivery, { defaultMaildir: maildir, quota }))).toEqual({ kind: 'success', text: 'did 1+0+0' });
    expect(await readdir(join(maildir, 'new'))).toHaveLength(1);
    const big = vpopmailDelivery(`Subject: a\n\n${'x'.repeat(200)}\n`);
    expect(await runner.run(join(home, '.qmail'), request(big, { defaultMaildir: maildir, quota }))).toMatchObject({ kind: 'failure', text: expect.stringContaining('over quota') });
    expect(await readdir(join(maildir, 'new'))).toHaveLength(1);
  });

  it("carries out a user's .qmail with Delivered-To naming the user's address", async () => {
    await dotQmail(join(home, '.qmail'), './Maildir/\n&copy@example.org\n');
    const result = await runner.run(join(home, '.qmail'), request(vpopmailDelivery('Subject: a\n\nb\n')));
    expect(result).toEqual({ kind: 'success', text: 'did 1+1+0 qp 1001' });
    expect(h.enqueued[0]!.body.startsWith('Delivered-To: joe@example.com\nSubject: a\n')).toBe(true);
    expect(h.enqueued[0]!.envelope.sender).toBe('alice@example.org');
  });

  it('uses control/defaultdelivery when no default maildir is given', async () => {
    await writeFile(join(h.root, 'control', 'defaultdelivery'), './Maildir/\n');
    await h.server.reload();
    const result = await runner.run(join(home, '.qmail'), request(vpopmailDelivery('Subject: a\n\nb\n')));
    expect(result).toMatchObject({ kind: 'success', text: 'did 1+0+0' });
  });
});
