import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maildirTokens, pythonPop, sendMail, sleep } from './support/clients.js';
import { Daemon, DOMAIN, killAll, makeRoot } from './support/daemon.js';
import { fuzzSession, garbage, mutate, Rng } from './support/fuzz.js';
import { recordMetrics } from './support/metrics.js';
import { scaled } from './support/scale.js';

const SMTP_SESSIONS = scaled(2000);
const POP3_SESSIONS = scaled(1200);
const CONCURRENCY = 16;
const SEED = Number(process.env.QUAIL_FUZZ_SEED ?? Date.now() % 2 ** 31);

let daemon: Daemon;
let root: string;
let cleanup: () => Promise<void>;
let workerPid: number | undefined;

beforeAll(async () => {
  ({ root, cleanup } = await makeRoot({
    users: { fuzz: 'fuzz-pass-1', good: 'good-pass-1', u1: 'u1-pass-1' },
    // failed logins are not slowed down here: the fuzzer needs throughput, the brute-force suite checks the delays
    control: { 'pop3d.faildelay': '0\n', 'smtpd.authfaildelay': '0\n', 'smtpd.maxperip': '0\n', concurrencyincoming: '200\n', timeoutsmtpd: '30\n' },
  }));
  daemon = await Daemon.start(root);
  workerPid = daemon.workerPid;
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await killAll();
  await cleanup?.();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

function smtpCorpus(rng: Rng): string[] {
  const token = `fz${rng.int(1e9)}`;
  const sessions = [
    ['EHLO fuzz.example', 'MAIL FROM:<a@fuzz.example>', `RCPT TO:<u1@${DOMAIN}>`, 'DATA', `Subject: ${token}`, '', 'body', '.', 'QUIT'],
    ['HELO fuzz.example', 'MAIL FROM: a@fuzz.example SIZE=99999999999', 'RCPT TO: u1', 'RCPT TO:<victim@foreign.example>', 'DATA', '..dot', '.', 'RSET', 'QUIT'],
    ['EHLO x', `AUTH PLAIN ${b64(`\0fuzz@${DOMAIN}\0fuzz-pass-1`)}`, 'MAIL FROM:<fuzz@example.test> BODY=8BITMIME', '', 'RCPT TO:<x@y>', 'DATA', 'x', '.', 'QUIT'],
    ['EHLO x', 'AUTH LOGIN', b64(`fuzz@${DOMAIN}`), b64('wrong'), 'AUTH CRAM-MD5', '*', 'QUIT'],
    ['EHLO x', 'STARTTLS', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', 'QUIT'],
    ['VRFY root', 'EXPN list', 'HELP', 'NOOP', 'TURN', 'ETRN example.test', 'BDAT 10 LAST', '0123456789', 'QUIT'],
    ['EHLO x', 'MAIL FROM:<>', `RCPT TO:<postmaster@${DOMAIN}>`, 'DATA', 'From: x', '', ...Array.from({ length: 50 }, (_, i) => `line ${i}`), '.', 'MAIL FROM:<b@c>', 'QUIT'],
  ];
  return rng.chance(0.15) ? garbage(rng) : mutate(rng, rng.pick(sessions));
}

function pop3Corpus(rng: Rng): string[] {
  const sessions = [
    ['CAPA', `USER fuzz@${DOMAIN}`, 'PASS fuzz-pass-1', 'STAT', 'LIST', 'UIDL', 'RETR 1', 'TOP 1 0', 'LAST', 'RSET', 'QUIT'],
    ['USER fuzz', 'PASS wrong', 'STAT'],
    [`APOP fuzz@${DOMAIN} 0123456789abcdef0123456789abcdef`, 'STAT'],
    ['AUTH', `AUTH PLAIN ${b64(`\0fuzz@${DOMAIN}\0fuzz-pass-1`)}`, 'LIST 1', 'DELE 1', 'RSET', 'NOOP', 'QUIT'],
    ['AUTH LOGIN', b64(`fuzz@${DOMAIN}`), b64('bad'), 'AUTH CRAM-MD5', 'not base64!', 'QUIT'],
    ['STLS', '\x16\x03\x01\x02\x00\x01', 'QUIT'],
    [`USER fuzz@${DOMAIN}`, 'PASS fuzz-pass-1', 'RETR 0', 'RETR 99999999999999', 'TOP 1 -1', 'DELE 1', 'DELE 1', 'UIDL 1 2', 'QUIT'],
  ];
  return rng.chance(0.15) ? garbage(rng) : mutate(rng, rng.pick(sessions));
}

/** Runs `count` sessions with `CONCURRENCY` at a time; calls `check` on each outcome. */
async function campaign(count: number, port: number, seed: number, corpus: (rng: Rng) => string[], check: (received: string) => void): Promise<{ sessions: number; serverClosed: number; refused: number }> {
  let next = 0;
  let serverClosed = 0;
  let refused = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      const rng = new Rng(seed + n);
      const outcome = await fuzzSession(port, rng, corpus(rng), { localAddress: `127.0.${1 + (n % 3)}.${10 + rng.int(200)}`, eol: rng.chance(0.1) ? '\n' : '\r\n' });
      if (outcome.refused) refused++;
      if (outcome.serverClosed) serverClosed++;
      check(outcome.received);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { sessions: count, serverClosed, refused };
}

/** Complete lines of a server transcript (the last one may have been cut off). */
const completeLines = (received: string) => received.split('\r\n').slice(0, -1);

async function goodSmtpClient(token: string): Promise<boolean> {
  const r = await sendMail({ port: daemon.ports!.smtp, from: 'good@client.example', to: [`u1@${DOMAIN}`], token });
  return r.acknowledged;
}

describe('stream fuzzer against the live daemon', () => {
  it(`SMTP: ${SMTP_SESSIONS} random and mutated sessions; every answer well-formed; the server stays up and serves nodemailer`, async () => {
    const malformed: string[] = [];
    const result = await campaign(SMTP_SESSIONS, daemon.ports!.smtp, SEED, smtpCorpus, (received) => {
      for (const line of completeLines(received)) if (!/^\d{3}[ -]/.test(line) && malformed.length < 20) malformed.push(line.slice(0, 100));
      if (/[^\r]\n/.test(received) && malformed.length < 20) malformed.push('bare LF in a server answer');
    });
    expect(await goodSmtpClient('fuzz-smtp-good')).toBe(true);
    const deadline = Date.now() + 30_000;
    while (!(await maildirTokens(root, 'u1')).includes('fuzz-smtp-good') && Date.now() < deadline) await sleep(250);
    const peak = await daemon.workerPeakRss();
    await recordMetrics('fuzz-smtp', { seed: SEED, ...result, malformedAnswers: malformed.length, workerRestarts: daemon.workerPid === workerPid ? 0 : 'yes', workerPeakRssMB: peak && Math.round(peak / 2 ** 20) });
    expect(malformed).toEqual([]);
    expect(daemon.workerPid).toBe(workerPid);
    expect(daemon.log.filter((l) => /died|uncaught|unhandled/i.test(l))).toEqual([]);
    expect(await maildirTokens(root, 'u1')).toContain('fuzz-smtp-good');
  }, 300_000);

  it(`POP3: ${POP3_SESSIONS} random and mutated sessions; the server stays up and serves Python poplib`, async () => {
    // a message for the good client, and some for the fuzzed mailbox
    expect(await sendMail({ port: daemon.ports!.smtp, from: 'a@client.example', to: [`good@${DOMAIN}`], token: 'pop-good-1' })).toMatchObject({ acknowledged: true });
    for (let i = 0; i < 5; i++) await sendMail({ port: daemon.ports!.smtp, from: 'a@client.example', to: [`fuzz@${DOMAIN}`], token: `pop-fuzz-${i}` });
    const deadline = Date.now() + 30_000;
    while ((await maildirTokens(root, 'good')).length === 0 && Date.now() < deadline) await sleep(250);
    const badGreeting: string[] = [];
    const result = await campaign(POP3_SESSIONS, daemon.ports!.pop3, SEED + 1_000_000, pop3Corpus, (received) => {
      const first = completeLines(received)[0];
      if (first !== undefined && !first.startsWith('+OK') && badGreeting.length < 20) badGreeting.push(first.slice(0, 100));
    });
    const good = await pythonPop(daemon.ports!.pop3, `good@${DOMAIN}`, 'good-pass-1');
    const peak = await daemon.workerPeakRss();
    await recordMetrics('fuzz-pop3', { seed: SEED + 1_000_000, ...result, badGreetings: badGreeting.length, goodClient: good, workerPeakRssMB: peak && Math.round(peak / 2 ** 20) });
    expect(badGreeting).toEqual([]);
    expect(good).toBe('1 True');
    expect(daemon.workerPid).toBe(workerPid);
    expect(daemon.log.filter((l) => /died|uncaught|unhandled/i.test(l))).toEqual([]);
  }, 300_000);
});
