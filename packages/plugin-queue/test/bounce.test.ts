import { afterEach, describe, expect, it } from 'vitest';
import { failure, success } from '@quail/core';
import { harness, queueFiles, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

const JOE_TEXT = '192.0.2.25 does not like recipient.\nRemote host said: 550 5.1.1 <joe@example.org>: Recipient address rejected\nGiving up on 192.0.2.25.\n';
const NOBODY_TEXT = 'Sorry, no mailbox here by that name. (#5.1.1)\n';

/** The bounce of reference section 4.6, line for line. */
const REFERENCE_BOUNCE = `Date: 5 Mar 2024 09:10:00 -0000
From: MAILER-DAEMON@mx.example.com
To: alice@example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.com.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<joe@example.org>:
192.0.2.25 does not like recipient.
Remote host said: 550 5.1.1 <joe@example.org>: Recipient address rejected
Giving up on 192.0.2.25.

<nobody@example.com>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <alice@example.org>
`;

describe('bounces (QSBMF)', () => {
  it('sends one bounce per message, byte for byte as qmail-send writes it', async () => {
    h = await harness(
      (d) => {
        if (d.sender === '') return success('accepted');
        return d.recipients.map((r) => failure(r.recipient === 'joe@example.org' ? JOE_TEXT : NOBODY_TEXT.trimEnd()));
      },
      { clockStart: Date.UTC(2024, 2, 5, 9, 4, 1) },
    );
    h.queue.pause();
    const original = 'Received: from client by mx.example.com with SMTP; 5 Mar 2024 09:04:01 -0000\nSubject: hello\n\nHello Joe.\n';
    const r = await h.queue.enqueue({ sender: 'alice@example.org', recipients: ['joe@example.org', 'nobody@example.com'] }, original, { kind: 'network', remoteAddress: '192.0.2.9' });
    await h.clock.advance(359_000);
    h.queue.resume();
    await h.queue.idle();
    const bounces = h.deliveries.filter((d) => d.delivery.sender === '');
    expect(bounces).toHaveLength(1);
    const b = bounces[0]!;
    expect(b.delivery.recipients.map((x) => x.recipient)).toEqual(['alice@example.org']);
    expect(b.delivery.channel).toBe('remote');
    const qp = /^Received: \(qmail (\d+) invoked for bounce\); 5 Mar 2024 09:10:00 -0000\n/.exec(b.body);
    expect(qp).not.toBeNull();
    expect(b.body).toBe(`${qp![0]}${REFERENCE_BOUNCE}Received: (qmail ${r.qp} invoked from network); 5 Mar 2024 09:04:01 -0000\n${original}`);
    expect(h.logs).toContain(`bounce msg ${r.id} qp ${qp![1]}`);
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('names the recipient without its virtualdomains prefix and keeps paragraphs of the report intact', async () => {
    h = await harness((d) => (d.sender === '' ? success('ok') : failure('first paragraph\n\nsecond paragraph')), {
      control: { virtualdomains: 'virt.example.net:virt.example.net\n' },
    });
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['ann@virt.example.net'] }, 'x\n', { kind: 'local', uid: 5 });
    await h.queue.idle();
    const first = h.deliveries[0]!.delivery;
    expect(first.recipients[0]!.route).toEqual({ channel: 'local', recipient: 'ann@virt.example.net', address: 'virt.example.net-ann@virt.example.net', prefix: 'virt.example.net' });
    const bounce = h.deliveries.find((d) => d.delivery.sender === '')!;
    expect(bounce.body).toContain('\n\n<ann@virt.example.net>:\nfirst paragraph\n/\nsecond paragraph\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <a@example.org>\nReceived: (qmail ');
  });

  it('turns a failed bounce into a double bounce to doublebounceto@doublebouncehost', async () => {
    h = await harness(
      (d) => {
        if (d.recipients[0]!.recipient === 'postmaster@mx.example.com') return success('did 1+0+0');
        return failure('Sorry, no mailbox here by that name. (#5.1.1)');
      },
      { clockStart: Date.UTC(2024, 2, 5, 9, 0, 0) },
    );
    const r = await h.queue.enqueue({ sender: '', recipients: ['gone@example.com'] }, 'Subject: failure notice\n\nbounce text\n', { kind: 'bounce' });
    await h.queue.idle();
    const dbl = h.deliveries.find((d) => d.delivery.recipients[0]!.recipient === 'postmaster@mx.example.com')!;
    expect(dbl.delivery.sender).toBe('#@[]');
    expect(dbl.body.replace(/^Received: \(qmail \d+ /, 'Received: (qmail N ')).toBe(
      'Received: (qmail N invoked for bounce); 5 Mar 2024 09:00:00 -0000\n' +
        'Date: 5 Mar 2024 09:00:00 -0000\nFrom: MAILER-DAEMON@mx.example.com\nTo: postmaster@mx.example.com\nSubject: failure notice\n\n' +
        'Hi. This is the qmail-send program at mx.example.com.\nI tried to deliver a bounce message to this address, but the bounce bounced!\n\n' +
        '<gone@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is the original bounce.\n\nReturn-Path: <>\n' +
        `Received: (qmail ${r.qp} invoked for bounce); 5 Mar 2024 09:00:00 -0000\nSubject: failure notice\n\nbounce text\n`,
    );
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('drops a failed double bounce (triple bounce) and never bounces it again', async () => {
    h = await harness(() => failure('no'), { control: { doublebounceto: 'nobody-here', doublebouncehost: 'example.com' } });
    const r = await h.queue.enqueue({ sender: '', recipients: ['gone@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    const senders = h.deliveries.map((d) => `${d.delivery.sender} -> ${d.delivery.recipients[0]!.recipient}`);
    expect(senders).toEqual([' -> gone@example.com', '#@[] -> nobody-here@example.com']);
    const dbl = h.deliveries[1]!.delivery.messageId;
    expect(h.logs).toContain(`triple bounce: discarding bounce/${dbl}`);
    expect(h.logs).toContain(`end msg ${dbl}`);
    expect(h.logs).toContain(`end msg ${r.id}`);
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('lets a bounce tap suppress the bounce', async () => {
    h = await harness(() => failure('no'));
    const seen: unknown[] = [];
    h.server.hooks.bounce.tapPromise('suppressor', async (req) => {
      seen.push({ messageId: req.messageId, sender: req.sender, failures: req.failures });
      return { kind: 'suppress', reason: 'test says no' };
    });
    const r = await h.queue.enqueue({ sender: 'a@example.org', recipients: ['x@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(seen).toEqual([{ messageId: r.id, sender: 'a@example.org', failures: [{ recipient: 'x@example.com', text: 'no\n' }] }]);
    expect(h.deliveries).toHaveLength(1);
    expect(h.logs).toContain(`bounce msg ${r.id} suppressed: test says no`);
  });

  it('runs clean with every result before removing the files', async () => {
    h = await harness((d) => (d.recipients[0]!.recipient.startsWith('ok') ? success('fine') : failure('bad')));
    const cleaned: { messageId: string; [field: string]: unknown }[] = [];
    h.server.hooks.clean.tapPromise('observer', async (info) => {
      cleaned.push({ ...info, stored: (await queueFiles(h!.root)).filter((f) => f.endsWith(`/${info.messageId}`)).map((f) => f.split('/')[0]) });
    });
    const r = await h.queue.enqueue({ sender: '', recipients: ['ok@example.com', 'bad@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    // the double bounce of 'bad' (sender #@[]) is a message of its own and may be cleaned first
    expect(cleaned.find((c) => c.messageId === r.id)).toEqual({
      messageId: r.id,
      sender: '',
      results: [
        { recipient: 'ok@example.com', result: { kind: 'success', text: 'fine\n' } },
        { recipient: 'bad@example.com', result: { kind: 'failure', text: 'bad\n' } },
      ],
      // delivered at its first attempt, the message was never settled into info/: todo/ is its record
      stored: ['mess', 'state', 'todo'],
    });
    expect(await queueFiles(h.root)).toEqual([]);
  });
});
