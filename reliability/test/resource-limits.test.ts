import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineClient, maildirTokens, pythonPop, sendMail, sleep } from './support/clients.js';
import { Daemon, DOMAIN, killAll, makeRoot } from './support/daemon.js';
import { recordMetrics } from './support/metrics.js';
import { scaled } from './support/scale.js';

const IDLE = scaled(2000);
const TIMEOUT_S = 15;
const DATABYTES = 10 * 1024 * 1024;

let daemon: Daemon;
let root: string;
let cleanup: () => Promise<void>;
const peaks: Record<string, number> = {};

beforeAll(async () => {
  ({ root, cleanup } = await makeRoot({
    users: { good: 'good-pass-1' },
    control: { timeoutpop3d: `${TIMEOUT_S}\n`, timeoutsmtpd: `${TIMEOUT_S}\n`, concurrencyincoming: `${IDLE + 500}\n`, databytes: `${DATABYTES}\n` },
  }));
  daemon = await Daemon.start(root, { nofile: 16384 });
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await killAll();
  await cleanup?.();
});

async function peakMB(label: string): Promise<number> {
  const peak = Math.round(((await daemon.workerPeakRss()) ?? 0) / 2 ** 20);
  peaks[label] = peak;
  return peak;
}

/** The well-behaved client: one message with nodemailer from an address of its own; resolves with the time it took. */
async function goodClient(token: string): Promise<{ ok: boolean; ms: number; response: string }> {
  const began = Date.now();
  const r = await sendMail({ port: daemon.ports!.smtp, from: 'good@client.example', to: [`good@${DOMAIN}`], token, localAddress: '127.0.0.2', timeoutMs: 20_000 });
  return { ok: r.acknowledged, ms: Date.now() - began, response: r.response };
}

/** Opens an idle connection from 127.1.x.y and resolves once the greeting arrived (or the server closed it). */
function idleConnection(n: number, port = daemon.ports!.smtp, greeting = '220', net = 1): Promise<{ socket: Socket; greeted: Promise<boolean>; closedBy: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: `127.${net}.${(n >> 4) & 255}.${1 + (n & 15)}` });
    let text = '';
    let greet: (v: boolean) => void;
    const greeted = new Promise<boolean>((r) => (greet = r));
    const closedBy = new Promise<string>((r) => socket.once('close', () => (greet(false), r(text))));
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      if (text.startsWith(greeting)) greet(true);
    });
    socket.once('connect', () => resolve({ socket, greeted, closedBy }));
    socket.once('error', reject);
  });
}

describe('resource limits on the SMTP listener', () => {
  it(`${IDLE} concurrent idle connections: all greeted, a good client still served, all closed at timeoutsmtpd`, async () => {
    await peakMB('start');
    const conns = [];
    for (let i = 0; i < IDLE; i += 100) conns.push(...(await Promise.all(Array.from({ length: Math.min(100, IDLE - i) }, (_, k) => idleConnection(i + k)))));
    const opened = Date.now();
    const greeted = (await Promise.all(conns.map((c) => Promise.race([c.greeted, sleep(10_000).then(() => false)])))).filter(Boolean).length;
    const good = await goodClient('idle-good');
    const peakIdle = await peakMB('idle');
    // every idle client is dropped by the server once timeoutsmtpd has passed
    const closings = await Promise.all(conns.map((c) => Promise.race([c.closedBy, sleep((TIMEOUT_S + 20) * 1000).then(() => 'still open')])));
    const closedAfterS = Math.round((Date.now() - opened) / 1000);
    for (const c of conns) c.socket.destroy();
    const timedOut = closings.filter((t) => /\b451\b/.test(t)).length;
    const stillOpen = closings.filter((t) => t === 'still open').length;
    await recordMetrics('resource-idle', { idle: IDLE, greeted, good, timedOut451: timedOut, stillOpen, closedAfterS, timeoutS: TIMEOUT_S, workerPeakRssMB: peakIdle });
    expect(greeted).toBe(IDLE);
    expect(good.ok).toBe(true);
    expect(good.ms).toBeLessThan(5000);
    expect(stillOpen).toBe(0);
    expect(timedOut).toBe(IDLE);
  }, 180_000);

  it('slowloris clients (one byte every two seconds) do not keep a good client waiting', async () => {
    const slow = await Promise.all(Array.from({ length: 100 }, (_, n) => LineClient.connect(daemon.ports!.smtp, { localAddress: `127.2.0.${1 + n}` })));
    const text = 'EHLO slow.example\r\nMAIL FROM:<slow@example.org>\r\n';
    let stop = false;
    const trickle = (async () => {
      for (let i = 0; !stop; i++) {
        for (const c of slow) c.write(text[i % text.length]!);
        await sleep(2000);
      }
    })();
    const results = [];
    for (let i = 0; i < 5; i++) {
      results.push(await goodClient(`slow-good-${i}`));
      await sleep(2000);
    }
    stop = true;
    await trickle;
    const closedByServer = slow.filter((c) => c.closed).length;
    for (const c of slow) c.destroy();
    await recordMetrics('resource-slowloris', {
      slowClients: slow.length,
      goodClientMaxMs: Math.max(...results.map((r) => r.ms)),
      goodOk: results.filter((r) => r.ok).length,
      slowClosedByServerWithin20s: closedByServer,
      workerPeakRssMB: await peakMB('slowloris'),
    });
    expect(results.every((r) => r.ok)).toBe(true);
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(5000);
  }, 120_000);

  it('100 MB of DATA above databytes: refused with 552, nothing delivered, memory bounded, a good client served meanwhile', async () => {
    const before = await peakMB('before-100MB');
    const c = await LineClient.connect(daemon.ports!.smtp, { localAddress: '127.3.0.1' });
    await c.reply();
    await c.command('EHLO big.example');
    expect((await c.command('MAIL FROM:<big@example.org>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<good@${DOMAIN}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    c.write('Subject: big\r\nX-Rel-Token: too-big\r\n\r\n');
    const line = `${'x'.repeat(998)}\r\n`;
    const chunk = Buffer.from(line.repeat(1024));
    let sent = 0;
    const goodDuring = goodClient('big-good');
    while (sent < 100 * 1024 * 1024 && !c.closed) {
      if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once('drain', r));
      sent += chunk.length;
    }
    const answer = await c.command('.', 60_000);
    c.destroy();
    const good = await goodDuring;
    const sized = await LineClient.connect(daemon.ports!.smtp, { localAddress: '127.3.0.2' });
    await sized.reply();
    await sized.command('EHLO big.example');
    const sizeAnswer = await sized.command(`MAIL FROM:<big@example.org> SIZE=${100 * 1024 * 1024}`);
    sized.destroy();
    await sleep(2000);
    const after = await peakMB('after-100MB');
    const delivered = await maildirTokens(root, 'good');
    await recordMetrics('resource-100MB', {
      sentMB: Math.round(sent / 2 ** 20),
      answer: answer.text,
      sizeParameterAnswer: sizeAnswer.text,
      goodDuring: good,
      workerPeakRssMB: { before, after },
      delivered: delivered.filter((t) => t === 'too-big').length,
    });
    expect(answer.code === 552 || (answer.code === 0 && c.closed)).toBe(true);
    expect(sizeAnswer.code).toBe(552);
    expect(good.ok).toBe(true);
    expect(delivered).not.toContain('too-big');
    expect(after - before).toBeLessThan(150);
  }, 180_000);

  it(`POP3: ${IDLE} concurrent idle connections: all greeted, Python poplib still served, all closed at timeoutpop3d`, async () => {
    expect((await goodClient('pop3-seed')).ok).toBe(true);
    const deadline = Date.now() + 30_000;
    while (!(await maildirTokens(root, 'good')).includes('pop3-seed') && Date.now() < deadline) await sleep(250);
    const conns = [];
    for (let i = 0; i < IDLE; i += 100) conns.push(...(await Promise.all(Array.from({ length: Math.min(100, IDLE - i) }, (_, k) => idleConnection(i + k, daemon.ports!.pop3, '+OK', 4)))));
    const greeted = (await Promise.all(conns.map((c) => Promise.race([c.greeted, sleep(10_000).then(() => false)])))).filter(Boolean).length;
    const began = Date.now();
    const good = await pythonPop(daemon.ports!.pop3, `good@${DOMAIN}`, 'good-pass-1');
    const goodMs = Date.now() - began;
    const peak = await peakMB('pop3-idle');
    const closings = await Promise.all(conns.map((c) => Promise.race([c.closedBy.then(() => 'closed'), sleep((TIMEOUT_S + 20) * 1000).then(() => 'still open')])));
    for (const c of conns) c.socket.destroy();
    const stillOpen = closings.filter((t) => t === 'still open').length;
    await recordMetrics('resource-pop3-idle', { idle: IDLE, greeted, good, goodMs, stillOpen, timeoutS: TIMEOUT_S, workerPeakRssMB: peak, peaksMB: peaks });
    expect(greeted).toBe(IDLE);
    expect(good).toMatch(/^[1-9]\d* True$/);
    expect(stillOpen).toBe(0);
  }, 180_000);
});
