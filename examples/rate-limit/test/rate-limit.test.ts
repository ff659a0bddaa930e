import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { definePlugin, Tokens, type Authenticator, type MailUser } from '@quail/core';
import { ManualClock, defaultPlugins, startTestServer, type TestServer } from '@quail/testkit';
import { rateLimitPlugin } from '../src/rate-limit.js';
import { SlidingWindow, MAX_KEYS } from '../src/sliding-window.js';

/** Two SMTP AUTH users with fixed passwords, so the test can log in (any Authenticator would do). */
const passwords: Record<string, string> = { ann: 'ann-secret', bob: 'bob-secret' };
const fixedUsers = definePlugin({
  name: 'fixed-users',
  provides: [Tokens.Authenticator],
  register(ctx) {
    const authenticator: Authenticator = {
      mechanisms: () => ['PLAIN', 'LOGIN'],
      async authenticate({ username, password }) {
        if (passwords[username] === undefined || passwords[username] !== password) return { ok: false, reason: 'bad-credentials' };
        const user: MailUser = { address: `${username}@quail.test`, name: username, domain: 'quail.test', home: '/nonexistent', maildir: '/nonexistent', flags: {} };
        return { ok: true, user };
      },
    };
    ctx.provide(Tokens.Authenticator, authenticator);
  },
});

let kit: TestServer;
let clock: ManualClock;

beforeEach(async () => {
  clock = new ManualClock();
  kit = await startTestServer({
    plugins: [rateLimitPlugin, fixedUsers, ...defaultPlugins()],
    clock,
    users: ['joe'],
    control: { 'ratelimit.ip': '2/60', 'ratelimit.user': '3/60', 'ratelimit.rcpts': '5/60' },
  });
});
afterEach(() => kit.stop());

const IP_LIMIT = '451 too many messages from you: at most 2 per 60 seconds, try again later (#4.7.0)';

async function mailReply(options: { from: string; login?: [string, string] }): Promise<string> {
  const smtp = await kit.dialog({ localAddress: options.from });
  await smtp.command('EHLO client.example.org');
  if (options.login) {
    const token = Buffer.from(`\0${options.login[0]}\0${options.login[1]}`).toString('base64');
    expect((await smtp.command(`AUTH PLAIN ${token}`)).code).toBe(235);
  }
  const reply = await smtp.command('MAIL FROM:<ann@example.org>');
  await smtp.close();
  return reply.text;
}

describe('per-IP message limit', () => {
  it('defers MAIL with 451 once an address sent its messages for the window, and lets it in again as the window slides', async () => {
    await kit.send({ from: 'ann@example.org', to: 'joe@quail.test', localAddress: '127.0.0.5' });
    await clock.advance(30_000);
    await kit.send({ from: 'ann@example.org', to: 'joe@quail.test', localAddress: '127.0.0.5' });
    await expect(kit.send({ from: 'ann@example.org', to: 'joe@quail.test', localAddress: '127.0.0.5' })).rejects.toMatchObject({ responseCode: 451 });
    expect(await mailReply({ from: '127.0.0.5' })).toBe(IP_LIMIT);
    expect(await mailReply({ from: '127.0.0.6' })).toBe('250 ok');
    await clock.advance(30_000);
    expect(await mailReply({ from: '127.0.0.5' })).toBe('250 ok');
    expect(await kit.waitForMessages('joe', 2)).toHaveLength(2);
  });
});

describe('per-user message limit', () => {
  it('counts authenticated clients by login, not by address', async () => {
    for (let i = 0; i < 3; i++) {
      await kit.send({ from: 'ann@quail.test', to: 'joe@quail.test', auth: { user: 'ann', pass: 'ann-secret' }, localAddress: '127.0.0.5' });
    }
    await expect(kit.send({ from: 'ann@quail.test', to: 'joe@quail.test', auth: { user: 'ann', pass: 'ann-secret' }, localAddress: '127.0.0.7' })).rejects.toMatchObject({
      responseCode: 451,
      response: '451 too many messages from you: at most 3 per 60 seconds, try again later (#4.7.0)',
    });
    expect(await mailReply({ from: '127.0.0.5', login: ['bob', 'bob-secret'] })).toBe('250 ok');
    // the IP limit of 127.0.0.5 is untouched by the authenticated messages
    expect(await mailReply({ from: '127.0.0.5' })).toBe('250 ok');
  });
});

describe('recipient limit', () => {
  it('answers 452 to the RCPT beyond the limit and delivers to the ones before it', async () => {
    const smtp = await kit.dialog({ localAddress: '127.0.0.8' });
    await smtp.command('HELO client.example.org');
    await smtp.command('MAIL FROM:<ann@example.org>');
    const replies = [];
    for (let i = 1; i <= 6; i++) replies.push((await smtp.command(`RCPT TO:<joe-${i}@quail.test>`)).code);
    expect(replies).toEqual([250, 250, 250, 250, 250, 452]);
    expect((await smtp.data('Subject: five\n\nhello\n')).code).toBe(250);
    await smtp.close();
    expect((await kit.waitForMessages('joe', 5)).map((m) => m.deliveredTo).sort()).toEqual([1, 2, 3, 4, 5].map((i) => `joe-${i}@quail.test`));
  });
});

describe('control files', () => {
  it('refuses a malformed limit with file and line', async () => {
    await expect(startTestServer({ plugins: [rateLimitPlugin, ...defaultPlugins()], control: { 'ratelimit.ip': 'lots' } })).rejects.toThrow(
      'control/ratelimit.ip:1: "lots" is not count/seconds (for example 100/3600)',
    );
  });
  it('0 means no limit', async () => {
    expect(await kit.setControl('ratelimit.ip', '0/60')).toBe(true);
    for (let i = 0; i < 4; i++) expect(await mailReply({ from: '127.0.0.9' })).toBe('250 ok');
  });
});

describe('SlidingWindow', () => {
  it('stays bounded in keys', () => {
    const w = new SlidingWindow();
    for (let i = 0; i < MAX_KEYS + 100; i++) w.take(`k${i}`, i, 1, 10);
    expect(w.keys).toBeLessThanOrEqual(MAX_KEYS);
  });
});
