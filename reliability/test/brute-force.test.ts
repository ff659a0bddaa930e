import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginThrottle as CoreLoginThrottle } from '@quail/core';
import { ManualClock } from '@quail/core/testing';
import { LoginThrottle } from '@quail/plugin-pop3';
import { LineClient, popLogin } from './support/clients.js';
import { Daemon, DOMAIN, killAll, makeRoot } from './support/daemon.js';
import { recordMetrics } from './support/metrics.js';
import { scaled } from './support/scale.js';

const ATTEMPTS = scaled(1000);
const FLOOD_MS = scaled(20_000);
/** Each protocol is attacked from its own address: core's throttle counts failures per address across protocols. */
const SMTP_ATTACKER = '127.0.0.1';
const POP3_ATTACKER = '127.0.0.5';
const GOOD_IP = '127.0.0.2';

let daemon: Daemon;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  let root: string;
  ({ root, cleanup } = await makeRoot({
    users: {
      joe: 'joe-right-pw',
      amy: 'amy-right-pw',
      bob: 'bob-right-pw',
      ...Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`smtpgood${i}`, `good-pw-${i}`])),
      ...Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`popgood${i}`, `good-pw-${i}`])),
    },
    control: { 'smtpd.authfaildelay': '500\n', 'pop3d.faildelay': '1\n' },
  }));
  void root;
  daemon = await Daemon.start(root);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await killAll();
  await cleanup?.();
});

const plain = (user: string, pass: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`;

interface Tally {
  attempts: number;
  /** Answers still held back when the flood ended. */
  heldBack: number;
  /** Connections the server closed (after the allowed failures). */
  closed: number;
  failed: number;
  temporary: number;
  other: string[];
  latenciesMs: number[];
  /** Latency of the answers that were real password checks (not refusals). */
  failedLatenciesMs: number[];
}

const tally = (): Tally => ({ attempts: 0, heldBack: 0, closed: 0, failed: 0, temporary: 0, other: [], latenciesMs: [], failedLatenciesMs: [] });

/** One SMTP AUTH attempt on a fresh or reused connection; classifies the answer. */
async function smtpAuth(client: LineClient, user: string, pass: string, t: Tally): Promise<number> {
  const began = Date.now();
  const r = await client.command(plain(user, pass), 60_000);
  t.attempts++;
  t.latenciesMs.push(Date.now() - began);
  if (r.code === 535) {
    t.failed++;
    t.failedLatenciesMs.push(Date.now() - began);
  }
  else if (r.code >= 400 && r.code < 500) t.temporary++;
  else if (r.code === 0) t.closed++;
  else if (r.code !== 235 && t.other.length < 5) t.other.push(r.text.slice(0, 80));
  return r.code;
}

async function smtpSession(localAddress: string): Promise<LineClient> {
  const c = await LineClient.connect(daemon.ports!.smtp, { localAddress });
  await c.reply();
  await c.command('EHLO attacker.example');
  return c;
}

/** SMTP flood: `parallel` connections from one address, wrong passwords until `ATTEMPTS` or the time is up. */
async function smtpFlood(parallel: number, t: Tally, until: number): Promise<void> {
  const worker = async (n: number) => {
    while (t.attempts < ATTEMPTS && Date.now() < until) {
      let c: LineClient;
      try {
        c = await smtpSession(SMTP_ATTACKER);
      } catch {
        t.temporary++;
        continue;
      }
      while (!c.closed && t.attempts < ATTEMPTS && Date.now() < until) {
        const code = await smtpAuth(c, `joe@${DOMAIN}`, `guess-${n}-${t.attempts}`, t);
        if (code === 0 || code >= 400 && code < 500) break;
      }
      c.destroy();
    }
  };
  await Promise.all(Array.from({ length: parallel }, (_, n) => worker(n)));
}

/** POP3 flood: one USER/PASS per connection, as qmail-popup allows. */
async function popFlood(parallel: number, t: Tally, until: number): Promise<void> {
  const worker = async (n: number) => {
    while (t.attempts < ATTEMPTS && Date.now() < until) {
      const began = Date.now();
      try {
        const r = await popLogin(daemon.ports!.pop3, `joe@${DOMAIN}`, `guess-${n}-${t.attempts}`, POP3_ATTACKER, Math.max(1000, until - Date.now()));
        r.client.destroy();
        if (r.answer === '(no answer)') {
          t.heldBack++;
          continue;
        }
        t.attempts++;
        t.latenciesMs.push(Date.now() - began);
        if (/^-ERR (\[AUTH\] )?authorization failed/.test(r.answer)) {
          t.failed++;
          t.failedLatenciesMs.push(Date.now() - began);
        }
        else if (/^-ERR \[(SYS\/TEMP|LOGIN-DELAY|IN-USE)\]/.test(r.answer)) t.temporary++;
        else if (t.other.length < 5) t.other.push(r.answer.slice(0, 80));
      } catch {
        t.temporary++;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, (_, n) => worker(n)));
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
};

describe('brute force against SMTP AUTH', () => {
  it(`${ATTEMPTS} failed AUTH attempts from one address are slowed down, then refused for a while; a good user elsewhere is unaffected`, async () => {
    const flood = tally();
    const goodLatencies: number[] = [];
    const goodAnswers: string[] = [];
    let goodOk = 0;
    const floodDone = smtpFlood(15, flood, Date.now() + FLOOD_MS);
    // good users from another address during the flood, each checked for the first time (no cache answers for them)
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, FLOOD_MS / 6));
      const c = await smtpSession(GOOD_IP);
      const began = Date.now();
      const r = await c.command(plain(`smtpgood${i}@${DOMAIN}`, `good-pw-${i}`), 30_000);
      if (r.code !== 235) goodAnswers.push(r.text);
      goodLatencies.push(Date.now() - began);
      if (r.code === 235) goodOk++;
      c.destroy();
    }
    await floodDone;
    // the right password from the attacking address, right after the flood
    const after = await smtpSession(SMTP_ATTACKER);
    const afterReply = await after.command(plain(`joe@${DOMAIN}`, 'joe-right-pw'), 60_000);
    after.destroy();
    // a user whose password was never checked before (no cache can answer), from another address
    const fresh = await smtpSession(GOOD_IP);
    const freshReply = await fresh.command(plain(`amy@${DOMAIN}`, 'amy-right-pw'), 60_000);
    fresh.destroy();
    await recordMetrics('brute-force-smtp', {
      attempts: flood.attempts,
      passwordChecksRefused535: flood.failed,
      connectionsClosedByServer: flood.closed,
      temporaryRefusals: flood.temporary,
      other: flood.other,
      attackerLatencyMs: { p50: percentile(flood.latenciesMs, 50), p99: percentile(flood.latenciesMs, 99) },
      failedCheckLatencyMs: { min: Math.min(...flood.failedLatenciesMs), p50: percentile(flood.failedLatenciesMs, 50) },
      goodUsersFromOtherAddress: { ok: goodOk, of: 5, maxLatencyMs: Math.max(...goodLatencies), refusals: goodAnswers },
      rightPasswordFromAttackerAfterFlood: afterReply.text,
      otherUserFromOtherAddressAfterFlood: freshReply.text,
    });
    expect(goodAnswers, 'good users from another address during the flood').toEqual([]);
    expect(goodOk).toBe(5);
    expect(Math.max(...goodLatencies)).toBeLessThan(2000);
    expect(freshReply.code, 'another user from another address is not refused because of the flood').toBe(235);
    expect(flood.temporary, 'temporary refusals seen by the attacker').toBeGreaterThan(0);
    expect(flood.failed, 'password checks made for the attacker').toBeLessThanOrEqual(100);
    expect(Math.min(...flood.failedLatenciesMs), 'each failed check is held back smtpd.authfaildelay (500 ms)').toBeGreaterThanOrEqual(450);
    expect(afterReply.code, 'the attacking address is refused for a while, even with the right password').toBeGreaterThanOrEqual(400);
    expect(afterReply.code).toBeLessThan(500);
  }, 180_000);
});

describe('brute force against POP3 USER/PASS', () => {
  it(`${ATTEMPTS} failed logins from one address are slowed down, then refused for a while; a good user elsewhere is unaffected`, async () => {
    const flood = tally();
    const floodDone = popFlood(50, flood, Date.now() + FLOOD_MS);
    const goodAnswers: string[] = [];
    const goodLatencies: number[] = [];
    let goodOk = 0;
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, FLOOD_MS / 6));
      const began = Date.now();
      const r = await popLogin(daemon.ports!.pop3, `popgood${i}@${DOMAIN}`, `good-pw-${i}`, GOOD_IP, 30_000);
      if (!r.ok) goodAnswers.push(r.answer);
      await r.client.command('QUIT');
      r.client.destroy();
      goodLatencies.push(Date.now() - began);
      if (r.ok) goodOk++;
    }
    await floodDone;
    const after = await popLogin(daemon.ports!.pop3, `joe@${DOMAIN}`, 'joe-right-pw', POP3_ATTACKER);
    after.client.destroy();
    const fresh = await popLogin(daemon.ports!.pop3, `bob@${DOMAIN}`, 'bob-right-pw', GOOD_IP);
    fresh.client.destroy();
    await recordMetrics('brute-force-pop3', {
      attempts: flood.attempts,
      passwordChecksRefused: flood.failed,
      stillHeldBackAtEnd: flood.heldBack,
      temporaryRefusals: flood.temporary,
      other: flood.other,
      attackerLatencyMs: { p50: percentile(flood.latenciesMs, 50), p99: percentile(flood.latenciesMs, 99) },
      failedCheckLatencyMs: { min: Math.min(...flood.failedLatenciesMs), p50: percentile(flood.failedLatenciesMs, 50) },
      goodUsersFromOtherAddress: { ok: goodOk, of: 5, maxLatencyMs: Math.max(...goodLatencies), refusals: goodAnswers },
      rightPasswordFromAttackerAfterFlood: after.answer,
      otherUserFromOtherAddressAfterFlood: fresh.answer,
    });
    expect(goodAnswers, 'good users from another address during the flood').toEqual([]);
    expect(goodOk).toBe(5);
    expect(Math.max(...goodLatencies)).toBeLessThan(2000);
    expect(fresh.ok, `another user from another address is not refused because of the flood: ${fresh.answer}`).toBe(true);
    expect(flood.failed, 'password checks made for the attacker').toBeLessThanOrEqual(100);
    expect(Math.min(...flood.failedLatenciesMs), 'each failed check is held back pop3d.faildelay (1 s)').toBeGreaterThanOrEqual(900);
    expect(flood.temporary, 'temporary refusals seen by the attacker').toBeGreaterThan(0);
    expect(after.answer, 'the attacking address is refused for a while, even with the right password').toMatch(/^-ERR \[(SYS\/TEMP|LOGIN-DELAY)\]/);
  }, 180_000);

  it('the per-address delay table stays bounded (plugin-pop3 LoginThrottle)', async () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle(clock);
    for (let i = 0; i < 50_000; i++) throttle.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(throttle.size).toBeLessThanOrEqual(10_000);
    await clock.advance(16 * 60_000);
    expect(throttle.failures('10.0.0.1')).toBe(0);
  });

  it('the server-wide failure table stays bounded (core LoginThrottle behind every Authenticator)', async () => {
    const clock = new ManualClock();
    const throttle = new CoreLoginThrottle(clock, () => ({ maxFailures: 10, windowSeconds: 600 }));
    for (let i = 0; i < 50_000; i++) throttle.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(throttle.size).toBeLessThanOrEqual(10_000);
    for (let i = 0; i < 10; i++) throttle.fail('192.0.2.1');
    expect(throttle.refused('192.0.2.1')).toBe(true);
    await clock.advance(601_000);
    expect(throttle.refused('192.0.2.1')).toBe(false);
  });
});
